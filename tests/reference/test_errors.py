"""Bad input: each case exits 1 (or 2 for usage), prints one line naming the problem, and
leaves no output file behind."""
import os
import subprocess
import unittest

import h5py
import numpy as np

from qkvtest import run, tmpdir, tool, write_tokens


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.model = f"{d}/tiny.h5"
        cls.other = f"{d}/other.h5"
        run("model", "init", "--preset", "tiny", "--seed", 1, "-o", cls.model)
        run("model", "init", "--preset", "tiny", "--seed", 2, "-o", cls.other)
        cls.tok = write_tokens(f"{d}/tok.h5", cls.model, [[1, 2, 3, 4]])
        run("embed", "-m", cls.model, cls.tok, "-o", f"{d}/e.h5")
        run("attend", "-m", cls.model, "-l", 0, f"{d}/e.h5", "-o", f"{d}/a0.h5")
        cls.e = f"{d}/e.h5"

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def fails(self, args, expect_in, code=1, stdin=b"", tool_name="attend"):
        out = f"{self.d}/out.h5"
        if os.path.exists(out):
            os.remove(out)
        p = subprocess.run([tool(tool_name), *map(str, args), "-o", out], input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, code, err)
        self.assertEqual(len(err.strip().splitlines()), 1, f"not one line: {err!r}")
        self.assertIn(expect_in, err)
        self.assertNotIn("HDF5-DIAG", err)
        self.assertFalse(os.path.exists(out), "output file left behind")
        self.assertEqual([f for f in os.listdir(self.d) if ".tmp-" in f], [], "temporary file left")
        return err

    def edited(self, name, fn):
        path = f"{self.d}/{name}.h5"
        with open(self.e, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        with h5py.File(path, "r+") as f:
            fn(f)
        return path

    def test_other_model(self):
        self.fails(["-m", self.other, "-l", 0, self.e], "was made with model")

    def test_wrong_stage_order(self):
        err = self.fails(["-m", self.model, "-l", 1, self.e], "needs stage mlp at layer 0")
        self.assertIn("--force", err)
        self.fails(["-m", self.model, "-l", 0, self.tok], "stage tokens")
        self.fails(["-m", self.model, "-l", 1, self.e], "needs stage attn at layer 1", tool_name="mlp")
        # --force overrides the ordering check only
        run("attend", "-m", self.model, "-l", 1, "--force", self.e, "-o", f"{self.d}/forced.h5")
        os.remove(f"{self.d}/forced.h5")

    def test_layer_out_of_range(self):
        self.fails(["-m", self.model, "-l", 2, self.e, "--force"], "out of range")
        self.fails(["-m", self.model, "-L", "0:5", self.e], "--layers", code=2, tool_name="block")
        self.fails(["-m", self.model, "--stats", "--sweep", "ablate-heads", self.e], "--stats", code=2,
                   tool_name="block")

    def test_sequence_longer_than_context(self):
        long_tok = write_tokens(f"{self.d}/long.h5", self.model, [list(range(129))])
        self.fails(["-m", self.model, long_tok], "n_ctx = 128", tool_name="embed")
        os.remove(long_tok)

    def test_token_outside_vocab(self):
        bad = write_tokens(f"{self.d}/badtok.h5", self.model, [[1, 50257]])
        self.fails(["-m", self.model, bad], "outside the vocabulary", tool_name="embed")
        os.remove(bad)

    def test_nan(self):
        def nan(f):
            r = f["resid"][()]
            r[0, 2, 5] = np.nan
            f["resid"][...] = r
        self.fails(["-m", self.model, "-l", 0, self.edited("nan", nan)], "non-finite value")

    def test_wrong_rank_and_dtype(self):
        def rank(f):
            r = f["resid"][()]
            del f["resid"]
            f["resid"] = r[0]
        self.fails(["-m", self.model, "-l", 0, self.edited("rank", rank)], "expected rank 3")

        def dtype(f):
            r = f["resid"][()]
            del f["resid"]
            f["resid"] = r.astype(np.int32)
        self.fails(["-m", self.model, "-l", 0, self.edited("dtype", dtype)], "expected floating-point")

        def width(f):
            r = f["resid"][()]
            del f["resid"]
            f["resid"] = r[:, :, :10]
        self.fails(["-m", self.model, "-l", 0, self.edited("width", width)], "d_model 64")

    def test_not_hdf5_truncated_empty(self):
        junk = f"{self.d}/junk.bin"
        with open(junk, "wb") as f:
            f.write(b"this is not an HDF5 file at all\n" * 10)
        self.fails(["-m", self.model, "-l", 0, junk], "not an HDF5 file")
        self.fails(["-m", self.model, "-l", 0, "-"], "not an HDF5 file", stdin=b"hello\n")
        with open(self.e, "rb") as f:
            data = f.read()
        trunc = f"{self.d}/trunc.h5"
        for cut in (len(data) // 2, 600, 100):
            with open(trunc, "wb") as f:
                f.write(data[:cut])
            self.fails(["-m", self.model, "-l", 0, trunc], "trunc.h5")
            self.fails(["-m", self.model, "-l", 0, "-"], "<stdin>", stdin=data[:cut])
        self.fails(["-m", self.model, "-l", 0, "-"], "empty input", stdin=b"")
        self.fails(["-m", self.model, "-l", 0, f"{self.d}/missing.h5"], "missing.h5: cannot open")
        self.fails(["-m", f"{self.d}/missing.h5", "-l", 0, self.e], "missing.h5")
        self.fails(["-m", self.e, "-l", 0, self.e], "is an activation file, expected a model file")
        self.fails(["-m", self.model, "-l", 0, self.model], "is a model file")

    def test_usage_errors(self):
        self.fails(["-m", self.model, self.e], "--layer", code=2)
        self.fails(["-m", self.model, "-l", 0, "--save", "nonsense", self.e], "--save", code=2)
        self.fails(["-m", self.model, "-l", 0, "--bogus", self.e], "--bogus", code=2)
        self.fails(["-m", self.model, "-l", 0, "--device", "tpu", self.e], "--device", code=2)

    def test_never_clobbers_input(self):
        copy = f"{self.d}/copy.h5"
        with open(self.e, "rb") as f:
            data = f.read()
        with open(copy, "wb") as f:
            f.write(data)
        p = subprocess.run([tool("attend"), "-m", self.model, "-l", "0", copy, "-o", copy],
                           stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 2)
        self.assertIn("is the input file", p.stderr.decode())
        with open(copy, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_failed_run_keeps_existing_output(self):
        target = f"{self.d}/keep.h5"
        with open(target, "wb") as f:
            f.write(b"precious")
        p = subprocess.run([tool("attend"), "-m", self.other, "-l", "0", self.e, "-o", target],
                           stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"precious")

    def test_terminal_refusal(self):
        # stdout a terminal: refuse; stdin a terminal: usage. `script` gives us a real tty.
        import shutil
        if not shutil.which("script"):
            self.skipTest("script(1) not installed")
        p = subprocess.run(["script", "-qec", f"{tool('embed')} -m {self.model} {self.tok}", "/dev/null"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.assertIn(b"refusing to write HDF5 to a terminal", p.stdout)
        p = subprocess.run(["script", "-qec", f"{tool('embed')} -m {self.model} -o {self.d}/x.h5", "/dev/null"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30)
        self.assertIn(b"Usage", p.stdout)
        self.assertFalse(os.path.exists(f"{self.d}/x.h5"))


class ImportErrors(unittest.TestCase):
    """model import: unsupported architecture, missing tensor, shape mismatch, bad header."""

    def setUp(self):
        import gpt2_ref
        self.ref = gpt2_ref
        self.tmp = tmpdir()
        self.d = self.tmp.name
        self.cfg = {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 8, "vocab_size": 50257,
                    "n_inner": 64, "layer_norm_epsilon": 1e-5}
        self.sd = gpt2_ref.random_hf_state(self.cfg, 0)

    def tearDown(self):
        self.tmp.cleanup()

    def import_fails(self, hf, expect):
        out = f"{self.d}/m.h5"
        p = subprocess.run([tool("model"), "import", "--from", hf, "-o", out], stderr=subprocess.PIPE)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(expect, err)
        self.assertFalse(os.path.exists(out))

    def test_missing_tensor(self):
        sd = dict(self.sd)
        del sd["h.0.mlp.c_fc.bias"]
        hf = f"{self.d}/hf"
        self.ref.write_hf_dir(hf, self.cfg, sd)
        self.import_fails(hf, "missing tensor 'transformer.h.0.mlp.c_fc.bias'")

    def test_shape_mismatch(self):
        sd = dict(self.sd)
        sd["h.0.attn.c_proj.weight"] = sd["h.0.attn.c_proj.weight"][:8]
        hf = f"{self.d}/hf"
        self.ref.write_hf_dir(hf, self.cfg, sd)
        self.import_fails(hf, "'transformer.h.0.attn.c_proj.weight' has shape [8, 16], expected [16, 16]")

    def test_unsupported_architecture(self):
        import json
        hf = f"{self.d}/hf"
        self.ref.write_hf_dir(hf, self.cfg, self.sd)
        with open(f"{hf}/config.json") as f:
            c = json.load(f)
        c["model_type"] = "bloom"
        with open(f"{hf}/config.json", "w") as f:
            json.dump(c, f)
        self.import_fails(hf, "model_type 'bloom' is not supported")

    def test_corrupt_safetensors(self):
        hf = f"{self.d}/hf"
        self.ref.write_hf_dir(hf, self.cfg, self.sd)
        path = f"{hf}/model.safetensors"
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        self.import_fails(hf, "outside the file")
        with open(path, "wb") as f:
            f.write(b"\xff" * 8 + b"{}")
        self.import_fails(hf, "header length")
        self.import_fails(f"{self.d}/nowhere", "not a directory")


if __name__ == "__main__":
    unittest.main(verbosity=2)
