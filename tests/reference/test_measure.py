"""Direct logit attribution and whole-model capture against the float64 references: the final
stream decomposes into its parts (embeddings, every head_out and b_O, every MLP's out; 1e-5),
attribute's contributions equal an independent float64 computation and sum with the remaining
term to the logit difference (1e-4), block --save keeps what the single tools save (to the
bit), and empty layer ranges pass the stream through."""
import json
import os
import unittest

import h5py
import numpy as np
import torch

import gpt2_ref
import llama_ref
from qkvtest import read, run, shell, tmpdir, write_tokens
from test_forward import assert_close

REL = 1e-5


class Measure(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.gpt2 = f"{d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "--seed", 6, "-o", cls.gpt2, "-q")
        cls.llama = f"{d}/llama.h5"
        run("model", "init", "--arch", "llama", "--seed", 6, "-o", cls.llama, "-q")
        cls.tokens = [[int(t) for t in np.random.default_rng(1).integers(0, 50257, size=11)]]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def capture(self, m, tag, save="head_out,mlp_out,pattern,resid_pre"):
        tok = write_tokens(f"{self.d}/{tag}-tok.h5", m, self.tokens)
        shell(f"embed -m {m} --save parts {tok} | block -m {m} --save {save} -o {self.d}/{tag}-cap.h5")
        return tok, f"{self.d}/{tag}-cap.h5"

    def test_final_stream_is_the_sum_of_its_parts(self):
        for m, tag in ((self.gpt2, "gpt2"), (self.llama, "llama")):
            _, cap = self.capture(m, tag)
            with h5py.File(cap) as f, h5py.File(m) as w:
                total = f["embed/token"][()].astype(np.float64)
                if "embed/pos" in f:
                    total += f["embed/pos"][()]
                for layer in range(2):
                    g = f[f"blocks/{layer}"]
                    total += g["attn/head_out"][()].sum(axis=2) + g["mlp/out"][()]
                    if f"blocks/{layer}/attn/b_O" in w:
                        total += w[f"blocks/{layer}/attn/b_O"][()]
                resid = f["resid"][()].astype(np.float64)
                err = np.abs(total - resid).max() / np.abs(resid).max()
                self.assertLessEqual(err, REL, f"{tag}: the sum of the parts differs by {err:.2e}")
                self.assertEqual(f.attrs["stage"], "mlp")

    def test_capture_equals_the_single_tools(self):
        m = self.gpt2
        tok, cap = self.capture(m, "same", "pattern,q,mlp_out,post,resid_pre,resid_mid")
        d = self.d
        shell(f"embed -m {m} {tok} -o {d}/e.h5")
        shell(f"attend -m {m} -l 0 {d}/e.h5 -o {d}/a0.h5 && mlp -m {m} -l 0 {d}/a0.h5 -o {d}/m0.h5 "
              f"&& attend -m {m} -l 1 --save pattern,q {d}/m0.h5 -o {d}/a1.h5 "
              f"&& mlp -m {m} -l 1 --save post,out {d}/a1.h5 -o {d}/m1.h5")
        with h5py.File(cap) as f:
            pairs = [("blocks/1/attn/pattern", f"{d}/a1.h5", "attn/pattern"),
                     ("blocks/1/attn/q", f"{d}/a1.h5", "attn/q"),
                     ("blocks/1/mlp/post", f"{d}/m1.h5", "mlp/post"),
                     ("blocks/1/mlp/out", f"{d}/m1.h5", "mlp/out"),
                     ("blocks/1/resid_pre", f"{d}/m0.h5", "resid"),
                     ("blocks/1/resid_mid", f"{d}/a1.h5", "resid")]
            for name, path, other in pairs:
                self.assertTrue(np.array_equal(f[name][()], read(path, other)), name)

    def test_capture_at_chosen_positions(self):
        """block --save --positions keeps exactly those positions of the whole capture (the
        pattern's query positions, every key), in the order given, and records them."""
        m, d = self.llama, self.d
        save = "pattern,q,k,head_out,mlp_out,pre,resid_pre"
        tok, whole = self.capture(m, "whole", save)
        part = f"{d}/part-cap.h5"
        shell(f"embed -m {m} {tok} -o {d}/pos-e.h5 && block -m {m} --save {save} --positions 7,0:2,-1 "
              f"{d}/pos-e.h5 -o {part}")
        keep = [7, 0, 1, 10]
        with h5py.File(whole) as w, h5py.File(part) as p:
            self.assertEqual(p["blocks/positions"][()].tolist(), keep)
            self.assertTrue(np.array_equal(p["resid"][()], w["resid"][()]))
            for layer in range(2):
                for name in ("attn/q", "attn/k", "attn/head_out", "mlp/out", "mlp/pre", "resid_pre"):
                    full = w[f"blocks/{layer}/{name}"][()]
                    self.assertTrue(np.array_equal(p[f"blocks/{layer}/{name}"][()], full[:, keep]), name)
                pat = w[f"blocks/{layer}/attn/pattern"][()]
                self.assertTrue(np.array_equal(p[f"blocks/{layer}/attn/pattern"][()], pat[:, :, keep]))
        for args, code, words in ((["--save", "q", "--positions", "11"], 2, "--positions"),
                                  (["--positions", "0"], 2, "--save")):
            p = run("block", "-m", m, *args, f"{d}/pos-e.h5", "-o", f"{d}/bad.h5", check=False)
            self.assertEqual(p.returncode, code, p.stderr)
            self.assertIn(words, p.stderr.decode())
            self.assertFalse(os.path.exists(f"{d}/bad.h5"))

    def test_empty_ranges_pass_through(self):
        m, d = self.gpt2, self.d
        tok = write_tokens(f"{d}/p-tok.h5", m, self.tokens)
        shell(f"embed -m {m} {tok} -o {d}/p-e.h5 && block -m {m} -L 0:0 {d}/p-e.h5 -o {d}/p-0.h5 "
              f"&& block -m {m} {d}/p-e.h5 -o {d}/p-all.h5 && block -m {m} -L 2: {d}/p-all.h5 -o {d}/p-end.h5")
        with h5py.File(f"{d}/p-0.h5") as f:
            self.assertEqual((f.attrs["stage"], int(f.attrs["layer"])), ("embed", -1))
        with h5py.File(f"{d}/p-end.h5") as f:
            self.assertEqual((f.attrs["stage"], int(f.attrs["layer"])), ("mlp", 1))
        self.assertTrue(np.array_equal(read(f"{d}/p-0.h5", "resid"), read(f"{d}/p-e.h5", "resid")))
        self.assertTrue(np.array_equal(read(f"{d}/p-end.h5", "resid"), read(f"{d}/p-all.h5", "resid")))
        p = run("block", "-m", m, "-L", "3:", f"{d}/p-all.h5", check=False)
        self.assertEqual(p.returncode, 2)

    def test_attribution_against_the_reference(self):
        ans, foil = " Paris", " London"
        for m, tag in ((self.gpt2, "gpt2"), (self.llama, "llama")):
            tok = write_tokens(f"{self.d}/{tag}-atok.h5", m, self.tokens)
            j = json.loads(run("attribute", "-m", m, "--tokens", tok, "--answer", ans, "--foil", foil,
                               "--json", "-o", f"{self.d}/{tag}-dla.h5").stdout)
            a = int(run("tokenize", "-m", m, "--ids", ans).stdout.split()[0])
            f_ = int(run("tokenize", "-m", m, "--ids", foil).stdout.split()[0])
            got = {p["part"]: p["value"] for p in j["parts"]}
            with torch.no_grad():
                want, remaining, logit_diff = reference_dla(m, tag, self.tokens, a, f_)
            scale = max(abs(v) for v in want.values())
            for k, v in want.items():
                self.assertAlmostEqual(got[k], v, delta=1e-4 * scale, msg=f"{tag} {k}")
            self.assertAlmostEqual(j["remaining"], remaining, delta=1e-4 * scale)
            self.assertAlmostEqual(j["sum"], j["logit_diff"], delta=1e-4 * scale)
            self.assertAlmostEqual(j["logit_diff"], logit_diff, delta=1e-4 * scale)
            heads = read(f"{self.d}/{tag}-dla.h5", "attribution/heads")
            self.assertEqual(heads.shape, (1, 2, 4))
            self.assertAlmostEqual(float(heads[0, 1, 3]), want["1.3"], delta=1e-4 * scale)
        run("inspect", f"{self.d}/gpt2-dla.h5:/attribution/heads", "--slice", "0,:,:", "--png", f"{self.d}/h.png")
        with open(f"{self.d}/h.png", "rb") as fh:
            self.assertEqual(fh.read(4), b"\x89PNG")

    def test_block_interventions_equal_the_single_tools(self):
        """block --ablate-heads, --scale-head and --patch-from a capture (L.H names) give the
        bits attend gives with the same intervention on its layer."""
        m, d = self.gpt2, self.d
        tok = write_tokens(f"{d}/i-tok.h5", m, self.tokens)
        other = write_tokens(f"{d}/i-other.h5", m, [self.tokens[0][::-1]])
        shell(f"embed -m {m} {tok} -o {d}/i-e.h5 && embed -m {m} {other} | block -m {m} --save head_out -o {d}/i-cap.h5")
        shell(f"block -m {m} --ablate-heads 1.2 --scale-head 0.1=0.5 --patch-from {d}/i-cap.h5 --patch-heads 1.3 "
              f"{d}/i-e.h5 -o {d}/i-block.h5")
        # the same with the single tools: layer 1's patch is the capture's head_out of layer 1
        with h5py.File(f"{d}/i-cap.h5") as f:
            ho = f["blocks/1/attn/head_out"][()]
        with h5py.File(f"{d}/i-patch.h5", "w") as f, h5py.File(f"{d}/i-cap.h5") as c:
            for k, v in c.attrs.items():
                f.attrs[k] = v
            f["tokens"] = c["tokens"][()]
            f["attn/head_out"] = ho
            f["attn"].attrs["layer"] = np.int64(1)
        shell(f"attend -m {m} -l 0 --scale-head 1=0.5 {d}/i-e.h5 | mlp -m {m} -l 0 "
              f"| attend -m {m} -l 1 --ablate-heads 2 --patch-from {d}/i-patch.h5 --patch-heads 3 "
              f"| mlp -m {m} -l 1 -o {d}/i-chain.h5")
        self.assertTrue(np.array_equal(read(f"{d}/i-block.h5", "resid"), read(f"{d}/i-chain.h5", "resid")))
        with h5py.File(f"{d}/i-block.h5") as f:
            mod = f.attrs["modified"]
        mod = mod.decode() if isinstance(mod, bytes) else mod
        self.assertIn("ablated head 1.2", mod)
        self.assertIn("patched head 1.3", mod)
        for args, msg in ((["--ablate-heads", "2.0"], "layer 2 is not among"),
                          (["--ablate-heads", "0.9"], "head 9 is out of range"),
                          (["--ablate-heads", "3"], "is not LAYER.HEAD"),
                          (["--patch-from", f"{d}/i-e.h5", "--patch-heads", "0.1"], "capture it with block --save")):
            p = run("block", "-m", m, *args, f"{d}/i-e.h5", "-o", f"{d}/bad.h5", check=False)
            err = p.stderr.decode()
            self.assertIn(p.returncode, (1, 2), err)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn(msg, err)
            self.assertFalse(os.path.exists(f"{d}/bad.h5"))

    def test_bad_input(self):
        tok = write_tokens(f"{self.d}/b-tok.h5", self.gpt2, self.tokens)
        for args, msg in ((["--tokens", tok], "--answer"),
                          (["--tokens", tok, "--answer", " a", "--position", 11], "--position 11")):
            p = run("attribute", "-m", self.gpt2, *args, "-o", f"{self.d}/bad.h5", check=False)
            err = p.stderr.decode()
            self.assertEqual((p.returncode, err.count("\n")), (2, 1), err)
            self.assertIn(msg, err)
            self.assertFalse(os.path.exists(f"{self.d}/bad.h5"))


def reference_dla(model, tag, tokens, a, f):
    """Each part of the final stream at the last position from the float64 reference, and its
    direct contribution to logit(a) - logit(f) with the final norm's scale frozen."""
    if tag == "gpt2":
        cfg, sd = gpt2_ref.from_qkv_model(model)
        ref = gpt2_ref.GPT2(cfg, sd)
        x = ref.embed(tokens)
        tok_emb = ref.sd["wte.weight"][torch.as_tensor(tokens)]
        parts = {"embed": tok_emb[0, -1], "pos": (x - tok_emb)[0, -1]}
        w, b = ref.sd["ln_f.weight"], ref.sd["ln_f.bias"]
        W_U = ref.sd["wte.weight"].T
        center, eps = True, cfg["layer_norm_epsilon"]
    else:
        cfg, sd = llama_ref.from_qkv_model(model)
        ref = llama_ref.Llama(cfg, sd)
        x = ref.embed(tokens)
        parts = {"embed": x[0, -1]}
        w, b = ref.sd["model.norm.weight"], torch.zeros(cfg["hidden_size"], dtype=torch.float64)
        W_U = ref.sd["lm_head.weight"].T
        center, eps = False, cfg["rms_norm_eps"]
    for layer in range(2):
        cache = {}
        after = ref.attention(layer, x, cache=cache)
        for h in range(cache["head_out"].shape[2]):
            parts[f"{layer}.{h}"] = cache["head_out"][0, -1, h]
        if tag == "gpt2":
            parts[f"{layer} b_O"] = ref.sd[f"h.{layer}.attn.c_proj.bias"]
        x = ref.mlp(layer, after)
        parts[f"mlp {layer}"] = (x - after)[0, -1]
    final = x[0, -1]
    mean = final.mean() if center else 0.0
    rstd = 1.0 / torch.sqrt(((final - mean) ** 2).mean() + eps)
    u = W_U[:, a] - W_U[:, f]
    out = {}
    for k, c in parts.items():
        cc = c - c.mean() if center else c
        out[k] = float((cc * rstd * w * u).sum())
    remaining = float((b * u).sum())
    normed = (final - mean) * rstd * w + b
    logit_diff = float((normed * u).sum())
    return out, remaining, logit_diff


if __name__ == "__main__":
    unittest.main(verbosity=2)
