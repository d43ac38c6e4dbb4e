"""The tools composed as a user composes them: files against real pipes, block against the
chain of single tools, thread counts, round trips, and the documented file layout (h5py)."""
import os
import subprocess
import unittest

import h5py
import numpy as np

from qkvtest import read, run, shell, tmpdir, tool, write_tokens


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
        attrs = {k: v for k, v in f.attrs.items() if k != "history"}
    return out, attrs


def assert_identical(tc, a, b, skip_attrs=()):
    da, aa = datasets(a)
    db, ab = datasets(b)
    tc.assertEqual(sorted(da), sorted(db))
    for k in da:
        x, y = da[k], db[k]
        if x.dtype.kind == "O":
            tc.assertEqual(list(x.ravel()), list(y.ravel()), k)
        else:
            tc.assertEqual(x.tobytes(), y.tobytes(), f"{k} differs between {a} and {b}")
    for k in skip_attrs:
        aa.pop(k, None)
        ab.pop(k, None)
    tc.assertEqual(aa, ab)


class Pipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.model = os.path.join(d, "tiny.h5")
        run("model", "init", "--preset", "tiny", "--seed", 11, "-o", cls.model)
        tokens = np.random.default_rng(5).integers(0, 50257, size=(2, 23))
        cls.tok = write_tokens(os.path.join(d, "tok.h5"), cls.model, tokens)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_pipes_equal_files_and_block_equals_chain(self):
        d, m = self.d, self.model
        run("embed", "-m", m, self.tok, "-o", f"{d}/e.h5")
        run("attend", "-m", m, "-l", 0, "--save", "pattern", f"{d}/e.h5", "-o", f"{d}/a0.h5")
        run("mlp", "-m", m, "-l", 0, f"{d}/a0.h5", "-o", f"{d}/m0.h5")
        run("attend", "-m", m, "-l", 1, f"{d}/m0.h5", "-o", f"{d}/a1.h5")
        run("mlp", "-m", m, "-l", 1, f"{d}/a1.h5", "-o", f"{d}/files.h5")
        shell(f"embed -m {m} < {self.tok} | attend -m {m} -l 0 --save pattern | mlp -m {m} -l 0 "
              f"| attend -m {m} -l 1 | mlp -m {m} -l 1 - > {d}/pipes.h5")
        assert_identical(self, f"{d}/files.h5", f"{d}/pipes.h5")
        shell(f"embed -m {m} {self.tok} | block -m {m} --layers 0:2 -o {d}/block.h5")
        self.assertEqual(read(f"{d}/block.h5", "resid").tobytes(), read(f"{d}/files.h5", "resid").tobytes())
        shell(f"embed -m {m} {self.tok} | block -m {m} -L 0:1 | block -m {m} -L 1: > {d}/block2.h5")
        self.assertEqual(read(f"{d}/block2.h5", "resid").tobytes(), read(f"{d}/files.h5", "resid").tobytes())
        shell(f"embed -m {m} {self.tok} | block -m {m} -L all > {d}/block3.h5")
        self.assertEqual(read(f"{d}/block3.h5", "resid").tobytes(), read(f"{d}/files.h5", "resid").tobytes())
        # --stats: the forward's batch, positions and layers, the loads, peak memory on stderr;
        # the output is the same
        run("embed", "-m", m, self.tok, "-o", f"{d}/e.h5")
        err = run("block", "-m", m, "--stats", f"{d}/e.h5", "-o", f"{d}/stats.h5").stderr.decode()
        self.assertRegex(err, r"^forward: 2 x 23 tokens, layers 0:2 in [\d.]+ s \([\d.]+ tokens/s\)\n"
                              r"load: [\d.]+ s\npeak memory: [\d.]+ MiB\n$")
        self.assertEqual(read(f"{d}/stats.h5", "resid").tobytes(), read(f"{d}/files.h5", "resid").tobytes())
        with h5py.File(f"{d}/block.h5") as f:
            self.assertEqual(f.attrs["stage"], "mlp")
            self.assertEqual(f.attrs["layer"], 1)
        # saves of earlier tools travel with the stream and say which layer they came from
        with h5py.File(f"{d}/pipes.h5") as f:
            self.assertEqual(f["attn"].attrs["layer"], 0)
            self.assertEqual(f["attn/pattern"].shape, (2, 4, 23, 23))

    def test_documented_layout(self):
        d, m = self.d, self.model
        shell(f"embed -m {m} {self.tok} --save parts | attend -m {m} -l 0 "
              f"--save scores,pattern,q,k,v,z,head_out,out | mlp -m {m} -l 0 --save pre,post > {d}/all.h5")
        B, T, D, H, dh, F = 2, 23, 64, 4, 16, 256
        expect = {"tokens": ((B, T), "i"), "token_text": ((B, T), "O"), "resid": ((B, T, D), "f"),
                  "embed/token": ((B, T, D), "f"), "embed/pos": ((B, T, D), "f"),
                  "attn/scores": ((B, H, T, T), "f"), "attn/pattern": ((B, H, T, T), "f"),
                  "attn/q": ((B, T, H, dh), "f"), "attn/k": ((B, T, H, dh), "f"),
                  "attn/v": ((B, T, H, dh), "f"), "attn/z": ((B, T, H, dh), "f"),
                  "attn/head_out": ((B, T, H, D), "f"), "attn/out": ((B, T, D), "f"),
                  "mlp/pre": ((B, T, F), "f"), "mlp/post": ((B, T, F), "f")}
        with h5py.File(f"{d}/all.h5") as f:
            for name, (shape, kind) in expect.items():
                self.assertEqual(f[name].shape, shape, name)
                self.assertEqual(f[name].dtype.kind, kind, name)
                if kind == "f":
                    self.assertEqual(f[name].dtype.itemsize, 4, name)
            self.assertEqual(f.attrs["format"], "qkv-activations")
            self.assertEqual(f.attrs["version"], 1)
            self.assertEqual(f.attrs["stage"], "mlp")
            self.assertEqual(f.attrs["layer"], 0)
            hist = f.attrs["history"].split("\n")
            self.assertEqual(len(hist), 4)  # the test's line, embed, attend, mlp
            self.assertIn("embed", hist[1])
            self.assertIn("qkv 0.1.0 cpu", hist[2])
            self.assertIn("mlp -m", hist[3])
            sc = f["attn/scores"][0, 0]
            self.assertTrue(np.isneginf(sc[0, 1]))  # masked cells are -inf in the scores
            self.assertEqual(f["attn/pattern"][0, 0, 0, 1], 0.0)
        with h5py.File(m) as f:
            self.assertEqual(f.attrs["format"], "qkv-model")
            c = f["config"].attrs
            self.assertEqual((c["n_layers"], c["d_model"], c["n_heads"], c["d_head"], c["d_mlp"], c["n_ctx"], c["vocab_size"]),
                             (2, 64, 4, 16, 256, 128, 50257))
            self.assertEqual(f["blocks/1/attn/W_Q"].shape, (4, 64, 16))
            self.assertEqual(f["blocks/1/attn/W_O"].shape, (4, 16, 64))
            self.assertEqual(f["blocks/1/mlp/W_in"].shape, (64, 256))
            self.assertEqual(f["unembed/W_U"].shape, (64, 50257))
            self.assertEqual(f["tokenizer/vocab"][15496].decode(), "Hello")
            np.testing.assert_array_equal(f["unembed/W_U"][()], f["embed/W_E"][()].T)
            # GPT-2's initialisation
            self.assertAlmostEqual(float(f["blocks/0/mlp/W_in"][()].std()), 0.02, delta=0.001)
            self.assertAlmostEqual(float(f["blocks/0/mlp/W_out"][()].std()), 0.02 / np.sqrt(4), delta=0.001)
            np.testing.assert_array_equal(f["blocks/0/ln1/w"][()], 1.0)
            np.testing.assert_array_equal(f["blocks/0/attn/b_Q"][()], 0.0)

    def test_dimension_names(self):
        """Every dataset qkv writes in a pipeline, a capture, score, attribute (both methods), a sweep, steer and
        model files of every family carries its dimensions' names (HDF5 dimension labels, as
        h5py shows them), those qkv-files(5) documents; the tokenizer and config are not arrays
        of named dimensions."""
        d, m = self.d, self.model
        with open(f"{d}/p.txt", "w") as f:
            f.write("a b\nc\n")
        shell(f"tokenize -m {m} --lines --pad left -f {d}/p.txt -o {d}/named-tok.h5")
        shell(f"embed -m {m} {d}/named-tok.h5 --save parts | attend -m {m} -l 0 --save scores,pattern,q,k,v,z,head_out,out "
              f"| mlp -m {m} -l 0 --save pre,post,out | block -m {m} -L 1: --save resid_pre,pattern,head_out "
              f"--positions 0,-1 > {d}/named.h5")
        run("score", "-m", m, "--tokens", f"{d}/named-tok.h5", "--save", "entropy,rank", "-o", f"{d}/named-score.h5")
        run("attribute", "-m", m, "--tokens", f"{d}/named-tok.h5", "--answer", " a", "-o", f"{d}/named-attr.h5")
        shell(f"tokenize -m {m} 'a b c' | embed -m {m} | block -m {m} --sweep ablate-heads --answer ' a' "
              f"-o {d}/named-sweep.h5")
        run("steer", "-m", m, "-l", 1, "--positive", f"{d}/p.txt", "--negative", f"{d}/p.txt", "-o", f"{d}/named-steer.h5")
        shell(f"tokenize -m {m} 'a b c' -o {d}/named-from.h5 && attribute -m {m} 'a c c' --answer ' a' --method atp "
              f"--patch-from {d}/named-from.h5 -o {d}/named-atp.h5")
        shell(f"tokenize -m {m} 'a b c d' | embed -m {m} | generate -m {m} --from - --all-positions -o {d}/named-logits.h5")
        with open(f"{d}/corpus.txt", "w") as f:
            f.write("a fluffy blue creature roamed the verdant forest " * 4)
        run("block", "-m", m, "-f", f"{d}/corpus.txt", "--window", 8, "--save", "resid_pre,z,post",
            "--append", f"{d}/named-store.h5")
        files = [f"{d}/named{s}.h5" for s in ("", "-score", "-attr", "-sweep", "-steer", "-atp", "-logits", "-store")]
        for preset in ("tiny", "llama-tiny", "pythia-tiny"):
            run("model", "init", "--preset", preset, "-o", f"{d}/named-{preset}.h5")
            files.append(f"{d}/named-{preset}.h5")
        named = {}
        for path in files:
            with h5py.File(path) as f:
                def visit(name, obj, path=path):
                    if isinstance(obj, h5py.Dataset) and not name.startswith(("tokenizer", "config")):
                        labels = [dim.label for dim in obj.dims]
                        self.assertTrue(all(labels), f"{path}:/{name}: dimension labels {labels}")
                        named["/" + name] = labels
                f.visititems(visit)
        for name, labels in (("/attn/pattern", ["batch", "head", "query_pos", "key_pos"]),
                             ("/attn/k", ["batch", "pos", "kv_head", "d_head"]),
                             ("/blocks/1/attn/head_out", ["batch", "pos", "head", "d_model"]),
                             ("/mask", ["batch", "pos"]),
                             ("/mlp/post", ["batch", "pos", "d_mlp"]), ("/score/next_logprobs", ["batch", "pos", "vocab"]),
                             ("/attribution/heads", ["batch", "layer", "head"]), ("/sweep/metric", ["layer", "variant"]),
                             ("/atp/grad_z", ["layer", "pos", "head", "d_head"]), ("/atp/positions", ["layer", "pos"]),
                             ("/steer/vector", ["d_model"]), ("/logits", ["batch", "pos", "vocab"]),
                             ("/store/1/z", ["window", "pos", "head", "d_head"]), ("/store/positions", ["pos"]), ("/blocks/0/attn/W_K", ["kv_head", "d_model", "d_head"]),
                             ("/pos_embed/W_pos", ["pos", "d_model"]), ("/unembed/W_U", ["d_model", "vocab"])):
            self.assertEqual(named[name], labels, name)

    def test_round_trips(self):
        d, m = self.d, self.model
        # model files: -o against stdout through a pipe; the same seed gives the same model
        shell(f"model init --preset tiny --seed 11 | cat > {d}/piped_model.h5")
        assert_identical(self, m, f"{d}/piped_model.h5")
        # activation files: through a file and through stdin/stdout
        run("embed", "-m", m, self.tok, "-o", f"{d}/e_file.h5")
        shell(f"cat {self.tok} | embed -m {m} | cat > {d}/e_pipe.h5")
        assert_identical(self, f"{d}/e_file.h5", f"{d}/e_pipe.h5")
        # an activation file read back and written through a pipe by h5py's own reading
        with open(f"{d}/e_pipe.h5", "rb") as src:
            p = subprocess.run([tool("attend"), "-m", m, "-l", "0"], stdin=src, stdout=subprocess.PIPE, check=True)
        with open(f"{d}/a_pipe.h5", "wb") as out:
            out.write(p.stdout)
        run("attend", "-m", m, "-l", 0, f"{d}/e_file.h5", "-o", f"{d}/a_file.h5")
        assert_identical(self, f"{d}/a_file.h5", f"{d}/a_pipe.h5")

    def test_model_info(self):
        out = run("model", "info", self.model).stdout.decode()
        self.assertIn("n_layers:   2", out)
        self.assertIn("/blocks/1/attn/W_Q", out)
        import json
        j = json.loads(run("model", "info", "--json", self.model).stdout)
        self.assertEqual(j["config"]["d_head"], 16)
        self.assertTrue(j["model_id"].startswith("tiny-"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
