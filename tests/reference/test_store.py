"""block -f CORPUS --window N --append STORE.h5: the activation store. Each window's rows equal
block --save of that window alone, bit for bit, for every family; a run killed with SIGKILL and
continued with --append gives the store of one uninterrupted run; a store of another model,
other sites or another corpus, and bad options, are one line with the store untouched."""
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import unittest

os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"  # read a store while block writes it
import h5py  # noqa: E402
import numpy as np  # noqa: E402

from qkvtest import run, shell, tmpdir, tool, write_tokens  # noqa: E402

FAMILIES = ["tiny", "llama-tiny", "pythia-tiny"]
SITE_PATHS = {"resid_pre": "resid_pre", "z": "attn/z", "post": "mlp/post", "mlp_out": "mlp/out"}


def corpus(path, words, seed=0):
    rng = random.Random(seed)
    vocab = "the a fluffy blue creature roamed verdant forest and sang of stars rivers mountains".split()
    with open(path, "w") as f:
        f.write(" ".join(rng.choice(vocab) + ("." if rng.random() < 0.1 else "") for _ in range(words)))


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def datasets(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        out["windows"] = int(f["store"].attrs["windows"])
    return out


class Store(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        cls.d = cls.tmp.name
        corpus(f"{cls.d}/small.txt", 400)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_rows_equal_block_on_each_window(self):
        d = self.d
        for fam in FAMILIES:
            with self.subTest(fam=fam):
                m = f"{d}/{fam}.h5"
                run("model", "init", "--preset", fam, "--seed", 2, "-o", m, "-q")
                store = f"{d}/{fam}-store.h5"
                run("block", "-m", m, "-f", f"{d}/small.txt", "--window", 24, "--stride", 20,
                    "--layers", "1:2", "--save", "resid_pre,z,post,mlp_out", "--append", store)
                run("tokenize", "-m", m, "-f", f"{d}/small.txt", "-o", f"{d}/{fam}-tok.h5")
                with h5py.File(f"{d}/{fam}-tok.h5") as f:
                    ids = f["tokens"][0]
                n_windows = (len(ids) - 24) // 20 + 1
                with h5py.File(store) as f:
                    s = f["store"]
                    self.assertEqual(f.attrs["format"], "qkv-store")
                    self.assertEqual(int(s.attrs["windows"]), n_windows)
                    self.assertEqual(s.attrs["sites"], "1.resid_pre,1.z,1.post,1.mlp_out")
                    self.assertEqual([dim.label for dim in s["1/z"].dims], ["window", "pos", "head", "d_head"])
                    self.assertEqual([dim.label for dim in s["tokens"].dims], ["window", "pos"])
                    self.assertEqual(s["1/resid_pre"].chunks[0], 1)
                    self.assertEqual(s["1/resid_pre"].compression, "gzip")
                    for w in (0, n_windows // 2, n_windows - 1):
                        window = ids[w * 20:w * 20 + 24]
                        np.testing.assert_array_equal(s["tokens"][w], window)
                        tok = write_tokens(f"{d}/{fam}-w.h5", m, [window.tolist()])
                        shell(f"embed -m {m} {tok} | block -m {m} --layers 0:2 --save resid_pre,z,post,mlp_out -o {d}/{fam}-wb.h5")
                        with h5py.File(f"{d}/{fam}-wb.h5") as b:
                            for site, path in SITE_PATHS.items():
                                np.testing.assert_array_equal(s[f"1/{site}"][w], b[f"blocks/1/{path}"][0], f"{fam} {w} {site}")
                # only the last position of each window
                last = f"{d}/{fam}-last.h5"
                run("block", "-m", m, "-f", f"{d}/small.txt", "--window", 24, "--stride", 20, "--layers", 1,
                    "--save", "resid_pre", "--positions", -1, "--append", last)
                with h5py.File(last) as f, h5py.File(store) as g:
                    self.assertEqual(f["store/positions"][()].tolist(), [23])
                    np.testing.assert_array_equal(f["store/1/resid_pre"][:, 0], g["store/1/resid_pre"][:, 23])

    def test_a_killed_run_continues_where_it_stopped(self):
        d = self.d
        m = f"{d}/kill-tiny.h5"
        run("model", "init", "--preset", "tiny", "--seed", 3, "-o", m, "-q")
        corpus(f"{d}/big.txt", 60000, seed=1)
        args = ["-m", m, "-f", f"{d}/big.txt", "--window", 32, "--save", "resid_pre,post", "--append"]
        whole = f"{d}/whole.h5"
        run("block", *args, whole)
        want = datasets(whole)
        killed = f"{d}/killed.h5"
        def stored():  # the windows counted so far, read as block writes (0 while unreadable)
            try:
                with h5py.File(killed) as f:
                    return int(f["store"].attrs["windows"])
            except Exception:
                return 0
        p = subprocess.Popen([tool("block")] + [str(a) for a in args] + [killed],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while p.poll() is None and time.time() < deadline and stored() < 200:
            time.sleep(0.002)
        time.sleep(random.Random(os.getpid()).uniform(0, 0.05))  # somewhere in a later batch
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.assertEqual(p.returncode, -signal.SIGKILL, "the run ended before it could be killed")
        with h5py.File(killed) as f:
            done = int(f["store"].attrs["windows"])
        self.assertLess(done, want["windows"])
        print(f"killed after {done} of {want['windows']} windows", file=sys.stderr)
        out = run("block", *args, killed).stderr.decode()
        self.assertIn(f"windows {done}..{want['windows']}", out)
        got = datasets(killed)
        self.assertEqual(sorted(got), sorted(want))
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], name)  # row for row, bit for bit
        # a finished store: nothing more to add
        self.assertIn("(0 this run", run("block", *args, killed).stderr.decode())
        self.assertEqual(datasets(killed)["windows"], want["windows"])

    def test_bad_input_leaves_the_store_as_it_was(self):
        d = self.d
        m, other = f"{d}/bad-tiny.h5", f"{d}/bad-other.h5"
        run("model", "init", "--preset", "tiny", "--seed", 4, "-o", m, "-q")
        run("model", "init", "--preset", "tiny", "--seed", 5, "-o", other, "-q")
        corpus(f"{d}/other.txt", 400, seed=9)
        store = f"{d}/bad-store.h5"
        base = ["-f", f"{d}/small.txt", "--window", 16, "--save", "resid_pre", "--append", store]
        run("block", "-m", m, *base)
        before = digest(store)
        shell(f"printf 'a b' > {d}/short.txt")
        for args, code in ((["-m", other] + base, 1),                                   # another model
                           (["-m", m] + base[:-3] + ["post", "--append", store], 1),    # other sites
                           (["-m", m, "-f", f"{d}/other.txt"] + base[2:], 1),          # another corpus
                           (["-m", m] + base[:2] + ["--window", 17] + base[4:], 1),    # another window
                           (["-m", m] + base[:2] + ["--window", 999] + base[4:], 2),   # over the context
                           (["-m", m, "-f", f"{d}/short.txt"] + base[2:], 2),          # shorter than a window
                           (["-m", m] + base[:4] + ["--save", "pattern", "--append", store], 2),
                           (["-m", m, "--window", 16, "--save", "resid_pre", "--append", store], 2),  # no corpus
                           (["-m", m] + base + ["-o", f"{d}/x.h5"], 2),
                           (["-m", m] + base + ["--ablate-heads", "0.1"], 2)):
            p = run("block", *args, check=False)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertEqual(digest(store), before, args)
        self.assertFalse(os.path.exists(f"{d}/x.h5"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
