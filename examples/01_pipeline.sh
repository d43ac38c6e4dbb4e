#!/bin/bash
# The forward pipeline over real pipes: a small random model, a tokens file, then
# embed | attend | mlp for layer 0, keeping the attention pattern; block runs the rest.
set -euo pipefail
model init --preset tiny --seed 1 -o tiny.h5
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
m = h5py.File("tiny.h5", "r")
with h5py.File("tokens.h5", "w") as f:   # until `tokenize` exists: "Hello world, the"
    f.attrs.update(format="qkv-activations", version=np.int64(1), model_id=m.attrs["model_id"],
                   stage="tokens", layer=np.int64(-1), history="examples/01_pipeline.sh")
    f["tokens"] = np.array([[15496, 995, 11, 262]], dtype=np.int32)
PY
embed --model tiny.h5 tokens.h5 | attend --model tiny.h5 --layer 0 --save pattern \
    | mlp --model tiny.h5 --layer 0 | block --model tiny.h5 --layers 1: -o out.h5
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
f = h5py.File("out.h5", "r")
p = f["attn/pattern"][0]
assert p.shape == (4, 4, 4), p.shape
assert np.allclose(p.sum(-1), 1, atol=1e-6) and np.all(np.triu(p, 1) == 0), "not a causal pattern"
assert f.attrs["stage"] == "mlp" and f.attrs["layer"] == 1
print("resid", f["resid"].shape, "stage", f.attrs["stage"], "layer", f.attrs["layer"])
print("head 0 pattern (query x key):")
print(np.array2string(p[0], precision=3))
PY
