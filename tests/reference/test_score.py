"""score against float64 references (gpt2_ref.py, llama_ref.py): teacher-forced log-probabilities
in sliding windows computed independently here by the rule of Hugging Face's perplexity guide,
the summary figures, answers and foils, --value, KL from a base run, the stream input, and bad
input. Tolerance: 1e-4 relative (log-probabilities) unless stated."""
import json
import math
import os
import subprocess
import unittest

import numpy as np
import torch

import gpt2_ref
import llama_ref
from qkvtest import read, run, shell, tmpdir, tool, write_tokens
from test_forward import assert_close


def ref_forward(ref, tokens):
    x = ref.embed([tokens])
    n = ref.cfg.get("n_layer") or ref.cfg.get("num_hidden_layers")
    for i in range(n):
        x = ref.mlp(i, ref.attention(i, x))
    return torch.log_softmax(ref.logits(x)[0], dim=-1)  # [pos, vocab]


def ref_window_logprobs(ref, tokens, context, stride):
    """Hugging Face's perplexity guide: windows of `context` sliding by `stride`; in each, the
    tokens after the previous window's end are scored, but not the window's first token."""
    out, prev_end = [math.nan] * len(tokens), 0
    for begin in range(0, len(tokens), stride):
        end = min(begin + context, len(tokens))
        lp = ref_forward(ref, tokens[begin:end])
        for t in range(max(prev_end, begin + 1), end):  # labels shift: a window's first token is not predicted
            out[t] = float(lp[t - 1 - begin, tokens[t]])
        prev_end = end
        if end == len(tokens):
            break
    return np.array(out)


class Score(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.model = f"{d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "--seed", 8, "-o", cls.model, "-q")
        cls.ref = gpt2_ref.GPT2(*gpt2_ref.from_qkv_model(cls.model))
        cls.tokens = [int(t) for t in np.random.default_rng(3).integers(0, 50257, size=50)]
        cls.tok = write_tokens(f"{d}/tok.h5", cls.model, [cls.tokens])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_windows_and_summary(self):
        out = f"{self.d}/s.h5"
        j = json.loads(run("score", "-m", self.model, "--tokens", self.tok, "--context", 16, "--stride", 6,
                           "--save", "rank", "-o", out, "--json").stdout)
        with torch.no_grad():
            want = ref_window_logprobs(self.ref, self.tokens, 16, 6)
        got = read(out, "score/logprob")[0]
        self.assertTrue(np.isnan(got[0]) and np.isnan(want[0]))
        assert_close(self, got[1:], want[1:], "windowed log-probabilities")
        self.assertEqual(j["tokens_scored"], 49)
        mean = -want[1:].mean()
        self.assertAlmostEqual(j["mean_nats_per_token"], mean, delta=1e-4 * mean)
        self.assertAlmostEqual(math.log(j["perplexity"]), mean, delta=1e-4 * mean)
        text = run("tokenize", "-m", self.model, "--decode", *self.tokens[1:]).stdout
        self.assertEqual(j["scored_bytes"], len(text))
        self.assertAlmostEqual(j["bits_per_byte"], -want[1:].sum() / math.log(2) / len(text), delta=1e-4)
        self.assertEqual(int(read(out, "score/rank")[0, 0]), 0)
        self.assertTrue((read(out, "score/rank")[0, 1:] >= 1).all())

    def test_stride_equal_to_context(self):
        """Each window's first token has nothing before it there and is left out, as in the guide."""
        out = f"{self.d}/s2.h5"
        j = json.loads(run("score", "-m", self.model, "--tokens", self.tok, "--context", 10, "-o", out,
                           "--json").stdout)
        with torch.no_grad():
            want = ref_window_logprobs(self.ref, self.tokens, 10, 10)
        got = read(out, "score/logprob")[0]
        self.assertTrue(np.array_equal(np.isnan(got), np.isnan(want)))
        self.assertEqual(list(np.flatnonzero(np.isnan(got))), [0, 10, 20, 30, 40])
        ok = ~np.isnan(want)
        assert_close(self, got[ok], want[ok], "stride = context")
        self.assertEqual(j["tokens_scored"], 45)

    def test_agrees_with_train_eval_only(self):
        """train --eval-only's windows of T tokens predicting the next T are score's windows of
        T + 1 tokens sliding by T, on the held-out text."""
        text = "Now is the winter of our discontent made glorious summer by this sun of York. " * 12
        path = f"{self.d}/corpus.txt"
        with open(path, "w") as f:
            f.write(text)
        p = run("train", "-m", self.model, "-f", path, "--context", 16, "--val-fraction", 0.5, "--eval-only")
        train = dict(line.split() for line in p.stdout.decode().splitlines())
        with open(f"{self.d}/val.txt", "w") as f:
            f.write(text[int(len(text) * 0.5):])
        j = json.loads(run("score", "-m", self.model, "-f", f"{self.d}/val.txt", "--context", 17, "--stride", 16,
                           "--json").stdout)
        self.assertEqual(j["tokens_scored"], int(train["val_tokens"]))
        want = float(train["val_nats_per_token"])
        self.assertAlmostEqual(j["mean_nats_per_token"], want, delta=1e-4 * want)

    def test_answer_foil_and_value(self):
        prompt = self.tokens[:12]
        tok = write_tokens(f"{self.d}/p.h5", self.model, [prompt])
        ans = [int(x) for x in run("tokenize", "-m", self.model, "--ids", " Paris is").stdout.split()]
        foil = [int(x) for x in run("tokenize", "-m", self.model, "--ids", " London").stdout.split()]
        j = json.loads(run("score", "-m", self.model, "--tokens", tok, "--answer", " Paris is", "--foil", " London",
                           "--json").stdout)["answers"][0]
        with torch.no_grad():
            lp = ref_forward(self.ref, prompt + ans)
            want = sum(float(lp[len(prompt) - 1 + k, a]) for k, a in enumerate(ans))
            x = self.ref.embed([prompt])
            for i in range(2):
                x = self.ref.mlp(i, self.ref.attention(i, x))
            logits = self.ref.logits(x)[0, -1]
        self.assertAlmostEqual(j["logprob"], want, delta=1e-4 * abs(want))
        diff = float(logits[ans[0]] - logits[foil[0]])
        self.assertAlmostEqual(j["logit_diff"], diff, delta=1e-4 * float(logits.abs().max()))
        self.assertEqual(j["first_token_rank"], int((logits > logits[ans[0]]).sum()) + 1)
        value = run("score", "-m", self.model, "--tokens", tok, "--answer", " Paris is", "--foil", " London",
                    "--value").stdout.decode()
        self.assertEqual(value.count("\n"), 1)
        self.assertEqual(float(value), j["logit_diff"])  # the same number, at full precision

    def test_stream_input_and_kl(self):
        base = f"{self.d}/base.h5"
        run("score", "-m", self.model, "--tokens", self.tok, "-o", base, "-q")
        m, tok = self.model, self.tok
        same = json.loads(shell(f"embed -m {m} {tok} | block -m {m} | score -m {m} --from - --kl-base {base} --json"))
        self.assertLess(same["kl"]["max"], 1e-9)  # a run against itself
        # a stream scored equals the text scored
        direct = json.loads(run("score", "-m", m, "--tokens", tok, "--json").stdout)
        self.assertAlmostEqual(same["mean_nats_per_token"], direct["mean_nats_per_token"], delta=1e-9)
        # an ablated run: KL per position from the base's and the ablated run's distributions
        shell(f"embed -m {m} {tok} | attend -m {m} -l 0 --ablate-heads 0,1 | mlp -m {m} -l 0 | block -m {m} -L 1: "
              f"| generate -m {m} --from - --all-positions -o {self.d}/ab-logits.h5")
        ab = json.loads(shell(f"embed -m {m} {tok} | attend -m {m} -l 0 --ablate-heads 0,1 | mlp -m {m} -l 0 "
                              f"| block -m {m} -L 1: | score -m {m} --from - --kl-base {base} --json"))
        p_base = torch.log_softmax(torch.as_tensor(read(base, "score/next_logprobs")[0], dtype=torch.float64), -1)
        p_ab = torch.log_softmax(torch.as_tensor(read(f"{self.d}/ab-logits.h5", "logits")[0], dtype=torch.float64), -1)
        want = (p_base.exp() * (p_base - p_ab)).sum(-1).numpy()
        assert_close(self, ab["kl"]["per_position"], want, "KL per position")
        self.assertGreater(ab["kl"]["mean"], 1e-6)

    def test_llama_family(self):
        with tmpdir() as d:
            m = f"{d}/llama.h5"
            run("model", "init", "--arch", "llama", "--seed", 2, "-o", m, "-q")
            ref = llama_ref.Llama(*llama_ref.from_qkv_model(m))
            tokens = self.tokens[:30]
            tok = write_tokens(f"{d}/t.h5", m, [tokens])
            run("score", "-m", m, "--tokens", tok, "--context", 12, "--stride", 5, "-o", f"{d}/s.h5")
            with torch.no_grad():
                want = ref_window_logprobs(ref, tokens, 12, 5)
            assert_close(self, read(f"{d}/s.h5", "score/logprob")[0, 1:], want[1:], "llama windows")

    def test_bad_input(self):
        d, m = self.d, self.model
        short = write_tokens(f"{d}/short.h5", m, [self.tokens[:10]])
        run("score", "-m", m, "--tokens", short, "-o", f"{d}/short-s.h5")
        cases = [
            (["--tokens", self.tok, "--context", 8, "--stride", 9], 2, "--stride 9 is larger than --context 8"),
            (["--tokens", self.tok, "--kl-base", f"{d}/short-s.h5"], 1, "shape [1, 10, 50257], but this run's is"),
            (["--tokens", self.tok, "--answer", " Paris", "--position", 99], 2, "--position 99: the text has 50"),
            (["--tokens", self.tok, "--foil", " x"], 2, "--foil goes with --answer"),
            (["--from", f"{d}/emb.h5", "--answer", " Paris"], 2, "score reads it after the last layer"),
        ]
        run("embed", "-m", m, self.tok, "-o", f"{d}/emb.h5")
        for args, code, msg in cases:
            p = run("score", "-m", m, *args, "-o", f"{d}/bad.h5", check=False)
            err = p.stderr.decode()
            self.assertEqual((p.returncode, err.count("\n")), (code, 1), f"{args}: {err}")
            self.assertIn(msg, err)
            self.assertFalse(os.path.exists(f"{d}/bad.h5"))
        shell(f"embed -m {m} {self.tok} | block -m {m} -o {d}/final.h5")
        p = run("score", "-m", m, "--from", f"{d}/final.h5", "--answer", " Paris is", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("only a one-token answer", p.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
