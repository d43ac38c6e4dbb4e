"""Bit-identical results for any --threads and on every run, whatever kernels OpenBLAS picks.

CTest runs this file once per OpenBLAS core type (OPENBLAS_CORETYPE=Haswell, Zen, SkylakeX and
unset): the Haswell and Zen kernels split a threaded product's sums by thread count, so these
tests fail there unless qkv itself decides every sum (libcore/cpu_gemm). Each test compares
whole outputs byte for byte across --threads 1, 2 and 3 and a repeated run: inference through
a pipe (every saved site), generation (ids and log-probabilities) and training (all weights).
The model is wide and the prompt long enough that products span several tiles both ways."""
import json
import os
import sys
import unittest

import h5py
import numpy as np

from qkvtest import dataset_values, run, shell, tmpdir, write_tokens

THREADS = (1, 2, 3, 1)
CORE = os.environ.get("OPENBLAS_CORETYPE", "")


def all_datasets(path):
    """Every numeric dataset's bytes."""
    return {k[1:]: v.tobytes() for k, v in dataset_values(path).items() if v.dtype.kind != "O"}


class Determinism(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.model = f"{d}/wide.h5"
        # d_mlp 640 and 300 positions: the MLP's products have 3 x 2 tiles, the unembedding many.
        run("model", "init", "--preset", "tiny", "--layers", 2, "--d-model", 160, "--heads", 5,
            "--d-mlp", 640, "--ctx", 320, "--seed", 3, "-o", cls.model, "--quiet")
        tokens = np.random.default_rng(9).integers(0, 50257, size=(2, 300))
        cls.tok = write_tokens(f"{d}/tok.h5", cls.model, tokens)
        with open(f"{d}/corpus.txt", "w") as f:
            f.write("Now is the winter of our discontent made glorious summer by this sun of York. " * 40)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assert_same_for_all_threads(self, outputs):
        first = outputs[0]
        for t, out in zip(THREADS[1:], outputs[1:]):
            self.assertEqual(sorted(out), sorted(first))
            for k in first:
                self.assertEqual(out[k], first[k], f"{k} differs with --threads {t}")

    def test_the_kernels_asked_for_are_the_ones_run(self):
        p = run("embed", "-m", self.model, self.tok, "-o", f"{self.d}/e.h5")
        with h5py.File(f"{self.d}/e.h5") as f:
            history = f.attrs["history"]
        history = history.decode() if isinstance(history, bytes) else history
        self.assertIn("OpenBLAS ", history)
        if CORE:
            self.assertIn(f"OpenBLAS {CORE}", history)
        print(f"\n  {history.splitlines()[-1]}", file=sys.stderr)

    def test_inference_every_site(self):
        d, m = self.d, self.model
        outs = []
        for i, t in enumerate(THREADS):
            shell(f"embed -m {m} {self.tok} | attend -m {m} -l 0 --threads {t} "
                  f"--save scores,pattern,q,k,v,z,head_out,out | mlp -m {m} -l 0 --threads {t} --save pre,post "
                  f"| block -m {m} -L 1: --threads {t} | generate -m {m} --from - --threads {t} -o {d}/i{i}.h5")
            shell(f"embed -m {m} {self.tok} | block -m {m} -L all --threads {t} -o {d}/b{i}.h5")
            out = all_datasets(f"{d}/i{i}.h5")
            out.update({"block/" + k: v for k, v in all_datasets(f"{d}/b{i}.h5").items()})
            outs.append(out)
        self.assertIn("logits", outs[0])
        self.assertIn("attn/pattern", outs[0])
        self.assert_same_for_all_threads(outs)

    def test_llama_and_neox_every_site(self):
        """Grouped-query attention, rotary positions, SwiGLU; and GPT-NeoX's partial rotary and
        parallel residual: the same bytes for every thread count."""
        d = self.d
        for arch, extra in (("llama", ("--kv-heads", 2)), ("gpt-neox", ())):
            m = f"{d}/{arch}.h5"
            run("model", "init", "--arch", arch, "--layers", 2, "--d-model", 160, "--heads", 4, *extra,
                "--d-mlp", 640, "--ctx", 320, "--seed", 4, "-o", m, "--quiet")
            tok = write_tokens(f"{d}/tok-{arch}.h5", m, np.random.default_rng(9).integers(0, 50257, size=(2, 300)))
            outs = []
            for i, t in enumerate(THREADS):
                shell(f"embed -m {m} {tok} | attend -m {m} -l 0 --threads {t} --save q,k,v,pattern,z,head_out "
                      f"| mlp -m {m} -l 0 --threads {t} --save pre,post | block -m {m} -L 1: --threads {t} "
                      f"| generate -m {m} --from - --threads {t} -o {d}/{arch}{i}.h5")
                outs.append(all_datasets(f"{d}/{arch}{i}.h5"))
            self.assertIn("logits", outs[0])
            self.assert_same_for_all_threads(outs)

    def test_generation_ids_and_logprobs(self):
        outs = []
        prompt = "It was the best of times, it was the worst of times, " * 6
        for t in THREADS:
            g = json.loads(run("generate", "-m", self.model, prompt, "-n", 24, "--seed", 5,
                               "--ignore-eos", "--threads", t, "--json").stdout)
            greedy = json.loads(run("generate", "-m", self.model, prompt, "-n", 8, "--temperature", 0,
                                    "--ignore-eos", "--threads", t, "--json").stdout)
            outs.append({"sampled": json.dumps([g["generated_ids"], g["logprobs"]]).encode(),
                         "greedy": json.dumps([greedy["generated_ids"], greedy["logprobs"]]).encode()})
        self.assertEqual(len(json.loads(outs[0]["sampled"])[0]), 24)
        self.assert_same_for_all_threads(outs)

    def test_training_weights(self):
        d = self.d
        outs = []
        for i, t in enumerate(THREADS):
            run("train", "--model", self.model, "-f", f"{d}/corpus.txt", "--steps", 3, "--batch", 2,
                "--context", 128, "--lr", 3e-3, "--warmup", 1, "--eval-every", 0, "--threads", t,
                "-o", f"{d}/t{i}.h5", "--quiet")
            outs.append(all_datasets(f"{d}/t{i}.h5"))
        self.assertIn("blocks/1/mlp/W_out", outs[0])
        self.assertNotEqual(outs[0]["blocks/1/mlp/W_out"], all_datasets(self.model)["blocks/1/mlp/W_out"])
        self.assert_same_for_all_threads(outs)


def cpu_runs(core):
    """Whether this CPU has the instructions of an OpenBLAS core type's kernels."""
    need = {"SkylakeX": {"avx512f", "avx512bw", "avx512dq", "avx512vl"}, "Cooperlake": {"avx512_bf16"}}
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    return need.get(core, set()) <= set(flags)


if __name__ == "__main__":
    if not cpu_runs(CORE):
        print(f"skipped: this CPU cannot run OpenBLAS's {CORE} kernels")
        sys.exit(77)
    unittest.main(verbosity=2)
