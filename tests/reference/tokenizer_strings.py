"""The strings the tokenizer is checked on: 2,000+ varied, made deterministically (seeded).
Run as a script to print them as JSON."""
import json
import random

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Attention is all you need: queries, keys and values.",
    "A fluffy blue creature roamed the verdant forest.",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say...",
    "She said, \"I'll be there at 5 o'clock\" -- and she was.",
    "To be, or not to be: that is the question;",
]
CODE = [
    "def f(x):\n    return x**2 + 1\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }",
    "const x = {a: 1, 'b': [2, 3], \"c\": null};",
    "SELECT * FROM users WHERE id = 7 AND name LIKE '%bob%';",
    "if x != None and y >= 3:\n\tpass\n",
    "<div class=\"row\">&nbsp;</div>",
    "$ ls -la | grep '^d' > dirs.txt 2>&1",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "    indented\n        more\n",
]
NUMBERS = ["2026-11-27", "12:34:56", "3.14159", "1,000,000", "-42", "1e-5", "0x1F", "+1 (555) 010-9999",
           "v1.2.3", "50%", "$19.99", "2^32 = 4294967296", "Ⅻ", "٣٤٥", "１２３", "½ ¾"]
WHITESPACE = ["  ", "   leading", "trailing   ", "a\tb", "a\t\tb", "line\r\nline", "\n\n\n", "a \n b",
              " \t \n", "word  \n  word", "\u00a0nbsp", "em\u2003space", "\u3000ideographic", "x \r\n\r\n y"]
CONTRACTIONS = ["it's", "IT'S", "It'S", "we'll", "WE'LL", "they're", "THEY'RE", "I've", "I'VE", "I'm",
                "I'M", "he'd", "HE'D", "don't", "DON'T", "'s", "'ll", "''", "'S'", "rock'n'roll"]
SCRIPTS = ["café naïve résumé", "Ærøskøbing", "Łódź", "São Paulo", "Привет, мир!", "Ёжик в тумане",
           "Καλημέρα κόσμε", "Ελληνικά", "你好，世界", "日本語のテキスト", "한국어 문장", "مرحبا بالعالم",
           "שלום עולם", "नमस्ते दुनिया", "ภาษาไทย", "Tiếng Việt"]
EMOJI = ["😀", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷🇯🇵", "🤷🏻‍♀️", "✊🏿 power", "🎉🎉🎉"]
COMBINING = ["e\u0301", "n\u0303o", "a\u0308\u0304", "Z\u0351\u0355\u0358alg\u0300o", "\u0915\u094d\u0937"]
CONTROL = ["\x01\x02\x03", "bell\x07", "esc\x1b[0m", "del\x7f", "\x0b\x0c", "\u200b zero width",
           "\ufeffbom", "\u202eright-to-left"]
SPECIAL = ["<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", "<|endoftext", "|>"]
POOLS = [PROSE, CODE, NUMBERS, WHITESPACE, CONTRACTIONS, SCRIPTS, EMOJI, COMBINING, CONTROL, SPECIAL]


def strings(n=2200, seed=1234):
    rng = random.Random(seed)
    out = [s for pool in POOLS for s in pool]
    joiners = ["", " ", "  ", "\n", "\t", ", ", "\r\n", " \n"]
    while len(out) < n - 20:
        k = rng.randint(1, 6)
        parts = [rng.choice(rng.choice(POOLS)) for _ in range(k)]
        s = rng.choice(joiners).join(parts)
        if rng.random() < 0.2:
            s = s.upper() if rng.random() < 0.5 else s.swapcase()
        if rng.random() < 0.1:
            s += " " * rng.randint(1, 5)
        out.append(s)
    # long strings: many pieces, long runs of one character, long words
    for i in range(20):
        parts = [rng.choice(rng.choice(POOLS)) for _ in range(300)]
        out.append(rng.choice(joiners).join(parts))
    out += [" " * 5000, "a" * 3000, "\n" * 1000, "ab" * 2000, "😀" * 500, "x " * 2000]
    return out


if __name__ == "__main__":
    print(json.dumps(strings(), ensure_ascii=False))
