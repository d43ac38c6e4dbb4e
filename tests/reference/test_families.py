"""The Llama family (Llama, Mistral, Qwen2, SmolLM) and GPT-NeoX (Pythia) against float64
references written from Hugging Face's semantics (llama_ref.py, neox_ref.py): Hugging Face
folders written here with random weights (grouped-query attention, Qwen2's q/k/v biases, tied
and untied unembeddings, rope theta 10,000, 1,000,000 and 500,000 with Llama 3.1's scaling;
NeoX with rotary_pct 0.25 and 0.5, parallel and sequential residual; F32, F16 and BF16, one
file and shards), imported with `model import` (the sharded 16-bit ones also with --keep-dtype:
weights kept 16-bit in memory, against the reference on the same values), and models from
`model init --arch`. Every stage tool's saved tensors and /resid, the last
position's log-probabilities, 32 greedy tokens, the KV cache against full re-runs, and
bit-identity for --threads 1 and 2.
Tolerance: max |qkv - reference| <= 1e-4 * max |reference| for every tensor compared."""
import json
import os
import subprocess
import unittest

import h5py
import numpy as np
import torch

import llama_ref
import neox_ref
from qkvtest import read, run, shell, tmpdir, write_tokens
from test_forward import assert_close
from test_tokenizer_json import gpt2_tokenizer_json

ATTN_SAVES = "scores,pattern,q,k,v,z,head_out,out"
GATED_SAVES, MLP_SAVES = "pre,pre_linear,post", "pre,post"
VOCAB = 50304  # GPT-2's 50257 tokens and one added, padded as checkpoints pad it


def base_cfg(**kw):
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 48,
           "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "vocab_size": VOCAB, "hidden_act": "silu",
           "tie_word_embeddings": False, "bos_token_id": 50256, "eos_token_id": 50256}
    cfg.update(kw)
    return cfg


def neox_cfg(**kw):
    cfg = {"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "hidden_size": 64,
           "intermediate_size": 192, "num_hidden_layers": 2, "num_attention_heads": 4,
           "max_position_embeddings": 64, "layer_norm_eps": 1e-5, "rotary_pct": 0.25,
           "rotary_emb_base": 10000, "use_parallel_residual": True, "vocab_size": VOCAB,
           "hidden_act": "gelu", "tie_word_embeddings": False}
    cfg.update(kw)
    return cfg


# name: (config, dtype, shards, q/k/v biases, tied)
FOLDERS = {
    "gqa-f32": (base_cfg(), "F32", 1, False, False),
    "qwen2-bf16-sharded": (base_cfg(model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                                    rope_theta=1000000.0, tie_word_embeddings=True, rms_norm_eps=1e-6),
                           "BF16", 3, True, True),
    "llama3-scaled-f16": (base_cfg(rope_theta=500000.0, head_dim=16, tie_word_embeddings=True,
                                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                 "high_freq_factor": 4.0,
                                                 "original_max_position_embeddings": 32}),
                          "F16", 2, False, True),
    "pythia-parallel-f32": (neox_cfg(), "F32", 1, True, False),
    "neox-sequential-f16-sharded": (neox_cfg(rotary_pct=0.5, use_parallel_residual=False, rotary_emb_base=500),
                                    "F16", 2, True, False),
}


def log_softmax(x):
    return torch.log_softmax(torch.as_tensor(x, dtype=torch.float64), dim=-1)


class FamiliesAgainstReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.models = {}
        for i, (name, (cfg, dtype, shards, bias, tied)) in enumerate(FOLDERS.items()):
            neox = cfg["model_type"] == "gpt_neox"
            sd = neox_ref.random_state(cfg, 10 + i) if neox else llama_ref.random_state(cfg, 10 + i, qkv_bias=bias, tied=tied)
            stored = llama_ref.write_hf_dir(f"{d}/{name}", cfg, sd, dtype, shards,
                                            lambda p: gpt2_tokenizer_json(p, "neox"))
            run("model", "import", "--from", f"{d}/{name}", "-o", f"{d}/{name}.h5", "-q")
            cls.models[name] = (f"{d}/{name}.h5", (neox_ref.NeoX if neox else llama_ref.Llama)(cfg, stored))
            if dtype != "F32" and shards > 1:  # the same weights kept 16-bit, in the file and in memory
                run("model", "import", "--from", f"{d}/{name}", "--keep-dtype", "-o", f"{d}/{name}-kept.h5", "-q")
                cls.models[name + "-kept"] = (f"{d}/{name}-kept.h5", cls.models[name][1])
        for arch, ref in (("llama", llama_ref), ("gpt-neox", neox_ref)):
            init = f"{d}/init-{arch}.h5"
            run("model", "init", "--arch", arch, "--seed", 5, "-o", init, "-q")
            cls.models["init-" + arch] = (init, (ref.NeoX if arch == "gpt-neox" else ref.Llama)(*ref.from_qkv_model(init)))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def stages(self, name, tokens):
        """embed, then attend and mlp of each layer with every save, against the reference."""
        model, ref = self.models[name]
        d = os.path.join(self.d, name + "-run")
        os.makedirs(d, exist_ok=True)
        tok = write_tokens(f"{d}/tok.h5", model, tokens)
        run("embed", "-m", model, tok, "--save", "parts", "-o", f"{d}/embed.h5")
        worst = 0
        with torch.no_grad():
            x = ref.embed(tokens)
            worst = max(worst, assert_close(self, read(f"{d}/embed.h5", "resid"), x, f"{name} embed /resid"))
            with h5py.File(f"{d}/embed.h5") as f:
                self.assertNotIn("embed/pos", f, "rotary models add no position in embed")
            prev = f"{d}/embed.h5"
            mlp_saves = MLP_SAVES if isinstance(ref, neox_ref.NeoX) else GATED_SAVES
            for i in range(ref.cfg["num_hidden_layers"]):
                a, m = f"{d}/attn{i}.h5", f"{d}/mlp{i}.h5"
                run("attend", "-m", model, "-l", i, "--save", ATTN_SAVES, prev, "-o", a)
                run("mlp", "-m", model, "-l", i, "--save", mlp_saves, a, "-o", m)
                cache, x_pre = {}, x
                x = ref.attention(i, x, cache=cache)
                worst = max(worst, assert_close(self, read(a, "resid"), x, f"{name} layer {i} attn /resid"))
                for s in ATTN_SAVES.split(","):
                    worst = max(worst, assert_close(self, read(a, "attn/" + s), cache[s], f"{name} layer {i} /attn/{s}"))
                with h5py.File(a) as f:  # what a parallel-residual mlp reads, and nothing more
                    self.assertEqual("resid_pre" in f, getattr(ref, "parallel", False))
                with h5py.File(m) as f:
                    self.assertNotIn("resid_pre", f)
                cache = {}
                x = ref.mlp(i, x, cache=cache, x_pre=x_pre)
                worst = max(worst, assert_close(self, read(m, "resid"), x, f"{name} layer {i} mlp /resid"))
                for s in mlp_saves.split(","):
                    worst = max(worst, assert_close(self, read(m, "mlp/" + s), cache[s], f"{name} layer {i} /mlp/{s}"))
                prev = m
            # The whole model in one tool is the chain of stage tools, to the bit.
            run("block", "-m", model, "-L", "all", f"{d}/embed.h5", "-o", f"{d}/block.h5")
            self.assertTrue(np.array_equal(read(f"{d}/block.h5", "resid"), read(prev, "resid")))
            # The last position's log-probabilities.
            run("generate", "-m", model, "--from", prev, "-o", f"{d}/logits.h5")
            got = log_softmax(read(f"{d}/logits.h5", "logits")).numpy()
            want = log_softmax(ref.logits(x)[:, -1]).numpy()
            worst = max(worst, assert_close(self, got.reshape(want.shape), want, f"{name} log-probabilities"))
        print(f"  {name}: worst relative difference {worst:.2e}")

    def greedy(self, name, prompt, n=32):
        """32 greedy tokens with the KV cache against the reference re-run on the whole text."""
        model, ref = self.models[name]
        tok = write_tokens(f"{self.d}/{name}-prompt.h5", model, [prompt])
        p = run("generate", "-m", model, "--tokens", tok, "-n", n, "--temperature", 0, "--ignore-eos", "--json")
        out = json.loads(p.stdout)
        seq, ref_ids, ref_lp = list(prompt), [], []
        with torch.no_grad():
            for _ in range(n):
                lp = log_softmax(ref.forward([seq])[0, -1])
                nxt = int(lp.argmax())
                ref_ids.append(nxt)
                ref_lp.append(float(lp[nxt]))
                seq.append(nxt)
        self.assertEqual(out["generated_ids"], ref_ids, f"{name}: greedy tokens")
        assert_close(self, out["logprobs"], ref_lp, f"{name}: log-probabilities of the generated tokens")

    def test_every_stage_of_every_folder(self):
        rng = np.random.default_rng(4)
        for name in self.models:
            with self.subTest(name):
                self.stages(name, rng.integers(0, 50257, size=(2, 13)))

    def test_greedy_generation_and_kv_cache(self):
        for name in self.models:
            with self.subTest(name):
                self.greedy(name, [464, 2068, 7586, 21831, 18045])

    def test_kept_dtype_is_stored_16_bit(self):
        for name, dtype in (("qwen2-bf16-sharded-kept", "BF16"), ("neox-sequential-f16-sharded-kept", "F16")):
            with h5py.File(self.models[name][0]) as f:
                for ds in ("embed/W_E", "blocks/0/attn/W_Q", "blocks/1/mlp/W_out", "unembed/W_U"):
                    self.assertEqual(f[ds].id.get_type().get_size(), 2, f"{name} {ds}")
                self.assertEqual(f["embed/W_E"].dtype, np.float16 if dtype == "F16" else np.float32)
            # model info names how each tensor is stored, in its table and its JSON
            info = json.loads(run("model", "info", "--json", self.models[name][0]).stdout)
            types = {t["name"]: t["dtype"] for t in info["tensors"]}
            self.assertEqual(types["/blocks/1/mlp/W_out"], dtype.lower(), name)
            text = run("model", "info", self.models[name][0]).stdout.decode().splitlines()
            self.assertEqual([l.split()[-1] for l in text if "/blocks/1/mlp/W_out" in l], [dtype.lower()])
        types = {t["name"]: t["dtype"] for t in json.loads(run("model", "info", "--json", self.models["gqa-f32"][0]).stdout)["tensors"]}
        self.assertEqual((types["/embed/W_E"], types["/blocks/0/attn/W_Q"]), ("f32", "f32"))

    def test_threads_bit_identical(self):
        for name in ("gqa-f32", "pythia-parallel-f32", "qwen2-bf16-sharded-kept"):
            model = self.models[name][0]
            tok = write_tokens(f"{self.d}/t.h5", model, np.random.default_rng(5).integers(0, 50257, size=(2, 21)))
            outs = []
            for threads in (1, 2):
                out = f"{self.d}/threads{threads}.h5"
                shell(f"embed -m {model} -t {threads} {tok} | attend -m {model} -t {threads} -l 0 --save {ATTN_SAVES} "
                      f"| mlp -m {model} -t {threads} -l 0 --save pre,post | block -m {model} -t {threads} -L 1: "
                      f"-o {out}")
                with h5py.File(out) as f:
                    outs.append({k: f[k][()] for k in ("resid", "attn/q", "attn/pattern", "attn/z", "mlp/post")})
            for k in outs[0]:
                self.assertTrue(np.array_equal(outs[0][k], outs[1][k]), f"{name} {k}")

    def test_pipes_and_tokenizer(self):
        for name in ("gqa-f32", "pythia-parallel-f32"):
            model = self.models[name][0]
            out = shell(f"tokenize -m {model} 'a fluffy blue creature' | embed -m {model} | attend -m {model} -l 0 "
                        f"--save pattern | mlp -m {model} -l 0 | block -m {model} -L 1: "
                        f"| generate -m {model} --from - --top 3")
            lines = out.decode().strip().split("\n")
            self.assertEqual(lines[-4].split("\t")[0], "rank")  # after the last layer: no logit-lens note
            self.assertEqual([line.split("\t")[0] for line in lines[-3:]], ["1", "2", "3"])
            # The imported tokenizer adds BOS as the folder's tokenizer.json says.
            ids = run("tokenize", "-m", model, "--ids", "Hello").stdout.decode().split()
            self.assertEqual(ids[0], "50256")

    def test_tokenizer_config_in_a_folder(self):
        """tokenize --vocab DIR reads tokenizer_config.json beside tokenizer.json, as import does."""
        d = f"{self.d}/tokcfg"
        os.makedirs(d, exist_ok=True)
        gpt2_tokenizer_json(f"{d}/tokenizer.json", "neox")  # adds <|endoftext|> as BOS
        ids = run("tokenize", "--vocab", d, "--ids", "Hello").stdout.split()
        self.assertEqual(ids[0], b"50256")
        with open(f"{d}/tokenizer_config.json", "w") as f:
            json.dump({"add_bos_token": False, "eos_token": "<|pad|>"}, f)
        ids = run("tokenize", "--vocab", d, "--ids", "Hello").stdout.split()
        self.assertEqual(ids, [b"15496"])

    def test_count_params_of_every_family(self):
        for name in ("init-llama", "init-gpt-neox", "pythia-parallel-f32", "qwen2-bf16-sharded"):
            model = self.models[name][0]
            j = json.loads(run("count-params", "--model", model, "--json").stdout)
            with h5py.File(model) as f:
                stored = []
                f.visititems(lambda n, o: stored.append(o.size) if isinstance(o, h5py.Dataset)
                             and not n.startswith("tokenizer") else None)
                tied = np.array_equal(f["unembed/W_U"][()], f["embed/W_E"][()].T)
                V, D = f["embed/W_E"].shape
            # every stored value counted once, a tied W_U not at all (it is W_E again)
            self.assertEqual(j["model"]["total"], sum(stored) - (V * D if tied else 0), name)

    def test_model_info_and_config(self):
        model = self.models["llama3-scaled-f16"][0]
        info = json.loads(run("model", "info", "--json", model).stdout)
        c = info["config"]
        self.assertEqual((c["arch"], c["n_heads"], c["n_kv_heads"], c["d_head"], c["rope_scaling"]),
                         ("llama", 4, 2, 16, "llama3"))
        self.assertEqual(read(model, "blocks/0/attn/W_K").shape, (2, 48, 16))
        self.assertEqual(read(model, "blocks/0/attn/W_Q").shape, (4, 48, 16))


    def test_interventions_and_inspect_per_query_head(self):
        """--ablate-heads and --patch-heads act on query heads (two of which share a key/value
        head here); inspect draws a query head's pattern."""
        model = self.models["gqa-f32"][0]
        d = self.d
        tok = write_tokens(f"{d}/iv.h5", model, [[5, 6, 7, 8, 9, 10, 11]])
        run("embed", "-m", model, tok, "-o", f"{d}/iv-e.h5")
        run("attend", "-m", model, "-l", 0, "--save", "head_out", f"{d}/iv-e.h5", "-o", f"{d}/iv-a.h5")
        run("attend", "-m", model, "-l", 0, "--ablate-heads", 1, "--save", "head_out,pattern", f"{d}/iv-e.h5",
            "-o", f"{d}/iv-x.h5")
        full, ablated = read(f"{d}/iv-a.h5", "attn/head_out"), read(f"{d}/iv-x.h5", "attn/head_out")
        self.assertTrue(np.all(ablated[:, :, 1] == 0))
        self.assertTrue(np.array_equal(ablated[:, :, 0], full[:, :, 0]))  # head 0 shares head 1's keys
        expect = read(f"{d}/iv-a.h5", "resid").astype(np.float64) - full[:, :, 1]
        assert_close(self, read(f"{d}/iv-x.h5", "resid"), expect, "resid without head 1")
        # patching head 1 back from the full run restores the full run
        run("attend", "-m", model, "-l", 0, "--ablate-heads", 1, "--patch-from", f"{d}/iv-a.h5", "--patch-heads", 1,
            f"{d}/iv-e.h5", "-o", f"{d}/iv-p.h5")
        assert_close(self, read(f"{d}/iv-p.h5", "resid"), read(f"{d}/iv-a.h5", "resid"), "patched back")
        run("inspect", f"{d}/iv-x.h5", "--pattern", "--head", 3, "--png", f"{d}/iv.png")
        with open(f"{d}/iv.png", "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_stage_errors(self):
        model = self.models["pythia-parallel-f32"][0]
        tok = write_tokens(f"{self.d}/e.h5", model, [[1, 2, 3]])
        run("embed", "-m", model, tok, "-o", f"{self.d}/emb.h5")
        # a parallel-residual mlp needs the stream attend began with
        p = run("mlp", "-m", model, "-l", 0, "--force", f"{self.d}/emb.h5", "-o", f"{self.d}/x.h5", check=False)
        self.assertEqual((p.returncode, p.stderr.decode().count("\n")), (1, 1), p.stderr)
        self.assertIn("/resid_pre: not found", p.stderr.decode())
        self.assertFalse(os.path.exists(f"{self.d}/x.h5"))
        # pre_linear exists only for gated MLPs
        run("attend", "-m", model, "-l", 0, f"{self.d}/emb.h5", "-o", f"{self.d}/a.h5")
        p = run("mlp", "-m", model, "-l", 0, "--save", "pre_linear", f"{self.d}/a.h5", "-o", f"{self.d}/x.h5",
                check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("no gated MLP", p.stderr.decode())
        self.assertFalse(os.path.exists(f"{self.d}/x.h5"))


class BadFolders(unittest.TestCase):
    def refused(self, mutate, expect):
        with tmpdir() as d:
            cfg = base_cfg(num_hidden_layers=1)
            sd = llama_ref.random_state(cfg, 1)
            mutate(cfg, sd)
            llama_ref.write_hf_dir(f"{d}/hf", cfg, sd, "F32", 1, lambda p: gpt2_tokenizer_json(p, "neox"))
            p = run("model", "import", "--from", f"{d}/hf", "-o", f"{d}/out.h5", check=False)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 1, err)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn(expect, err)
            self.assertFalse(os.path.exists(f"{d}/out.h5"))

    def test_unknown_model_type(self):
        self.refused(lambda c, s: c.update(model_type="falcon"), "model_type 'falcon'")

    def test_rope_scaling_not_implemented(self):
        self.refused(lambda c, s: c.update(rope_scaling={"rope_type": "yarn", "factor": 4.0}), "'yarn'")

    def test_missing_tensor(self):
        self.refused(lambda c, s: s.pop("model.layers.0.mlp.up_proj.weight"), "mlp.up_proj.weight")

    def test_misshaped_tensor(self):
        def bad(c, s):
            s["model.layers.0.self_attn.k_proj.weight"] = torch.zeros(48, 48, dtype=torch.float64)
        self.refused(bad, "k_proj.weight")


if __name__ == "__main__":
    unittest.main(verbosity=2)
