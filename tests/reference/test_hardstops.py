"""Hard stops and hostile input: killed runs, signals, a full disk, parallel writers, forged
sizes and hostile text. Each checks the file system afterwards, not only the exit code."""
import glob
import os
import signal
import subprocess
import time
import unittest

import h5py
import numpy as np

from qkvtest import run, tmpdir, tool, write_tokens


def temps(d):
    return [f for f in os.listdir(d) if ".tmp-" in f]


class HardStops(unittest.TestCase):
    def setUp(self):
        self.tmp = tmpdir()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def start_and_signal(self, sig, target):
        p = subprocess.Popen([tool("model"), "init", "--preset", "gpt2", "-o", target, "-q"],
                             stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while not temps(self.d) and time.time() < deadline:  # wait until it is writing
            time.sleep(0.05)
        self.assertTrue(temps(self.d), "the writer never started its temporary file")
        time.sleep(0.3)
        p.send_signal(sig)
        p.wait(timeout=30)
        return p.returncode

    def test_sigkill_keeps_the_old_file_and_the_next_run_cleans_up(self):
        target = f"{self.d}/model.h5"
        with open(target, "wb") as f:
            f.write(b"previous model")
        rc = self.start_and_signal(signal.SIGKILL, target)
        self.assertEqual(rc, -signal.SIGKILL)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"previous model")  # never half-written
        self.assertEqual(len(temps(self.d)), 1)  # what SIGKILL leaves behind...
        run("model", "init", "--preset", "tiny", "-o", target, "-q")
        self.assertEqual(temps(self.d), [])  # ...the next run removes
        with h5py.File(target) as f:
            self.assertEqual(f.attrs["format"], "qkv-model")

    def test_sigint_and_sigterm_remove_the_temporary_file(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            target = f"{self.d}/m_{sig}.h5"
            rc = self.start_and_signal(sig, target)
            self.assertEqual(rc, -sig)  # died of the signal: the shell reports 128 + signal
            self.assertEqual(temps(self.d), [])
            self.assertFalse(os.path.exists(target))

    def test_full_disk(self):
        target = f"{self.d}/big.h5"
        p = subprocess.run(["bash", "-c", f"trap '' XFSZ; ulimit -f 2000; {tool('model')} init --preset tiny -o {target}"],
                           stderr=subprocess.PIPE)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("big.h5", err)
        self.assertFalse(os.path.exists(target))
        self.assertEqual(temps(self.d), [])

    def test_parallel_writers_in_one_folder(self):
        procs = [subprocess.Popen([tool("model"), "init", "--preset", "tiny", "--seed", str(i), "-o", f"{self.d}/m{i}.h5", "-q"])
                 for i in range(4)]
        self.assertEqual([p.wait(timeout=120) for p in procs], [0] * 4)
        ids = set()
        for i in range(4):
            with h5py.File(f"{self.d}/m{i}.h5") as f:
                ids.add(f.attrs["model_id"])
        self.assertEqual(len(ids), 4)
        self.assertEqual(temps(self.d), [])


class HostileInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        cls.d = cls.tmp.name
        cls.model = f"{cls.d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "-o", cls.model, "-q")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_forged_sizes_are_refused_before_allocating(self):
        for name, make in (
            ("contiguous", lambda f: f.create_dataset("resid", shape=(1, 4, 10**9), dtype=np.float32)),
            ("chunked", lambda f: f.create_dataset("resid", shape=(1, 4, 10**10), dtype=np.float32,
                                                   chunks=(1, 1, 1 << 20), compression="gzip")),
        ):
            path = f"{self.d}/forged_{name}.h5"
            write_tokens(path, self.model, [[1, 2, 3, 4]])
            with h5py.File(path, "r+") as f:
                f.attrs["stage"] = "embed"
                make(f)
            # a cap on address space proves nothing was allocated for the claim (not under
            # AddressSanitizer, which reserves terabytes of shadow memory up front)
            cap = "" if "ASAN_OPTIONS" in os.environ else "ulimit -v 8000000; "
            p = subprocess.run(["bash", "-c", f"{cap}{tool('attend')} -m {self.model} -l 0 {path} -o {self.d}/o.h5"],
                               stderr=subprocess.PIPE)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 1, f"{name}: {err}")
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn("/resid", err)
            self.assertFalse(os.path.exists(f"{self.d}/o.h5"))

    def test_hostile_text(self):
        big = ("To be, or not to be: that is the question. ü 日本 👩‍💻\n" * 60000).encode()  # ~3.5 MB
        p = subprocess.run([tool("tokenize"), "-m", self.model, "--count"], input=big, stdout=subprocess.PIPE, check=True)
        self.assertGreater(int(p.stdout), 500000)
        nul = b"a\x00b\x00\x00c"
        ids = subprocess.run([tool("tokenize"), "-m", self.model, "--ids"], input=nul, stdout=subprocess.PIPE, check=True).stdout
        back = subprocess.run([tool("tokenize"), "-m", self.model, "--decode", *ids.split()], stdout=subprocess.PIPE, check=True).stdout
        self.assertEqual(back, nul)
        p = subprocess.run([tool("tokenize"), "-m", self.model, "--ids"], input=b"ok \xc3\x28 no", stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"byte offset 3", p.stderr)
        eots = b"<|endoftext|>" * 1000
        p = subprocess.run([tool("tokenize"), "-m", self.model, "--count"], input=eots, stdout=subprocess.PIPE, check=True)
        self.assertEqual(p.stdout, b"1000\n")
        p = subprocess.run([tool("tokenize"), "-m", self.model, "--count", "--no-special"], input=eots, stdout=subprocess.PIPE, check=True)
        self.assertGreater(int(p.stdout), 1000)
        # generate on a prompt of NUL bytes and end-of-text markers, and on invalid UTF-8
        p = subprocess.run([tool("generate"), "-m", self.model, "-n", "4", "--json", "-f", "-"],
                           input=b"\x00\x00<|endoftext|>x", stdout=subprocess.PIPE, check=True)
        self.assertIn(b"generated_ids", p.stdout)
        p = subprocess.run([tool("generate"), "-m", self.model, "-n", "4", "-f", "-"], input=b"\xff", stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"invalid UTF-8", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
