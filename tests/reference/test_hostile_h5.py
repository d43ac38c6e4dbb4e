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
import numpy as np

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
        # (the model passed the real check: the first such file a process reads is read in place)
        p = failing_helper(f"{tool('tokenize')} -m {self.model} 'a fluffy blue creature' | ./embed -m {self.model}"
                           f" | ./attend -m {self.model} -l 0 -o {out}", b"")
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


class CleanCopy(unittest.TestCase):
    """What the check hands back to a tool: the file's clean copy (qkv-h5check --copy), written by
    the library's own writer, which the tool reads instead of the file."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.src = os.path.join(d, "other-writer.h5")
        rng = np.random.default_rng(3)
        cls.big = rng.standard_normal((300, 128)).astype(np.float32)  # 150 KiB: referred to
        with open(os.path.join(d, "outside.bin"), "wb") as f:
            f.write(np.arange(16, dtype=np.float32).tobytes())
        with h5py.File(cls.src, "w") as f:
            f.attrs["format"] = "qkv-activations"
            f.attrs["layer"] = np.int64(3)
            f.attrs["scale"] = 0.5
            f.attrs["fixed"] = np.bytes_(b"fixed-length")
            f.attrs["positions"] = np.arange(6, dtype=np.int64).reshape(2, 3)
            f.attrs["pair"] = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])  # left out
            f["resid"] = cls.big
            f["small"] = np.array([np.nan, 1.0, -np.inf], dtype=np.float32)
            f.create_dataset("gz", data=np.arange(5000, dtype=np.int32), chunks=(512,), compression="gzip")
            f["deep/er/text"] = np.array(["a", "fluffy", "\u00e9t\u00e9"], dtype=h5py.string_dtype())
            f["deep"].attrs["note"] = "x" * 3
            f["resid"].dims[0].label = "pos"
            f["soft"] = h5py.SoftLink("/resid")  # left out: links other than hard ones
        cls.outside = os.path.join(d, "outside.h5")
        with h5py.File(cls.outside, "w") as f:
            f["inside"] = np.ones(4, dtype=np.float32)
            f.create_dataset("outside", shape=(16,), dtype=np.float32,
                             external=[(os.path.join(d, "outside.bin"), 0, 64)])  # left out

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def copy(self, path, stdin=None):
        p = subprocess.run([tool("qkv-h5check"), "--copy", path], input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        out = os.path.join(self.d, "copy.h5")
        with open(out, "wb") as f:
            f.write(p.stdout)
        return p.returncode, out

    def test_the_copy_holds_what_qkv_reads(self):
        for how in ("file", "image"):
            with self.subTest(how=how):
                if how == "file":
                    rc, out = self.copy(self.src)
                else:
                    with open(self.src, "rb") as f:
                        rc, out = self.copy("-", f.read())
                self.assertEqual(rc, 0)
                with h5py.File(self.src) as a, h5py.File(out) as b:
                    self.assertEqual(sorted(b.attrs), ["fixed", "format", "layer", "positions", "scale"])
                    for k in b.attrs:
                        np.testing.assert_array_equal(a.attrs[k], b.attrs[k])
                    np.testing.assert_array_equal(b["resid"][()], self.big)
                    np.testing.assert_array_equal(b["small"][()], a["small"][()])
                    np.testing.assert_array_equal(b["gz"][()], np.arange(5000))
                    self.assertEqual(b["gz"].compression, "gzip")
                    self.assertEqual([s.decode() for s in b["deep/er/text"][()]], ["a", "fluffy", "\u00e9t\u00e9"])
                    self.assertEqual(b["deep"].attrs["note"], "xxx")
                    self.assertEqual(b["resid"].dims[0].label, "pos")
                    self.assertNotIn("soft", b)
                    # A large contiguous dataset of a file on disk is referred to by offset, not
                    # copied; an image's is copied.
                    ext = b["resid"].external
                    if how == "file":
                        self.assertEqual(ext, [(os.path.realpath(self.src), a["resid"].id.get_offset(),
                                                self.big.nbytes)])
                    else:
                        self.assertIsNone(ext)
                    self.assertIsNone(b["small"].external)

    def test_a_tool_reads_the_copy(self):
        # The second file a process reads is read from its copy, and compares equal (NaN too).
        copied = os.path.join(self.d, "again.h5")
        shutil.copy(self.src, copied)
        p = run("inspect", "--diff", self.src, copied, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(b"the files agree", p.stdout)
        # Data stored in another file: left out of the copy (a file not seen before is copied);
        # refused when the file is read in place (the first file a process reads that passed a
        # check before).
        p = run("inspect", "--json", self.outside)
        self.assertIn(b'"/inside"', p.stdout)
        self.assertNotIn(b'"/outside"', p.stdout)
        p = run("inspect", "--json", self.outside, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"outside.h5:/outside: its data is stored in other files", p.stderr)

    def test_a_damaged_object_is_named(self):
        # An object the library lists but cannot read: the file is refused, naming the object.
        with open(self.src, "rb") as f:
            image = bytearray(f.read())
        with h5py.File(self.src) as f:
            header = h5py.h5o.get_info(f["gz"].id).addr
        image[header:header + 16] = b"\xff" * 16  # the dataset's object header
        bad = os.path.join(self.d, "damaged.h5")
        with open(bad, "wb") as f:
            f.write(image)
        rc, out = self.copy(bad)
        self.assertEqual(rc, 6)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"/gz")
        p = run("inspect", bad, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.decode().strip(),
                         f"inspect: {bad}:/gz: damaged (the HDF5 library cannot read it)")


if __name__ == "__main__":
    unittest.main()
