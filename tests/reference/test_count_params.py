"""count-params: the figures of the GPT-2 and GPT-3 papers, pinned; counts from model files."""
import json
import subprocess
import unittest

import h5py
import numpy as np

from qkvtest import run, tmpdir, tool


def count(*args):
    return json.loads(run("count-params", *args, "--json").stdout)


class Presets(unittest.TestCase):
    def test_gpt3_walkthrough_figures(self):
        j = count("--preset", "gpt3")
        for m in ("W_Q", "W_K", "W_V", "W_O"):
            self.assertEqual(j["head"][m], 1_572_864)
        self.assertEqual(j["head"]["total"], 6_291_456)              # about 6.3 million
        self.assertEqual(j["block"]["attention_matrices"], 603_979_776)  # around 600 million
        self.assertEqual(j["model"]["attention_matrices"], 57_982_058_496)  # just under 58 billion
        self.assertEqual(round(j["model"]["total"] / 1e9), 175)
        text = run("count-params", "--preset", "gpt3").stdout.decode()
        self.assertIn("57,982,058,496", text)
        self.assertIn("6,291,456", text)

    def test_gpt2_totals_with_tied_embeddings(self):
        for name, total in (("gpt2", 124_439_808), ("gpt2-medium", 354_823_168),
                            ("gpt2-large", 774_030_080), ("gpt2-xl", 1_557_611_200)):
            self.assertEqual(count("--preset", name)["model"]["total"], total, name)

    def test_gpt3_presets_round_to_table_2_1(self):
        names = {"gpt3-small": 125e6, "gpt3-medium": 350e6, "gpt3-large": 760e6, "gpt3-xl": 1.3e9,
                 "gpt3-2.7b": 2.7e9, "gpt3-6.7b": 6.7e9, "gpt3-13b": 13e9, "gpt3": 175e9}
        for name, size in names.items():
            total = count("--preset", name)["model"]["total"]
            digits = len(f"{size:.3g}".replace(".", "").rstrip("0").split("e")[0])
            if name == "gpt3-medium":
                # 355.9M: the paper's "350M" is 1.7% under the count (as for GPT-2 medium's 355M)
                self.assertLess(abs(total / size - 1), 0.02)
                continue
            self.assertEqual(float(f"{total:.{digits}g}"), size, f"{name}: {total}")
        xl = count("--preset", "gpt3-xl")
        self.assertEqual(xl["config"]["n_heads"] * xl["config"]["d_head"], 2048)
        self.assertEqual(len(xl["notes"]), 1)
        text = run("count-params", "--preset", "gpt3-xl").stdout.decode()
        self.assertEqual(sum(1 for l in text.splitlines() if l.startswith("note:")), 1)

    def test_flags_count_as_given(self):
        j = count("--n-layers", 24, "--d-model", 2048, "--n-heads", 24, "--d-head", 128)
        self.assertEqual(j["block"]["attention_matrices"], 4 * 2048 * 128 * 24)
        self.assertAlmostEqual(j["model"]["total"] / 1e9, 1.52, delta=0.01)
        nb = count("--n-layers", 2, "--d-model", 64, "--no-bias", "--untied", "--vocab", 100, "--n-ctx", 16)
        self.assertEqual(nb["block"]["attention_biases"], 0)
        self.assertEqual(nb["model"]["unembedding"], 64 * 100)
        f = count("--preset", "gpt2", "--context", 1024)
        L, T, A = 12, 1024, 768
        self.assertEqual(f["flops_per_token"]["attention"], 4 * L * T * A)
        self.assertEqual(f["flops_per_token"]["matmul"], 2 * (12 * 12 * 768 * 768 + 768 * 50257))
        p = subprocess.run([tool("count-params")], stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 2)


class FromFile(unittest.TestCase):
    def test_file_agrees_with_preset_and_datasets(self):
        with tmpdir() as d:
            m = f"{d}/tiny.h5"
            run("model", "init", "--preset", "tiny", "-o", m, "-q")
            from_file = count("--model", m)
            preset = count("--preset", "tiny")
            self.assertEqual(from_file["model"], preset["model"])
            with h5py.File(m) as f:
                stored = 0
                def add(name, obj):
                    nonlocal stored
                    if isinstance(obj, h5py.Dataset) and not name.startswith("tokenizer"):
                        stored += obj.size
                f.visititems(add)
                vocab, dm = f["unembed/W_U"].shape[1], f["unembed/W_U"].shape[0]
            self.assertEqual(from_file["model"]["total"], stored - vocab * dm - vocab)  # W_U, b_U
            # a file missing a dataset says which
            with h5py.File(m, "r+") as f:
                del f["blocks/1/mlp/b_in"]
            p = subprocess.run([tool("count-params"), "--model", m], stderr=subprocess.PIPE)
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"missing dataset /blocks/1/mlp/b_in", p.stderr)

    def test_llama_family_file_agrees_with_preset(self):
        """GQA's smaller W_K and W_V, three MLP matrices, RMSNorm without bias, no W_pos, no b_U;
        W_U tied in llama-tiny (stored twice, counted once)."""
        with tmpdir() as d:
            m = f"{d}/llama.h5"
            run("model", "init", "--arch", "llama", "-o", m, "-q")
            from_file, preset = count("--model", m), count("--preset", "llama-tiny")
            self.assertEqual(from_file["model"], preset["model"])
            L, D, H, Hkv, dh, F, V = 2, 64, 4, 2, 16, 176, 50257
            self.assertEqual(preset["block"]["attention_matrices"], 2 * H * D * dh + 2 * Hkv * D * dh)
            self.assertEqual(preset["model"]["total"], V * D + L * (2 * H * D * dh + 2 * Hkv * D * dh + 3 * D * F + 2 * D) + D)


class LlamaFamilyPresets(unittest.TestCase):
    def test_published_totals(self):
        """The totals the model cards and Hugging Face's num_parameters() give."""
        for name, total in (("llama2-7b", 6738415616), ("llama3-8b", 8030261248), ("mistral-7b", 7241732096),
                            ("qwen2.5-0.5b", 494032768), ("smollm2-135m", 134515008),
                            ("pythia-160m", 162322944)):
            self.assertEqual(count("--preset", name)["model"]["total"], total, name)

    def test_grouped_query_attention_by_flags(self):
        full, grouped = count("--preset", "llama3-8b", "--kv-heads", 32), count("--preset", "llama3-8b")
        # 24 of 32 key/value heads fewer, W_K and W_V each 4096 x 128, in 32 layers
        self.assertEqual(full["model"]["total"] - grouped["model"]["total"], 32 * 24 * 2 * 4096 * 128)
        text = run("count-params", "--preset", "llama3-8b").stdout.decode()
        self.assertIn("8 key/value heads", text)
        self.assertIn("shared by 4 heads", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
