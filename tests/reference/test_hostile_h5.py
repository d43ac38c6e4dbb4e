"""Hostile HDF5 files: the inputs in tests/data/hostile-h5, on which HDF5 1.10 itself crashes,
loops or asks for absurd memory (found by fuzz/fuzz_h5image with the check off). Every tool that
reads HDF5, given one as each kind of file it reads (input, stdin, --model, --context,
--patch-from, --from, --tokens, --vocab, --resume), prints one line naming it and exits 1
within seconds, writing nothing; and a file that passed the check is checked again once it
changes."""
import os
import shutil
import unittest

from qkvtest import run, tmpdir

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

    def commands(self, bad, out):
        """(tool, arguments, reads stdin) for each way a tool reads an HDF5 file."""
        m, e = self.model, self.embedded
        return [
            ("inspect", [bad], False),
            ("inspect", ["-"], True),
            ("embed", ["-m", m, bad, "-o", out], False),
            ("embed", ["-m", bad, self.tokens, "-o", out], False),
            ("attend", ["-m", m, "-l", 0, "-o", out], True),
            ("attend", ["-m", m, "-l", 0, e, "--context", bad, "-o", out], False),
            ("attend", ["-m", m, "-l", 0, e, "--patch-from", bad, "--patch-heads", 0, "-o", out], False),
            ("mlp", ["-m", m, "-l", 0, bad, "-o", out], False),
            ("block", ["-m", bad, e, "-o", out], False),
            ("generate", ["-m", bad, "hello", "-n", 1], False),
            ("generate", ["-m", m, "--from", bad, "-o", out], False),
            ("generate", ["-m", m, "--tokens", bad, "-n", 1], False),
            ("tokenize", ["-m", bad, "hello", "-o", out], False),
            ("tokenize", ["--vocab", bad, "hello", "-o", out], False),
            ("tokenize", ["-m", m, "--decode", bad], False),
            ("count-params", ["--model", bad], False),
            ("model", ["info", bad], False),
            ("model", ["export", bad, "-o", out], False),
            ("train", ["--model", bad, "-f", self.corpus, "--steps", 1, "-o", out], False),
            ("train", ["--resume", bad, "-f", self.corpus, "-o", out], False),
        ]

    def test_every_tool_on_every_file(self):
        self.assertGreater(len(self.files), 0)
        for bad in self.files:
            with open(bad, "rb") as f:
                image = f.read()
            out = os.path.join(self.d, "out.h5")
            for tool_name, args, stdin in self.commands(bad, out):
                with self.subTest(file=os.path.basename(bad), tool=tool_name, args=args[:2]):
                    p = run(tool_name, *args, stdin=image if stdin else b"", check=False)
                    err = p.stderr.decode(errors="replace")
                    self.assertEqual(p.returncode, 1, err)
                    self.assertEqual(len(err.splitlines()), 1, err)
                    self.assertIn("<stdin>" if stdin else os.path.basename(bad), err)
                    self.assertNotIn("Sanitizer", err)
                    self.assertFalse(os.path.exists(out), "an output was written")
                    self.assertEqual(p.stdout, b"")

    def test_a_changed_file_is_checked_again(self):
        path = os.path.join(self.d, "changes.h5")
        shutil.copy(self.embedded, path)
        run("inspect", path)  # checked, and remembered as readable
        run("inspect", path)
        with open(self.files[0], "rb") as f:
            hostile = f.read()
        with open(path, "r+b") as f:  # the same file (inode), new contents
            f.truncate(0)
            f.write(hostile)
        p = run("inspect", path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"not a readable qkv file", p.stderr)


if __name__ == "__main__":
    unittest.main()
