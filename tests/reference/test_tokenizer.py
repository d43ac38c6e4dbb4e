"""tokenize against an independent reference tokenizer (js-tiktoken, GPT-2 encoding) on 2,000+
varied strings, and the tool's behaviour as a user meets it."""
import gzip
import json
import os
import shutil
import subprocess
import unittest

import h5py
import numpy as np

import tokenizer_strings
from qkvtest import run, tmpdir, tool

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
VOCAB = os.path.join(HERE, "..", "..", "data", "gpt2")
NODE_DIR = os.path.join(HERE, "node")


def reference_ids(strings):
    """Live from js-tiktoken when Node.js and the package are installed, else the fixture that
    the same script produced with it (tests/data/tokenizer_ids_js_tiktoken.json.gz)."""
    if shutil.which("node") and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "js-tiktoken")):
        p = subprocess.run(["node", os.path.join(NODE_DIR, "encode.js")], input=json.dumps(strings).encode(),
                           stdout=subprocess.PIPE, check=True)
        return json.loads(p.stdout), "js-tiktoken (live)"
    with gzip.open(os.path.join(DATA, "tokenizer_ids_js_tiktoken.json.gz")) as f:
        return json.load(f), "js-tiktoken (fixture)"


def our_ids(strings):
    out = []
    for i in range(0, len(strings), 100):
        chunk = strings[i:i + 100]
        p = run("tokenize", "--vocab", VOCAB, "--ids", "--", *chunk)
        lines = p.stdout.decode().split("\n")[:-1]
        assert len(lines) == len(chunk)
        out += [[int(x) for x in line.split()] for line in lines]
    return out


class AgainstReference(unittest.TestCase):
    def test_fixture_strings_are_the_generators(self):
        with open(os.path.join(DATA, "tokenizer_strings.json")) as f:
            self.assertEqual(json.load(f), tokenizer_strings.strings())

    def test_ids_match_reference_exactly(self):
        strings = tokenizer_strings.strings()
        self.assertGreaterEqual(len(strings), 2000)
        ref, source = reference_ids(strings)
        ours = our_ids(strings)
        # JavaScript's \s includes U+FEFF, GPT-2's (Unicode White_Space) does not: those strings
        # are decided by the second reference below, and only those may differ from js-tiktoken.
        js_differs = [i for i in range(len(strings)) if "\ufeff" in strings[i]]
        mismatches = [i for i in range(len(strings)) if ours[i] != ref[i] and i not in js_differs]
        for i in mismatches[:5]:
            print(f"mismatch on {strings[i]!r}: ours {ours[i][:20]} reference {ref[i][:20]}")
        self.assertEqual(mismatches, [], f"{len(mismatches)} of {len(strings)} strings differ from {source}")
        print(f"  {len(strings) - len(js_differs)} strings, {sum(map(len, ours))} tokens, equal to {source}")
        try:
            import gpt2_encoder_ref
        except ImportError:
            self.skipTest("python3-regex is not installed: the U+FEFF strings are left unchecked")
        enc = gpt2_encoder_ref.Encoder(os.path.join(VOCAB, "vocab.json"), os.path.join(VOCAB, "merges.txt"))
        py = [enc.encode(s) for s in strings]
        bad = [i for i in range(len(strings)) if py[i] != ours[i]]
        for i in bad[:5]:
            print(f"mismatch on {strings[i]!r}: ours {ours[i][:20]} GPT-2's algorithm {py[i][:20]}")
        self.assertEqual(bad, [], "differs from GPT-2's published algorithm")
        print(f"  all {len(strings)} strings equal to GPT-2's published algorithm (Python regex); "
              f"{sum(py[i] != ref[i] for i in js_differs)} of them differ in js-tiktoken (U+FEFF)")


class Tool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        cls.d = cls.tmp.name
        cls.model = f"{cls.d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "-o", cls.model, "-q")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_file_output_and_round_trip(self):
        text = "Hello world, 日本語 and émoji 👩‍💻!\n\ttabs  and <|endoftext|> too"
        with open(f"{self.d}/in.txt", "w") as f:
            f.write(text)
        run("tokenize", "-m", self.model, "-f", f"{self.d}/in.txt", "-o", f"{self.d}/tok.h5")
        with h5py.File(f"{self.d}/tok.h5") as f:
            self.assertEqual(f.attrs["stage"], "tokens")
            self.assertEqual(f.attrs["layer"], -1)
            with h5py.File(self.model) as m:
                self.assertEqual(f.attrs["model_id"], m.attrs["model_id"])
            self.assertEqual(f["tokens"].dtype, np.int32)
            self.assertEqual(f["tokens"][0, :2].tolist(), [15496, 995])
            self.assertEqual(f["token_text"][0, 1].decode(), " world")
            self.assertIn(50256, f["tokens"][0].tolist())
        out = run("tokenize", "-m", self.model, "--decode", f"{self.d}/tok.h5").stdout
        self.assertEqual(out.decode(), text)
        # the tokens file feeds the pipeline
        run("embed", "-m", self.model, f"{self.d}/tok.h5", "-o", f"{self.d}/e.h5")

    def test_stdin_pipe_batch_and_modes(self):
        p = subprocess.run(f"printf 'one two\\nthree four\\n' | {tool('tokenize')} -m {self.model} --lines | "
                           f"{tool('tokenize')} -m {self.model} --decode", shell=True, stdout=subprocess.PIPE, check=True)
        self.assertEqual(p.stdout.decode(), "one two\nthree four\n")
        self.assertEqual(run("tokenize", "-m", self.model, "--count", "Hello world").stdout, b"2\n")
        self.assertEqual(run("tokenize", "-m", self.model, "--ids", "Hello world").stdout, b"15496 995\n")
        show = run("tokenize", "-m", self.model, "--show", "a b\n").stdout.decode()
        self.assertIn("1\t275\t·b", show)
        self.assertIn("↵", show)
        self.assertEqual(run("tokenize", "-m", self.model, "--decode", "15496", "995").stdout, b"Hello world")
        self.assertEqual(run("tokenize", "-m", self.model, "--no-special", "--count", "<|endoftext|>").stdout, b"7\n")

    def test_empty_input_gives_zero_tokens(self):
        p = subprocess.run([tool("tokenize"), "-m", self.model, "-o", f"{self.d}/empty.h5"], input=b"",
                           stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 0, p.stderr)
        with h5py.File(f"{self.d}/empty.h5") as f:
            self.assertEqual(f["tokens"].shape, (1, 0))

    def test_errors(self):
        p = subprocess.run([tool("tokenize"), "-m", self.model, "-o", f"{self.d}/bad.h5"],
                           input=b"caf\xc3\xa9 \xff!", stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"invalid UTF-8 at byte offset 6", p.stderr)
        self.assertFalse(os.path.exists(f"{self.d}/bad.h5"))
        p = subprocess.run([tool("tokenize"), "-m", self.model, "--bytes", "--ids"], input=b"caf\xc3\xa9 \xff!",
                           stdout=subprocess.PIPE)
        self.assertEqual(p.returncode, 0)
        p = subprocess.run([tool("tokenize"), "-m", self.model, "one", "two three", "-o", f"{self.d}/u.h5"],
                           stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"unequal lengths", p.stderr)
        p = subprocess.run([tool("tokenize"), "hi"], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--model", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
