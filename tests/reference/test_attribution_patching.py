"""attribute --method atp (attribution patching) against PyTorch autograd on the float64
references with hooks (test_intervene.Reference: GPT-2, a Llama with grouped-query attention and
rotary positions, GPT-NeoX with a parallel residual and partial rotary):
- the gradients of the metric (logit difference, or log-probability without a foil) with respect
  to every layer's entering stream and every head's z equal autograd's (1e-5 of their scale);
- the estimates, (source - run) . gradient summed over each head's z and each position's stream,
  equal the same sums from the reference (1e-5 of their scale), and the run's metric its value;
- the same file with 1 and 2 threads (bit-identical);
- bad input: one line, exit 1 or 2, no output file."""
import os
import unittest

import h5py
import numpy as np
import torch

from qkvtest import init_families, read, run, tmpdir, write_tokens
from test_intervene import CLEAN, CORRUPT, Reference

TOL = 1e-5
ANSWER, FOIL = " the", " a"


def token_id(model, text):
    return int(run("tokenize", "-m", model, "--ids", "--no-bos", text).stdout.split()[0])


class AttributionPatching(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.m = init_families(d, 5)
        for fam, m in cls.m.items():
            write_tokens(f"{d}/{fam}-clean.h5", m, [CLEAN])
            write_tokens(f"{d}/{fam}-corrupt.h5", m, [CORRUPT])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def atp(self, fam, *args, out="atp.h5"):
        path = f"{self.d}/{fam}-{out}"
        run("attribute", "-m", self.m[fam], "--tokens", f"{self.d}/{fam}-clean.h5", "--method", "atp",
            "--patch-from", f"{self.d}/{fam}-corrupt.h5", *args, "-o", path)
        return path

    def close(self, got, want, what):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        scale = np.abs(want).max()
        self.assertGreater(scale, 0, what)
        err = np.abs(got - want).max()
        self.assertLessEqual(err, TOL * scale, f"{what}: max abs diff {err:.3g} > {TOL} * {scale:.3g}")

    def test_gradients_and_estimates_equal_autograd(self):
        for fam in ("gpt2", "llama", "neox"):
            ref = Reference(self.m[fam], fam)
            answer, foil = token_id(self.m[fam], ANSWER), token_id(self.m[fam], FOIL)
            source = {}
            ref.stream(CORRUPT, cache=source)
            for with_foil, position in ((True, -1), (False, 3)):
                with self.subTest(fam=fam, foil=with_foil, position=position):
                    args = ["--answer", ANSWER, "--position", str(position)] + (["--foil", FOIL] if with_foil else [])
                    out = self.atp(fam, *args)
                    acts = {}
                    x = ref.stream(CLEAN, cache=acts, grad=True)
                    logits = ref.ref.logits(x)[0, position]
                    metric = logits[answer] - logits[foil] if with_foil else torch.log_softmax(logits, -1)[answer]
                    metric.backward()
                    with h5py.File(out) as f:
                        self.assertAlmostEqual(float(f["atp"].attrs["value"]), metric.item(), delta=1e-5)
                        self.assertEqual(f["atp"].attrs["metric"], "logit_diff" if with_foil else "logprob")
                        grad_z, grad_resid = f["atp/grad_z"][()], f["atp/grad_resid_pre"][()]
                        heads, positions = f["atp/heads"][()], f["atp/positions"][()]
                    layers = ref.layers
                    want_gz = np.stack([acts[(i, "z")].grad[0].numpy() for i in range(layers)])
                    want_gr = np.stack([acts[(i, "resid_pre")].grad[0].numpy() for i in range(layers)])
                    self.close(grad_z, want_gz, f"{fam} d metric / d z")
                    self.close(grad_resid, want_gr, f"{fam} d metric / d resid_pre")
                    dz = np.stack([(source[(i, "z")] - acts[(i, "z")]).detach()[0].numpy() for i in range(layers)])
                    dr = np.stack([(source[(i, "resid_pre")] - acts[(i, "resid_pre")]).detach()[0].numpy()
                                   for i in range(layers)])
                    self.close(heads, np.einsum("lthd,lthd->lh", dz, want_gz), f"{fam} head estimates")
                    self.close(positions, np.einsum("ltd,ltd->lt", dr, want_gr), f"{fam} position estimates")
                    # the prompts differ from position 1 on: nothing before it can change
                    self.assertTrue(np.all(positions[:, 0] == 0), positions[:, 0])

    def test_threads_and_table(self):
        d, m = self.d, self.m["llama"]
        a = self.atp("llama", "--answer", ANSWER, "--foil", FOIL, "--threads", "1", out="t1.h5")
        b = self.atp("llama", "--answer", ANSWER, "--foil", FOIL, "--threads", "2", out="t2.h5")
        for name in ("atp/heads", "atp/positions", "atp/grad_z", "atp/grad_resid_pre"):
            self.assertTrue(np.array_equal(read(a, name), read(b, name)), name)
        with h5py.File(a) as f:
            self.assertEqual([f["atp/heads"].dims[i].label for i in range(2)], ["layer", "head"])
        # the table lists the same estimates, labelled as the --patch that makes each change
        p = run("attribute", "-m", m, "--tokens", f"{d}/llama-clean.h5", "--answer", ANSWER, "--foil", FOIL,
                "--method", "atp", "--patch-from", f"{d}/llama-corrupt.h5", "--top", "3")
        rows = [line.split("\t") for line in p.stdout.decode().splitlines()[2:]]
        self.assertEqual(len(rows), 3)
        heads, positions = read(a, "atp/heads"), read(a, "atp/positions")
        largest = max(np.abs(heads).max(), np.abs(positions).max())
        self.assertAlmostEqual(abs(float(rows[0][1])), largest, delta=1e-6 * largest)
        site = rows[0][0]
        layer = int(site.split(".")[0])
        value = heads[layer, int(site.split("#")[1])] if ".z#" in site else positions[layer, int(site.split("@")[1])]
        self.assertAlmostEqual(float(rows[0][1]), float(value), delta=1e-6 * largest)

    def test_bad_input(self):
        d, m = self.d, self.m["gpt2"]
        write_tokens(f"{d}/short.h5", m, [CLEAN[:4]])
        base = ["attribute", "-m", m, "--tokens", f"{d}/gpt2-clean.h5", "--answer", ANSWER, "-o", f"{d}/bad.h5"]
        for args, code, words in (
                (["--method", "atp"], 2, "--patch-from"),
                (["--patch-from", f"{d}/gpt2-corrupt.h5"], 2, "--method atp"),
                (["--method", "atp", "--patch-from", f"{d}/short.h5"], 1, "[1, 4]"),
                (["--method", "atp", "--patch-from", f"{d}/llama-corrupt.h5"], 1, "model"),
                (["--method", "atp", "--patch-from", f"{d}/missing.h5"], 1, "missing.h5"),
                (["--method", "bogus"], 2, "--method")):
            with self.subTest(args=args):
                p = run(*base, *args, check=False)
                self.assertEqual(p.returncode, code, p.stderr)
                err = p.stderr.decode()
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(words, err)
                self.assertFalse(os.path.exists(f"{d}/bad.h5"))


if __name__ == "__main__":
    unittest.main()
