"""train against PyTorch: the whole model's gradients after one batch against autograd on the
reference GPT-2 (tests/reference/gpt2_ref.py), one AdamW step against torch.optim.AdamW,
bit-identical weights for the same seed, and resumed runs (after SIGINT, SIGTERM or SIGKILL)
giving the same losses as an uninterrupted run."""
import os
import signal
import subprocess
import time
import unittest

import h5py
import numpy as np
import torch

import gpt2_ref
from qkvtest import dataset_values, run, tmpdir, tool

TEXT = ("The quick brown fox jumps over the lazy dog. " * 5 +
        "O Romeo, Romeo! wherefore art thou Romeo? Deny thy father and refuse thy name. " * 4 +
        "Numbers: 1, 2, 3, 42, 1000; and punctuation -- (really?) yes!\n") * 12


def datasets(path, skip=("/train", "/tokenizer")):
    return dataset_values(path, skip)


class Train(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.corpus = os.path.join(d, "corpus.txt")
        with open(cls.corpus, "w") as f:
            f.write(TEXT)
        cls.init = os.path.join(d, "init.h5")
        run("model", "init", "--preset", "tiny", "--seed", 5, "-o", cls.init, "--quiet")
        # A few steps first, so that biases and LayerNorms are no longer 0 and 1.
        cls.warm = os.path.join(d, "warm.h5")
        run("train", "--model", cls.init, "-f", cls.corpus, "--steps", 4, "--batch", 2, "--context", 16,
            "--lr", 3e-3, "--warmup", 0, "--eval-every", 0, "-o", cls.warm, "--quiet")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def reference_grads(self, model_path, grads_path):
        cfg, sd = gpt2_ref.from_qkv_model(model_path)
        ref = gpt2_ref.GPT2(cfg, sd)
        for t in ref.sd.values():
            t.requires_grad_(True)
        with h5py.File(grads_path, "r") as f:
            x, y, loss = f["batch/x"][()], f["batch/y"][()], float(f.attrs["loss"])
        h = ref.embed(x)
        for i in range(cfg["n_layer"]):
            h = ref.mlp(i, ref.attention(i, h))
        logits = ref.logits(h)
        ref_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg["vocab_size"]),
                                                     torch.as_tensor(y.reshape(-1), dtype=torch.long))
        ref_loss.backward()
        _, ours = gpt2_ref.from_qkv_model(grads_path, cfg)
        return cfg, ref, ref_loss.item(), loss, ours

    def test_gradients_match_autograd(self):
        for model in (self.init, self.warm):
            g = os.path.join(self.d, "grads.h5")
            run("train", "--model", model, "-f", self.corpus, "--batch", 3, "--context", 24,
                "--dump-grads", g, "--quiet")
            cfg, ref, ref_loss, loss, ours = self.reference_grads(model, g)
            self.assertAlmostEqual(loss, ref_loss, delta=1e-5 * abs(ref_loss))
            self.assertEqual(set(ours), set(ref.sd))
            worst = 0
            for name, t in ref.sd.items():
                r = t.grad.numpy()
                scale = np.abs(r).max()
                self.assertGreater(scale, 0, name)
                err = np.abs(ours[name] - r).max() / scale
                worst = max(worst, err)
                self.assertLessEqual(err, 1e-4, f"{model}: {name}")
            print(f"\n  {os.path.basename(model)}: loss {loss:.6f} (PyTorch {ref_loss:.6f}); worst gradient "
                  f"difference {worst:.2e} of the reference's max abs value")

    def test_adamw_step_matches_torch(self):
        g = os.path.join(self.d, "g-adam.h5")
        after = os.path.join(self.d, "after.h5")
        common = ["--model", self.warm, "-f", self.corpus, "--batch", 3, "--context", 24, "--quiet"]
        run("train", *common, "--dump-grads", g)
        run("train", *common, "--steps", 1, "--lr", 2e-3, "--min-lr", 2e-3, "--warmup", 0,
            "--grad-clip", 0, "--weight-decay", 0.1, "--beta1", 0.8, "--beta2", 0.97,
            "--eval-every", 0, "-o", after)
        before, grads, new = datasets(self.warm), datasets(g), datasets(after)
        names = [n for n in before if n not in ("/unembed/W_U", "/unembed/b_U")]
        params, decay, nodecay = {}, [], []
        for n in names:
            p = torch.nn.Parameter(torch.tensor(before[n]))
            p.grad = torch.tensor(grads[n])
            params[n] = p
            (decay if "/W_" in n else nodecay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                 {"params": nodecay, "weight_decay": 0.0}],
                                lr=2e-3, betas=(0.8, 0.97), eps=1e-8)
        opt.step()
        worst = 0
        for n in names:
            want = params[n].detach().numpy()
            delta_ref = want - before[n]
            err = np.abs(new[n] - want).max() / np.abs(want).max()
            worst = max(worst, err)
            self.assertLessEqual(err, 1e-5, n)
            self.assertGreater(np.abs(delta_ref).max(), 0, n)
        np.testing.assert_array_equal(new["/unembed/W_U"], new["/embed/W_E"].T)
        print(f"\n  AdamW: worst difference {worst:.2e} of the parameter's max abs value")

    def train_args(self, out, steps=12, eval_every=4, extra=()):
        return ["--model", self.init, "-f", self.corpus, "--steps", steps, "--batch", 2, "--context", 16,
                "--lr", 3e-3, "--warmup", 3, "--eval-every", eval_every, "--eval-iters", 2, "-o", out, *extra]

    def test_same_seed_same_weights(self):
        a, b, c, one = (os.path.join(self.d, n) for n in ("a.h5", "b.h5", "c.h5", "one.h5"))
        run("train", *self.train_args(a), "--threads", 2, "--quiet")
        run("train", *self.train_args(b), "--threads", 2, "--quiet")
        run("train", *self.train_args(one), "--threads", 1, "--quiet")
        run("train", *self.train_args(c), "--threads", 2, "--seed", 7, "--quiet")
        da, db, dc = datasets(a, skip=("/tokenizer",)), datasets(b, skip=("/tokenizer",)), datasets(c)
        self.assertEqual(set(da), set(db))
        d1 = datasets(one, skip=("/tokenizer",))
        for n in da:
            np.testing.assert_array_equal(da[n], db[n], n)
            np.testing.assert_array_equal(da[n], d1[n], n)  # and with another thread count
        self.assertFalse(np.array_equal(da["/blocks/0/attn/W_Q"], dc["/blocks/0/attn/W_Q"]))
        with h5py.File(a, "r") as f:
            log = f["train/log/train_loss"][()]
            val = f["train/log/val_loss"][()]
            self.assertEqual(len(log), 12)
            self.assertEqual(list(np.isfinite(val)), [i % 4 == 3 for i in range(12)])
            self.assertLess(log[-1], log[0])  # it learns
            self.assertIn("val_nats_per_char", f["train"].attrs)

    def interrupted_run(self, out, sig, wait_step, extra=()):
        p = subprocess.Popen([tool("train"), *map(str, self.train_args(out, steps=40, eval_every=1, extra=extra))],
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        seen = b""
        while f"step {wait_step}/".encode() not in seen:
            line = p.stderr.readline()
            self.assertTrue(line, seen.decode())
            seen += line
        p.send_signal(sig)
        err = p.stderr.read()
        p.stderr.close()
        return p.wait(), seen + err

    def test_resume_after_signals(self):
        full = os.path.join(self.d, "full.h5")
        run("train", *self.train_args(full, steps=40, eval_every=1), "--quiet")
        ref = datasets(full, skip=("/tokenizer",))
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            ck = os.path.join(self.d, f"ck-{sig}.h5")
            rc, err = self.interrupted_run(ck, sig, 5)
            self.assertEqual(rc, code, err.decode())
            self.assertIn(b"--resume", err)
            with h5py.File(ck, "r") as f:
                stopped = int(f["train"].attrs["step"])
            self.assertGreaterEqual(stopped, 5)
            self.assertLess(stopped, 40)
            self.assertEqual([n for n in os.listdir(self.d) if ".tmp" in n], [])
            run("train", "--resume", ck, "-f", self.corpus, "--quiet")
            got = datasets(ck, skip=("/tokenizer",))
            for n in ref:
                np.testing.assert_array_equal(got[n], ref[n], f"{sig}: {n}")
        # A changed setting or another text is refused.
        p = run("train", "--resume", full, "-f", self.corpus, "--lr", 1, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--lr", p.stderr)
        other = os.path.join(self.d, "other.txt")
        with open(other, "w") as f:
            f.write(TEXT + "x")
        p = run("train", "--resume", full, "-f", other, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"not the text", p.stderr)

    def test_resume_after_sigkill(self):
        full = os.path.join(self.d, "full-k.h5")
        run("train", *self.train_args(full, steps=40, eval_every=1), "--quiet")
        ck = os.path.join(self.d, "ck-kill.h5")
        rc, err = self.interrupted_run(ck, signal.SIGKILL, 17, extra=("--save-every", 8))
        self.assertEqual(rc, -signal.SIGKILL)
        with h5py.File(ck, "r") as f:
            self.assertEqual(int(f["train"].attrs["step"]), 16)
        run("train", "--resume", ck, "-f", self.corpus, "--quiet")
        got, ref = datasets(ck, skip=("/tokenizer",)), datasets(full, skip=("/tokenizer",))
        for n in ref:
            np.testing.assert_array_equal(got[n], ref[n], n)
        self.assertEqual([n for n in os.listdir(self.d) if ".tmp" in n], [])

    def test_moments_by_weight_and_resume_from_fused(self):
        """The moments are kept under each weight's name; a checkpoint of the earlier form (one
        flat dataset, each layer's W_Q, W_K, W_V fused) resumes to the same result."""
        ck = os.path.join(self.d, "ck-moments.h5")
        rc, err = self.interrupted_run(ck, signal.SIGTERM, 6)
        self.assertEqual(rc, 143, err.decode())
        fused = os.path.join(self.d, "ck-fused.h5")
        with open(ck, "rb") as a, open(fused, "wb") as b:
            b.write(a.read())
        with h5py.File(fused, "r+") as f:
            n_layers = int(f["config"].attrs["n_layers"])
            for which in ("adam_m", "adam_v"):
                g = f["train"][which]
                self.assertEqual(g["blocks/0/attn/W_Q"].shape, f["blocks/0/attn/W_Q"].shape)
                parts = [g["embed/W_E"][()], g["pos_embed/W_pos"][()]]
                for l in range(n_layers):
                    b = g[f"blocks/{l}"]
                    parts += [b["ln1/w"][()], b["ln1/b"][()]]
                    parts.append(np.concatenate([b[f"attn/W_{q}"][()].transpose(1, 0, 2) for q in "QKV"], 1))
                    parts.append(np.concatenate([b[f"attn/b_{q}"][()] for q in "QKV"]))
                    parts += [b[n][()] for n in ("attn/W_O", "attn/b_O", "ln2/w", "ln2/b", "mlp/W_in",
                                                  "mlp/b_in", "mlp/W_out", "mlp/b_out")]
                parts += [g["ln_final/w"][()], g["ln_final/b"][()]]
                del f["train"][which]
                f["train"][which] = np.concatenate([p.reshape(-1) for p in parts])
        for path in (ck, fused):
            run("train", "--resume", path, "-f", self.corpus, "--quiet")
        a, b = datasets(ck), datasets(fused)
        self.assertEqual(set(a), set(b))
        for n in a:
            np.testing.assert_array_equal(a[n], b[n], n)
        with h5py.File(ck, "r") as f, h5py.File(fused, "r") as g:
            np.testing.assert_array_equal(f["train/log/train_loss"][()], g["train/log/train_loss"][()])
            self.assertIsInstance(g["train/adam_v"], h5py.Group)  # rewritten in the new form

    def test_export_half_precision(self):
        src, out = os.path.join(self.d, "src.h5"), os.path.join(self.d, "export.h5")
        run("train", *self.train_args(src, steps=6, eval_every=3), "--quiet")
        run("model", "export", src, "-o", out, "--quiet")
        a, b = datasets(src), datasets(out)
        self.assertEqual(set(a), set(b))
        for n in a:
            self.assertEqual(b[n].dtype, np.float16, n)
            np.testing.assert_array_equal(b[n], a[n].astype(np.float16), n)  # round to nearest even
        with h5py.File(src, "r") as f, h5py.File(out, "r") as g:
            self.assertEqual(sorted(g["train"]), ["log"])  # no optimizer state
            for k in ("step", "val_nats_per_char", "lr"):
                self.assertEqual(f["train"].attrs[k], g["train"].attrs[k])
            for k in ("step", "train_loss", "val_loss"):
                np.testing.assert_array_equal(f[f"train/log/{k}"][()], g[f"train/log/{k}"][()])
            self.assertNotEqual(f.attrs["model_id"], g.attrs["model_id"])
            self.assertIn("model export", g.attrs["history"])
        self.assertLess(os.path.getsize(out), os.path.getsize(src) / 3)
        # every tool reads it; the held-out loss barely moves
        loss = lambda m: float(run("train", "--model", m, "-f", self.corpus, "--eval-only", "--context", 16)
                               .stdout.split()[1])
        self.assertAlmostEqual(loss(out), loss(src), delta=1e-2)
        self.assertTrue(run("generate", "--model", out, "The quick", "-n", 5, "--temperature", 0).stdout)
        p = run("model", "export", src, "--dtype", "f8", "-o", out, check=False)
        self.assertEqual(p.returncode, 2)

    def test_full_disk_keeps_the_last_checkpoint(self):
        out = os.path.join(self.d, "disk.h5")
        run("train", *self.train_args(out, steps=4, eval_every=0), "--quiet")
        with open(out, "rb") as f:
            before = f.read()
        # The tiny model's checkpoint is about 40 MB (weights and two moments): 2 MB cannot hold it.
        args = " ".join(map(str, self.train_args(out, steps=4, eval_every=0)))
        p = subprocess.run(["bash", "-c", f"trap '' XFSZ; ulimit -f 2000; {tool('train')} {args} --quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr.count(b"\n"), 1, p.stderr)
        self.assertIn(b"disk.h5", p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), before)  # the last checkpoint is whole
        self.assertEqual([n for n in os.listdir(self.d) if ".tmp" in n], [])

    def test_progress_on_a_terminal(self):
        import pty
        out = os.path.join(self.d, "tty.h5")
        master, slave = pty.openpty()
        p = subprocess.Popen([tool("train"), *map(str, self.train_args(out, steps=5, eval_every=0))],
                             stderr=slave, stdout=subprocess.DEVNULL)
        os.close(slave)
        text = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            text += chunk
        os.close(master)
        self.assertEqual(p.wait(), 0)
        # one line kept up to date: step, loss, held-out loss, rate, time left
        self.assertIn(b"\r", text)
        for want in (b"step 1/5", b"step 5/5", b"loss ", b"val ", b"tok/s", b"left", b"held-out loss"):
            self.assertIn(want, text)
        # and off a terminal, only the evaluations and the summary (here: the summary)
        p = run("train", *self.train_args(out, steps=5, eval_every=0))
        self.assertNotIn(b"\r", p.stderr)
        self.assertEqual(p.stderr.count(b"\n"), 2, p.stderr)

    def test_usage_errors(self):
        out = os.path.join(self.d, "u.h5")
        for args, code, msg in (
                (["-f", self.corpus], 2, b"--model"),
                (["--model", self.init], 2, b"-f"),
                (["--model", self.init, "-f", self.corpus, "--context", 500, "-o", out], 2, b"n_ctx"),
                (["--model", self.init, "-f", self.corpus, "--lr", -1, "-o", out], 2, b"--lr"),
                (["--model", self.init, "-f", self.corpus, "-o", "-"], 2, b"standard output"),
                (["--resume", self.init, "-f", self.corpus, "-o", out], 1, b"not a checkpoint")):
            p = run("train", *args, check=False)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertIn(msg, p.stderr)
            self.assertEqual(p.stderr.count(b"\n"), 1, p.stderr)
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
