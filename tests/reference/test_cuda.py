"""--device cuda against --device cpu: every compute tool's output within 1e-4 relative, and
greedy generation with the same ids, on the tiny model, the gpt2 preset and an imported
Hugging Face folder. Exits 77 (CTest: skipped) when no CUDA device is present."""
import json
import os
import subprocess
import sys
import unittest

import h5py
import numpy as np

from qkvtest import run, shell, tmpdir, tool

REL_TOL = 1e-4


def have_cuda():
    with tmpdir() as d:
        run("model", "init", "--preset", "tiny", "-o", f"{d}/m.h5", "-q")
        p = subprocess.run([tool("generate"), "-m", f"{d}/m.h5", "x", "-n", "1", "--device", "cuda"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        print(p.stderr.decode().strip())
    return p.returncode == 0


def compare(tc, a, b):
    worst = 0.0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" else None)
        tc.assertTrue(names)
        for n in names:
            x, y = fa[n][()].astype(np.float64), fb[n][()].astype(np.float64)
            fin = np.isfinite(x)
            tc.assertTrue((fin == np.isfinite(y)).all(), n)
            scale = max(np.abs(x[fin]).max(), 1e-30)
            rel = np.abs(x[fin] - y[fin]).max() / scale
            tc.assertLessEqual(rel, REL_TOL, f"{n}: cuda differs from cpu by {rel:.2e}")
            worst = max(worst, rel)
    return worst


class CudaEqualsCpu(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        run("model", "init", "--preset", "tiny", "--seed", 2, "-o", f"{d}/tiny.h5", "-q")
        run("model", "init", "--preset", "gpt2", "--seed", 2, "-o", f"{d}/gpt2.h5", "-q")
        sys.path.insert(0, os.path.dirname(__file__))
        import gpt2_ref
        cfg = {"n_layer": 2, "n_embd": 48, "n_head": 3, "n_positions": 64, "vocab_size": 50257,
               "n_inner": 192, "layer_norm_epsilon": 1e-5}
        gpt2_ref.write_hf_dir(f"{d}/hf", cfg, gpt2_ref.random_hf_state(cfg, 4), "F16")
        run("model", "import", "--from", f"{d}/hf", "-o", f"{d}/hf.h5", "-q")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_model(self, name):
        d, m = self.d, f"{self.d}/{name}.h5"
        text = "The quick brown fox jumps over the lazy dog, and then it rests."
        run("tokenize", "-m", m, text, "-o", f"{d}/{name}_tok.h5")
        outs = {}
        for dev in ("cpu", "cuda"):
            shell(f"embed -m {m} {d}/{name}_tok.h5 --device {dev} --save parts "
                  f"| attend -m {m} -l 0 --device {dev} --save scores,pattern,q,k,v,z,head_out,out "
                  f"| mlp -m {m} -l 0 --device {dev} --save pre,post | block -m {m} -L 1: --device {dev} "
                  f"| generate -m {m} --from - --all-positions --device {dev} -o {d}/{name}_{dev}.h5")
            shell(f"embed -m {m} {d}/{name}_tok.h5 > {d}/{name}_e.h5; attend -m {m} -l 1 --force --device {dev} "
                  f"--context {d}/{name}_e.h5 --save pattern {d}/{name}_e.h5 -o {d}/{name}_x_{dev}.h5")
            outs[dev] = json.loads(run("generate", "-m", m, text, "-n", 24, "--temperature", 0,
                                       "--ignore-eos", "--json", "--device", dev).stdout)
        w = compare(self, f"{d}/{name}_cpu.h5", f"{d}/{name}_cuda.h5")
        w = max(w, compare(self, f"{d}/{name}_x_cpu.h5", f"{d}/{name}_x_cuda.h5"))
        self.assertEqual(outs["cpu"]["generated_ids"], outs["cuda"]["generated_ids"])
        np.testing.assert_allclose(outs["cpu"]["logprobs"], outs["cuda"]["logprobs"], rtol=1e-4)
        print(f"  {name}: worst relative difference {w:.2e}; greedy ids equal")

    def test_tiny(self):
        self.check_model("tiny")

    def test_gpt2_preset(self):
        self.check_model("gpt2")

    def test_imported_hf(self):
        self.check_model("hf")


if __name__ == "__main__":
    if not have_cuda():
        print("skipped: no CUDA device (or no CUDA build) on this machine")
        sys.exit(77)
    unittest.main(verbosity=2)
