"""generate against the PyTorch reference: log-probabilities, greedy decoding, the KV cache
against full re-runs, seeds, streaming whole characters, stop strings and limits."""
import json
import os
import subprocess
import unittest

import h5py
import numpy as np
import torch

import gpt2_ref
from qkvtest import read, run, shell, tmpdir, tool, write_tokens

HF_CFG = {"n_layer": 2, "n_embd": 48, "n_head": 3, "n_positions": 64, "vocab_size": 50257,
          "n_inner": 192, "layer_norm_epsilon": 1e-5}


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


class AgainstReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.models = {}
        tiny = f"{d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "--seed", 3, "-o", tiny, "-q")
        cls.models["tiny"] = (tiny, gpt2_ref.GPT2(*gpt2_ref.from_qkv_model(tiny)))
        sd = gpt2_ref.write_hf_dir(f"{d}/hf", HF_CFG, gpt2_ref.random_hf_state(HF_CFG, 9))
        run("model", "import", "--from", f"{d}/hf", "-o", f"{d}/hf.h5", "-q")
        cls.models["hf"] = (f"{d}/hf.h5", gpt2_ref.GPT2(HF_CFG, sd))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def full_logits(self, model, tokens, name):
        """Logits at every position by the pipeline tools: embed | block | generate --from."""
        tok = write_tokens(f"{self.d}/{name}_tok.h5", model, [tokens])
        shell(f"embed -m {model} {tok} | block -m {model} | generate -m {model} --from - --all-positions -o {self.d}/{name}_logits.h5")
        with h5py.File(f"{self.d}/{name}_logits.h5") as f:  # typed: int64 [batch, pos]
            np.testing.assert_array_equal(f["logits"].attrs["positions"], [np.arange(len(tokens))])
        return read(f"{self.d}/{name}_logits.h5", "logits")[0]

    def test_logprobs_greedy_and_cache(self):
        for name, (model, ref) in self.models.items():
            with self.subTest(model=name):
                prompt = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290]
                # 1. log-probabilities of every position against the reference (1e-4 relative)
                ours = log_softmax(self.full_logits(model, prompt, name + "_p"))
                with torch.no_grad():
                    x = ref.embed([prompt])
                    for i in range(ref.cfg["n_layer"]):
                        x = ref.mlp(i, ref.attention(i, x))
                    want = torch.log_softmax(ref.logits(x), -1)[0].numpy()
                err = np.abs(ours - want).max()
                self.assertLessEqual(err, 1e-4 * np.abs(want).max(), f"{name}: logprob diff {err}")
                # 2. greedy generation of 32 tokens against the reference's greedy loop
                tok = write_tokens(f"{self.d}/{name}_prompt.h5", model, [prompt])
                j = json.loads(run("generate", "-m", model, "--tokens", tok, "-n", 32, "--temperature", 0,
                                   "--ignore-eos", "--json").stdout)
                seq, ref_ids, min_gap = list(prompt), [], np.inf
                with torch.no_grad():
                    for _ in range(32):
                        x = ref.embed([seq])
                        for i in range(ref.cfg["n_layer"]):
                            x = ref.mlp(i, ref.attention(i, x))
                        l = ref.logits(x)[0, -1]
                        top2 = torch.topk(l, 2).values
                        min_gap = min(min_gap, float(top2[0] - top2[1]))
                        seq.append(int(l.argmax()))
                        ref_ids.append(seq[-1])
                self.assertGreater(min_gap, 1e-4, "reference too close to a tie to compare argmaxes")
                self.assertEqual(j["generated_ids"], ref_ids)
                # 3. the cached decoding's log-probabilities equal a full re-run's (1e-5 relative)
                full = log_softmax(self.full_logits(model, prompt + j["generated_ids"], name + "_g"))
                rerun = [full[len(prompt) - 1 + i, t] for i, t in enumerate(j["generated_ids"])]
                np.testing.assert_allclose(j["logprobs"], rerun, rtol=1e-5)
                print(f"  {name}: logprob diff {err:.2e}, 32 greedy tokens equal, smallest top-2 gap {min_gap:.3g}")

    def test_generate_equals_pipeline_prediction(self):
        model = self.models["tiny"][0]
        prompt = [15496, 995, 11, 428]
        tok = write_tokens(f"{self.d}/eq_tok.h5", model, [prompt])
        j = json.loads(run("generate", "-m", model, "--tokens", tok, "-n", 1, "--temperature", 0, "--json").stdout)
        out = json.loads(shell(f"embed -m {model} {tok} | block -m {model} --layers all | generate -m {model} --from - --json --top 3"))
        self.assertEqual(out["top"][0]["id"], j["generated_ids"][0])
        self.assertAlmostEqual(out["top"][0]["logprob"], j["logprobs"][0], delta=1e-5 * abs(j["logprobs"][0]))
        self.assertFalse(out["logit_lens"])
        lens = shell(f"embed -m {model} {tok} | block -m {model} -L 0:1 | generate -m {model} --from - --top 3").decode()
        self.assertIn("logit lens", lens)


class Behaviour(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.model = f"{d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "--seed", 8, "-o", cls.model, "-q")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def gen(self, *args):
        return json.loads(run("generate", "-m", self.model, *args, "--json").stdout)

    def test_seed_reproduces_on_any_thread_count(self):
        a = self.gen("Once upon a time", "-n", 20, "--seed", 5, "--ignore-eos", "--threads", 1)
        b = self.gen("Once upon a time", "-n", 20, "--seed", 5, "--ignore-eos", "--threads", 2)
        c = self.gen("Once upon a time", "-n", 20, "--seed", 6, "--ignore-eos")
        self.assertEqual(a["generated_ids"], b["generated_ids"])
        self.assertEqual(a["logprobs"], b["logprobs"])
        self.assertNotEqual(a["generated_ids"], c["generated_ids"])
        k = self.gen("Once upon a time", "-n", 10, "--seed", 5, "--top-k", 3, "--top-p", 0.9, "--temperature", 0.7)
        self.assertEqual(len(k["generated_ids"]), 10)

    def test_limits_and_output_file(self):
        p = subprocess.run([tool("generate"), "-m", self.model, "hello", "-n", "200"], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"n_ctx = 128", p.stderr)
        self.assertIn(b"--slide", p.stderr)
        s = self.gen("hello", "-n", 200, "--slide", "--ignore-eos", "--seed", 1)
        self.assertEqual(len(s["generated_ids"]), 200)
        run("generate", "-m", self.model, "hello world", "-n", 7, "--ignore-eos", "-o", f"{self.d}/g.h5")
        import h5py
        with h5py.File(f"{self.d}/g.h5") as f:
            self.assertEqual(f["tokens"].shape, (1, 9))
            self.assertEqual(f["generate/logprobs"].shape, (7,))
            self.assertEqual(f.attrs["stage"], "tokens")
        run("embed", "-m", self.model, f"{self.d}/g.h5", "-o", f"{self.d}/ge.h5")  # feeds the pipeline

    def test_streams_whole_characters_and_stops(self):
        # A crafted model whose greedy continuation cycles through the tokens of "日本語 ü":
        # each character is split over two tokens, so a naive decoder would print half of it.
        cycle = [64, 33768, 98, 17312, 105, 45739, 252, 6184, 120]  # "a", then 日 本 語 " ü"
        cfg = {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64, "vocab_size": 50257,
               "n_inner": 64, "layer_norm_epsilon": 1e-5}
        sd = {k: torch.zeros_like(v) for k, v in gpt2_ref.random_hf_state(cfg, 0).items()}
        for k in sd:
            if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or k == "ln_f.weight":
                sd[k] = torch.ones_like(sd[k])
        lm_head = torch.zeros(50257, 16)
        for slot, t in enumerate(cycle):
            sd["wte.weight"][t, slot] = 1.0
            nxt = cycle[1:][slot % (len(cycle) - 1)] if slot else cycle[1]
            lm_head[nxt if slot == 0 else cycle[1 + slot % (len(cycle) - 1)], slot] = 10.0
        sd["lm_head.weight"] = lm_head
        gpt2_ref.write_hf_dir(f"{self.d}/cyc", cfg, sd)
        model = f"{self.d}/cyc.h5"
        run("model", "import", "--from", f"{self.d}/cyc", "-o", model, "-q")
        p = subprocess.Popen([tool("generate"), "-m", model, "a", "-n", "24", "--temperature", "0"],
                             stdout=subprocess.PIPE)
        chunks = []
        while True:
            b = os.read(p.stdout.fileno(), 65536)
            if not b:
                break
            chunks.append(b)
        self.assertEqual(p.wait(), 0)
        for c in chunks:
            c.decode("utf-8")  # every chunk written is whole characters
        self.assertEqual(b"".join(chunks).decode(), "日本語 ü日本語 ü日本語 ü")
        j = json.loads(run("generate", "-m", model, "a", "-n", 24, "--temperature", 0, "--stop", "語 ü日", "--json").stdout)
        self.assertEqual(j["text"], "日本")
        self.assertEqual(j["stop_reason"], "stop")


if __name__ == "__main__":
    unittest.main(verbosity=2)
