#!/bin/bash
# The forward pipeline over real pipes: a small random model, then
# tokenize | embed | attend | mlp for layer 0, keeping the attention pattern; block runs the rest.
set -euo pipefail
model init --preset tiny --seed 1 -o tiny.h5
tokenize --model tiny.h5 --show "a fluffy blue creature"
tokenize --model tiny.h5 "a fluffy blue creature" | embed --model tiny.h5 \
    | attend --model tiny.h5 --layer 0 --save pattern | mlp --model tiny.h5 --layer 0 \
    | block --model tiny.h5 --layers 1: -o out.h5
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
f = h5py.File("out.h5", "r")
p = f["attn/pattern"][0]
tokens = [t.decode() for t in f["token_text"][0]]
assert tokens == ["a", " fluffy", " blue", " creature"], tokens
assert p.shape == (4, 4, 4), p.shape
assert np.allclose(p.sum(-1), 1, atol=1e-6) and np.all(np.triu(p, 1) == 0), "not a causal pattern"
assert f.attrs["stage"] == "mlp" and f.attrs["layer"] == 1
print("resid", f["resid"].shape, "stage", f.attrs["stage"], "layer", f.attrs["layer"])
print("layer 0, head 0 attention pattern (rows: queries, columns: keys):")
for tok, row in zip(tokens, p[0]):
    print(f"{tok!r:>12} " + " ".join(f"{x:5.2f}" for x in row))
print("history:")
print(f.attrs["history"])
PY
