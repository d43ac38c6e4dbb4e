"""An independent, deliberately plain byte-level BPE trainer: after GPT-2's pre-tokenizer
(Python's `regex`), recount every adjacent pair over all pieces at every step and merge the most
frequent pair (ties: smaller left id, then smaller right id; ids 0..255 are the bytes, merged
tokens follow in the order they are made; a merge whose bytes are already a token reuses it).
Slow (quadratic), meant for short texts."""
from collections import Counter

from gpt2_encoder_ref import PATTERN, bytes_to_unicode

EOT = "<|endoftext|>"


def train(text, vocab_size):
    pieces = Counter()
    for doc in text.split(EOT):
        for piece in PATTERN.findall(doc):
            pieces[piece.encode("utf-8")] += 1
    words = [[list(p), c] for p, c in pieces.items()]
    tokens = [bytes([b]) for b in range(256)]
    ids = {t: i for i, t in enumerate(tokens)}
    merges = []
    while len(tokens) < vocab_size - 1:
        pairs = Counter()
        for syms, c in words:
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
        a, b = best
        joined = tokens[a] + tokens[b]
        if joined not in ids:
            ids[joined] = len(tokens)
            tokens.append(joined)
        made = ids[joined]
        merges.append((tokens[a], tokens[b]))
        for w in words:
            syms, out, i = w[0], [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(made)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            w[0] = out
    b2u = bytes_to_unicode()
    vis = lambda t: "".join(b2u[x] for x in t)
    vocab = [vis(t) for t in tokens] + [EOT]
    return vocab, [vis(a) + " " + vis(b) for a, b in merges]
