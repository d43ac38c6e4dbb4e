"""tokenize --train (byte-level BPE learned from text) against an independent trainer written
here (tests/reference/bpe_train_ref.py): the same merges in the same order; deterministic; exact
round trips on the corpus; usable by model init and stored in the model."""
import os
import unittest

import h5py

import bpe_train_ref
from qkvtest import run, tmpdir

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "..", "shared", "data", "tinyshakespeare.txt")

SHORT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
         "It's 2026-11-27; they'll pay 3,400 ducats -- or 12.5% more!  Tabs\there,\r\n"
         "crème brûlée, naïve café; Ελληνικά, русский текст, 日本語のテキスト 🙂👍🏽\n"
         "<|endoftext|>A second document: the the the theme thermal there their.\n"
         "aaaaaaa bbbb aaaa abababab   spaces   and\n\n\nnewlines\n") * 3


def read_tok(path):
    with h5py.File(path, "r") as f:
        return ([v.decode() for v in f["tokenizer/vocab"][()]],
                [m.decode() for m in f["tokenizer/merges"][()]])


class TrainTokenizer(unittest.TestCase):
    def test_same_merges_as_reference(self):
        texts = [SHORT]
        if os.path.exists(CORPUS):
            with open(CORPUS, encoding="utf-8") as f:
                texts.append(f.read()[:6000])
        with tmpdir() as d:
            for i, text in enumerate(texts):
                src = os.path.join(d, f"t{i}.txt")
                with open(src, "w", encoding="utf-8") as f:
                    f.write(text)
                for n in (300, 420, 5000):
                    out = os.path.join(d, f"tok{i}-{n}.h5")
                    run("tokenize", "--train", n, "-f", src, "-o", out, "--quiet")
                    vocab, merges = read_tok(out)
                    ref_vocab, ref_merges = bpe_train_ref.train(text, n)
                    self.assertEqual(merges, ref_merges, f"text {i}, N={n}")
                    self.assertEqual(vocab, ref_vocab, f"text {i}, N={n}")
                    self.assertEqual(vocab[-1], "<|endoftext|>")
                    if n < 5000:
                        self.assertEqual(len(vocab), n)
                    else:  # the short text runs out of pairs first
                        self.assertLess(len(vocab), n)

    def test_deterministic_and_round_trip_on_corpus(self):
        if not os.path.exists(CORPUS):
            self.skipTest(f"{CORPUS} is absent (see ../shared/data/README)")
        with tmpdir() as d:
            a, b = os.path.join(d, "a.h5"), os.path.join(d, "b.h5")
            run("tokenize", "--train", 4096, "-f", CORPUS, "-o", a, "--quiet")
            with open(CORPUS, "rb") as f:
                run("tokenize", "--train", 4096, "-f", "-", "-o", b, "--quiet", stdin=f.read())
            self.assertEqual(read_tok(a), read_tok(b))
            vocab, merges = read_tok(a)
            self.assertEqual(len(vocab), 4096)
            self.assertEqual(len(set(vocab)), 4096)
            ids = run("tokenize", "--vocab", a, "--ids", "-f", CORPUS).stdout.split()
            self.assertLess(len(ids), os.path.getsize(CORPUS) / 3)  # merges compress the text
            # Decode through a tokens file (the argument list would be too long).
            tok_file = os.path.join(d, "tok.h5")
            model = os.path.join(d, "m.h5")
            run("model", "init", "--vocab", a, "--layers", 1, "--d-model", 32, "--heads", 2, "--ctx", 64,
                "-o", model, "--quiet")
            with h5py.File(model, "r") as f:
                self.assertEqual(int(f["config"].attrs["vocab_size"]), 4096)
                self.assertEqual(f["embed/W_E"].shape, (4096, 32))
                self.assertEqual(f["blocks/0/mlp/W_in"].shape, (32, 128))
            run("tokenize", "--model", model, "-f", CORPUS, "-o", tok_file)
            with h5py.File(tok_file, "r") as f:
                self.assertEqual([str(x) for x in f["tokens"][0]], [i.decode() for i in ids])
            back = run("tokenize", "--model", model, "--decode", tok_file).stdout
            with open(CORPUS, "rb") as f:
                self.assertEqual(back, f.read())

    def test_errors(self):
        with tmpdir() as d:
            src = os.path.join(d, "t.txt")
            with open(src, "wb") as f:
                f.write(b"valid text \xff\xfe then invalid")
            out = os.path.join(d, "tok.h5")
            p = run("tokenize", "--train", 100, "-f", src, "-o", out, check=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn(b"257", p.stderr)
            p = run("tokenize", "--train", 300, "-f", src, "-o", out, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"invalid UTF-8 at byte offset 11", p.stderr)
            p = run("tokenize", "--train", 300, "--vocab", d, "-f", src, "-o", out, check=False)
            self.assertEqual(p.returncode, 2)
            self.assertEqual(os.listdir(d), ["t.txt"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
