"""Hostile HDF5 files: the inputs in tests/data/hostile-h5, on which HDF5 1.10 itself crashes,
loops or asks for absurd memory (found by fuzz/fuzz_h5image with the check off). Every tool that
reads HDF5 is given every one of them, in one of the ways it reads a file (input, stdin,
--model, --context, --patch-from, --from, --tokens, --vocab, --resume; the ways rotate over the
files, so each is used), and prints one line naming it and exits 1 within seconds, writing
nothing; and a file that passed the check is checked again once it changes. The check's time
limit is half a second here (QKV_HDF5_CHECK_SECONDS), so that the spinning inputs end quickly.
An image a stage writes to a pipe carries a seal (an HMAC under this user's key) and the next
stage reads it without the check; a missing, forged or foreign seal leaves the check on."""
import hashlib
import hmac
import os
import shutil
import subprocess
import unittest
from concurrent.futures import ThreadPoolExecutor

import h5py

from qkvtest import run, tmpdir, tool

HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "hostile-h5")


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.model = os.path.join(d, "tiny.h5")
        run("model", "init", "--preset", "tiny", "--seed", 1, "-o", cls.model, "--quiet")
        cls.tokens = os.path.join(d, "tokens.h5")
        run("tokenize", "-m", cls.model, "a fluffy blue creature", "-o", cls.tokens)
        cls.embedded = os.path.join(d, "embedded.h5")
        run("embed", "-m", cls.model, cls.tokens, "-o", cls.embedded)
        cls.corpus = os.path.join(d, "corpus.txt")
        with open(cls.corpus, "w") as f:
            f.write("To be, or not to be, that is the question. " * 40)
        cls.files = sorted(os.path.join(HOSTILE, n) for n in os.listdir(HOSTILE))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ways(self, bad, out):
        """{tool: [(arguments, reads stdin)]}: each way a tool reads an HDF5 file."""
        m, e = self.model, self.embedded
        return {
            "inspect": [([bad], False), (["-"], True)],
            "embed": [(["-m", m, bad, "-o", out], False), (["-m", bad, self.tokens, "-o", out], False)],
            "attend": [(["-m", m, "-l", 0, "-o", out], True),
                       (["-m", m, "-l", 0, e, "--context", bad, "-o", out], False),
                       (["-m", m, "-l", 0, e, "--patch-from", bad, "--patch-heads", 0, "-o", out], False)],
            "mlp": [(["-m", m, "-l", 0, bad, "-o", out], False)],
            "block": [(["-m", bad, e, "-o", out], False), (["-m", m, "-o", out], True)],
            "generate": [(["-m", bad, "hello", "-n", 1], False), (["-m", m, "--from", bad, "-o", out], False),
                         (["-m", m, "--tokens", bad, "-n", 1], False)],
            "tokenize": [(["-m", bad, "hello", "-o", out], False), (["--vocab", bad, "hello", "-o", out], False),
                         (["-m", m, "--decode", bad], False)],
            "count-params": [(["--model", bad], False)],
            "model": [(["info", bad], False), (["export", bad, "-o", out], False)],
            "train": [(["--model", bad, "-f", self.corpus, "--steps", 1, "-o", out], False),
                      (["--resume", bad, "-f", self.corpus, "-o", out], False)],
        }

    def check(self, i, bad, tool_name):
        """Runs tool_name on the i-th hostile file; returns what went wrong, or None."""
        out = os.path.join(self.d, f"out-{i}-{tool_name}.h5")
        ways = self.ways(bad, out)[tool_name]
        args, stdin = ways[i % len(ways)]
        with open(bad, "rb") as f:
            image = f.read()
        env = dict(os.environ, QKV_HDF5_CHECK_SECONDS="0.5")
        p = subprocess.run([tool(tool_name), *map(str, args)], input=image if stdin else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
        err = p.stderr.decode(errors="replace")
        what = f"{tool_name} {' '.join(map(str, args))} on {os.path.basename(bad)}"
        if p.returncode != 1 or len(err.splitlines()) != 1 or "Sanitizer" in err:
            return f"{what}: exit {p.returncode}, stderr {err!r}"
        if ("<stdin>" if stdin else os.path.basename(bad)) not in err:
            return f"{what}: the message does not name the file: {err!r}"
        if os.path.exists(out) or p.stdout:
            return f"{what}: wrote an output"
        return None

    def test_every_tool_on_every_file(self):
        self.assertGreater(len(self.files), 40)
        jobs = [(i, bad, t) for i, bad in enumerate(self.files) for t in self.ways("", "")]
        with ThreadPoolExecutor(max_workers=2) as pool:
            problems = [p for p in pool.map(lambda j: self.check(*j), jobs) if p]
        self.maxDiff = None
        self.assertEqual(problems, [])

    def test_a_changed_file_is_checked_again(self):
        path = os.path.join(self.d, "changes.h5")
        shutil.copy(self.embedded, path)
        run("inspect", path)  # checked, and remembered as readable
        run("inspect", path)
        with open(os.path.join(HOSTILE, "crash-h5hg-read-memcpy-overlap.h5"), "rb") as f:
            hostile = f.read()
        with open(path, "r+b") as f:  # the same file (inode), new contents
            f.truncate(0)
            f.write(hostile)
        p = run("inspect", path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"not a readable qkv file", p.stderr)

    def test_sealed_pipe_images(self):
        d = self.d
        # The tools beside a helper that fails every file: what it is asked about fails.
        bin_dir = os.path.join(d, "bin")
        os.makedirs(bin_dir, exist_ok=True)
        for name in ("embed", "attend"):
            shutil.copy(tool(name), bin_dir)
        with open(os.path.join(bin_dir, "qkv-h5check"), "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(os.path.join(bin_dir, "qkv-h5check"), 0o755)
        run("inspect", self.model)  # checked by the real helper, and remembered

        def failing_helper(cmd, stdin):
            return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], input=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=bin_dir, timeout=60)
        out = os.path.join(d, "sealed-out.h5")
        p = failing_helper(f"./embed -m {self.model} {self.tokens} | ./attend -m {self.model} -l 0 -o {out}", b"")
        self.assertEqual(p.returncode, 0, p.stderr)  # the sealed image was not checked
        with open(self.embedded, "rb") as f:
            plain = f.read()
        p = failing_helper(f"./attend -m {self.model} -l 0 -o {out}.2", plain)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"<stdin>: not a readable qkv file", p.stderr)

        # The seal is HMAC-SHA256 of the image under the user's key, then the magic.
        sealed = subprocess.run(f"{tool('embed')} -m {self.model} {self.tokens} | cat", shell=True,
                                stdout=subprocess.PIPE, check=True).stdout
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        with open(os.path.join(cache, "qkv", "pipe-key"), "rb") as f:
            key = f.read()
        self.assertEqual(oct(os.stat(os.path.join(cache, "qkv", "pipe-key")).st_mode & 0o777), "0o600")
        image, mac, magic = sealed[:-40], sealed[-40:-8], sealed[-8:]
        self.assertEqual(magic, b"qkvseal1")
        self.assertEqual(mac, hmac.new(key, image, hashlib.sha256).digest())
        self.assertEqual(image[:8], b"\x89HDF\r\n\x1a\n")
        with open(os.path.join(d, "sealed.h5"), "wb") as f:  # saved with its seal: h5py reads it
            f.write(sealed)
        with h5py.File(os.path.join(d, "sealed.h5")) as f:
            self.assertEqual(f["resid"].shape[0], 1)
        # Forged, damaged or another user's seals: the image is checked as any other.
        damaged = bytearray(sealed)
        damaged[200] ^= 1
        foreign = image + hmac.new(b"x" * 32, image, hashlib.sha256).digest() + magic
        for name, data in (("damaged", bytes(damaged)), ("foreign", foreign)):
            with self.subTest(seal=name):
                p = failing_helper(f"./attend -m {self.model} -l 0 -o {out}.3", data)
                self.assertEqual(p.returncode, 1)
                self.assertIn(b"not a readable qkv file", p.stderr)
        with open(os.path.join(HOSTILE, "crash-h5hg-read-memcpy-overlap.h5"), "rb") as f:
            hostile = f.read()
        p = run("inspect", "-", stdin=hostile + os.urandom(32) + magic, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"not a readable qkv file", p.stderr)
        # Written to a file, through stdout or -o, an image has no seal.
        to_file = os.path.join(d, "to-file.h5")
        subprocess.run(f"{tool('embed')} -m {self.model} {self.tokens} > {to_file}", shell=True, check=True)
        with open(to_file, "rb") as f:
            self.assertNotEqual(f.read()[-8:], magic)


if __name__ == "__main__":
    unittest.main()
