"""Every stage of the forward pass against the pure-PyTorch reference (gpt2_ref.py), on a
model made by `model init --preset tiny`, on its 16-bit exports (model export --dtype f16, bf16:
weights kept 16-bit in memory) and on Hugging Face folders written here (F32, F16).
Tolerance: max |qkv - reference| <= 1e-4 * max |reference| for every tensor compared."""
import json
import os
import unittest

import h5py
import numpy as np
import torch

import gpt2_ref
from qkvtest import read, run, shell, tmpdir, write_tokens

REL_TOL = 1e-4
ATTN_SAVES = "scores,pattern,q,k,v,z,head_out,out"


def assert_close(tc, got, ref, what):
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    tc.assertEqual(got.shape, ref.shape, f"{what}: shape")
    finite = np.isfinite(ref)
    tc.assertTrue(np.array_equal(finite, np.isfinite(got)), f"{what}: masked cells differ")
    scale = np.abs(ref[finite]).max()
    err = np.abs(got[finite] - ref[finite]).max()
    tc.assertLessEqual(err, REL_TOL * scale, f"{what}: max abs diff {err:.3g} > {REL_TOL} * {scale:.3g}")
    return err / scale


def run_stages(model, tokens_file, n_layers, d, extra_attend=()):
    """Runs embed, then attend and mlp of each layer, each to its own file."""
    files = {"embed": os.path.join(d, "embed.h5")}
    run("embed", "--model", model, tokens_file, "--save", "parts", "-o", files["embed"])
    prev = files["embed"]
    for i in range(n_layers):
        a, m = os.path.join(d, f"attn{i}.h5"), os.path.join(d, f"mlp{i}.h5")
        run("attend", "--model", model, "--layer", i, "--save", ATTN_SAVES, *extra_attend, prev, "-o", a)
        run("mlp", "--model", model, "--layer", i, "--save", "pre,post", a, "-o", m)
        files[f"attn{i}"], files[f"mlp{i}"], prev = a, m, m
    return files


class ForwardAgainstReference(unittest.TestCase):
    def check_model(self, model, ref, tokens, d):
        tok = write_tokens(os.path.join(d, "tok.h5"), model, tokens)
        files = run_stages(model, tok, ref.cfg["n_layer"], d)
        with torch.no_grad():
            x = ref.embed(tokens)
            assert_close(self, read(files["embed"], "resid"), x, "embed /resid")
            assert_close(self, read(files["embed"], "embed/token"), ref.sd["wte.weight"][torch.as_tensor(tokens, dtype=torch.long)], "embed/token")
            worst = 0
            for i in range(ref.cfg["n_layer"]):
                cache = {}
                x = ref.attention(i, x, cache=cache)
                f = files[f"attn{i}"]
                worst = max(worst, assert_close(self, read(f, "resid"), x, f"layer {i} attn /resid"))
                for name in ATTN_SAVES.split(","):
                    worst = max(worst, assert_close(self, read(f, "attn/" + name), cache[name], f"layer {i} /attn/{name}"))
                cache = {}
                x = ref.mlp(i, x, cache=cache)
                f = files[f"mlp{i}"]
                worst = max(worst, assert_close(self, read(f, "resid"), x, f"layer {i} mlp /resid"))
                for name in ("pre", "post"):
                    assert_close(self, read(f, "mlp/" + name), cache[name], f"layer {i} /mlp/{name}")
        print(f"  worst relative difference: {worst:.2e}")
        return files

    def test_tiny_preset(self):
        with tmpdir() as d:
            model = os.path.join(d, "tiny.h5")
            run("model", "init", "--preset", "tiny", "--seed", 7, "-o", model)
            cfg, sd = gpt2_ref.from_qkv_model(model)
            tokens = np.random.default_rng(1).integers(0, cfg["vocab_size"], size=(2, 17))
            self.check_model(model, gpt2_ref.GPT2(cfg, sd), tokens, d)

    def check_hf(self, dtype, prefix):
        cfg = {"n_layer": 2, "n_embd": 48, "n_head": 3, "n_positions": 40, "vocab_size": 50257,
               "n_inner": 192, "layer_norm_epsilon": 1e-5}
        with tmpdir() as d:
            hf = os.path.join(d, "hf")
            sd = gpt2_ref.write_hf_dir(hf, cfg, gpt2_ref.random_hf_state(cfg, 3), dtype, prefix)
            model = os.path.join(d, "imported.h5")
            run("model", "import", "--from", hf, "-o", model)
            tokens = np.random.default_rng(2).integers(0, cfg["vocab_size"], size=(3, 11))
            self.check_model(model, gpt2_ref.GPT2(cfg, sd), tokens, d)

    def test_sixteen_bit_weights(self):
        """model export --dtype f16 | bf16: the weights stay 16-bit in memory, widened in the
        products; every stage, the last logits and 6 greedy tokens (the one-row products of the
        KV cache) against float64 on the same rounded weights."""
        with tmpdir() as d:
            full = os.path.join(d, "tiny.h5")
            run("model", "init", "--preset", "tiny", "--seed", 11, "-o", full)
            for dtype in ("f16", "bf16"):
                model = os.path.join(d, f"tiny-{dtype}.h5")
                run("model", "export", full, "--dtype", dtype, "-o", model)
                with h5py.File(model) as f:
                    self.assertEqual(f["blocks/0/mlp/W_in"].id.get_type().get_size(), 2)
                cfg, sd = gpt2_ref.from_qkv_model(model)  # h5py widens both layouts exactly
                ref = gpt2_ref.GPT2(cfg, sd)
                tokens = np.random.default_rng(3).integers(0, cfg["vocab_size"], size=(2, 13))
                files = self.check_model(model, ref, tokens, d)
                run("generate", "-m", model, "--from", files[f"mlp{cfg['n_layer'] - 1}"], "-o", f"{d}/logits.h5")
                with torch.no_grad():
                    x = ref.embed(tokens)
                    for i in range(cfg["n_layer"]):
                        x = ref.mlp(i, ref.attention(i, x))
                    assert_close(self, read(f"{d}/logits.h5", "logits").reshape(2, -1), ref.logits(x)[:, -1], f"{dtype} logits")
                prompt = [464, 2068, 7586]
                tok = write_tokens(f"{d}/p.h5", model, [prompt])
                out = json.loads(run("generate", "-m", model, "--tokens", tok, "-n", 6, "--temperature", 0,
                                     "--ignore-eos", "--json").stdout)
                seq = list(prompt)
                with torch.no_grad():
                    for _ in range(6):
                        x = ref.embed([seq])
                        for i in range(cfg["n_layer"]):
                            x = ref.mlp(i, ref.attention(i, x))
                        seq.append(int(ref.logits(x)[0, -1].argmax()))
                self.assertEqual(out["generated_ids"], seq[len(prompt):], f"{dtype}: greedy tokens")

    def test_hf_import_f32(self):
        self.check_hf("F32", "transformer.")

    def test_hf_import_f16(self):
        self.check_hf("F16", "")

    def test_head_out_sums_to_out(self):
        with tmpdir() as d:
            model = os.path.join(d, "tiny.h5")
            run("model", "init", "--preset", "tiny", "--seed", 3, "-o", model)
            tok = write_tokens(os.path.join(d, "tok.h5"), model, [[5, 6, 7, 8, 9, 10]])
            out = shell(f"embed -m {model} {tok} | attend -m {model} -l 0 --save head_out,out -o {d}/a.h5")
            self.assertEqual(out, b"")
            b_O = read(model, "blocks/0/attn/b_O")
            head_out = read(f"{d}/a.h5", "attn/head_out").astype(np.float64)
            total = head_out.sum(axis=2) + b_O
            assert_close(self, total, read(f"{d}/a.h5", "attn/out"), "sum of head_out + b_O vs out")

    def test_cross_attention_and_no_mask(self):
        with tmpdir() as d:
            model = os.path.join(d, "tiny.h5")
            run("model", "init", "--preset", "tiny", "--seed", 4, "-o", model)
            cfg, sd = gpt2_ref.from_qkv_model(model)
            ref = gpt2_ref.GPT2(cfg, sd)
            q_tok, c_tok = [[11, 12, 13, 14]], [[100, 200, 300, 400, 500, 600, 700]]
            write_tokens(f"{d}/q.h5", model, q_tok)
            write_tokens(f"{d}/c.h5", model, c_tok)
            run("embed", "-m", model, f"{d}/q.h5", "-o", f"{d}/qe.h5")
            run("embed", "-m", model, f"{d}/c.h5", "-o", f"{d}/ce.h5")
            run("attend", "-m", model, "-l", 0, "--context", f"{d}/ce.h5", "--save", "pattern", f"{d}/qe.h5", "-o", f"{d}/x.h5")
            run("attend", "-m", model, "-l", 0, "--no-mask", "--save", "pattern", f"{d}/qe.h5", "-o", f"{d}/n.h5")
            with torch.no_grad():
                cache = {}
                x = ref.attention(0, ref.embed(q_tok), ctx=ref.embed(c_tok), causal=False, cache=cache)
                assert_close(self, read(f"{d}/x.h5", "resid"), x, "cross-attention /resid")
                assert_close(self, read(f"{d}/x.h5", "attn/pattern"), cache["pattern"], "cross-attention pattern")
                self.assertEqual(read(f"{d}/x.h5", "attn/pattern").shape, (1, 4, 4, 7))
                cache = {}
                x = ref.attention(0, ref.embed(q_tok), causal=False, cache=cache)
                assert_close(self, read(f"{d}/n.h5", "resid"), x, "--no-mask /resid")
                assert_close(self, read(f"{d}/n.h5", "attn/pattern"), cache["pattern"], "--no-mask pattern")
            with h5py.File(f"{d}/x.h5") as f:
                self.assertIn("cross-attention", f.attrs["modified"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
