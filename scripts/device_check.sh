#!/bin/bash
# Runs on the GPU machine (see scripts/device_bundle.sh): the CUDA backend against the CPU op
# by op, every stage tool and generation with --device cuda against --device cpu, and decode
# speed of the gpt2 preset on both. Results go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/qkv && tar -C /tmp/qkv -xJf .devcarry/bundle.tar.xz
cublas=$(find / -name 'libcublas.so.13' -not -path '*/proc/*' 2>/dev/null | head -1)
cudart=$(find / -name 'libcudart.so.13' -not -path '*/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=/tmp/qkv/lib:$(dirname "$cublas"):$(dirname "$cudart"):${LD_LIBRARY_PATH:-}
export PATH=/tmp/qkv/bin:$PATH
exec > >(tee "$OUT/device_check.txt") 2>&1
nvidia-smi -L
echo "== unit_cuda"; unit_cuda
cd /tmp/qkv && model init --preset tiny --seed 3 -o tiny.h5 -q
tokenize -m tiny.h5 "The quick brown fox jumps over the lazy dog, again and again." -o tok.h5
for dev in cpu cuda; do
    embed -m tiny.h5 tok.h5 --device $dev --save parts \
      | attend -m tiny.h5 -l 0 --device $dev --save scores,pattern,q,k,v,z,head_out,out \
      | mlp -m tiny.h5 -l 0 --device $dev --save pre,post | block -m tiny.h5 -L 1: --device $dev \
      | generate -m tiny.h5 --from - --all-positions --device $dev -o $dev.h5 || echo "FAIL: pipeline on $dev"
    attend -m tiny.h5 -l 0 --device $dev --context <(embed -m tiny.h5 tok.h5) --save pattern \
      <(embed -m tiny.h5 tok.h5) -o cross_$dev.h5 || echo "FAIL: cross-attention on $dev"
    generate -m tiny.h5 "Once upon a time" -n 40 --temperature 0 --ignore-eos --json --device $dev > gen_$dev.json
    generate -m tiny.h5 "Once upon a time" -n 40 --seed 7 --ignore-eos --json --device $dev > sample_$dev.json
done
python3 - <<'PY'
import json, h5py, numpy as np
worst = 0
for a, b in (("cpu.h5", "cuda.h5"), ("cross_cpu.h5", "cross_cuda.h5")):
    fa, fb = h5py.File(a), h5py.File(b)
    def visit(name, obj):
        global worst
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
            x, y = obj[()].astype(np.float64), fb[name][()].astype(np.float64)
            fin = np.isfinite(x)
            assert (fin == np.isfinite(y)).all(), name
            rel = np.abs(x[fin] - y[fin]).max() / max(np.abs(x[fin]).max(), 1e-30)
            worst = max(worst, rel)
            print(f"{a:>14} {name:<16} max rel diff {rel:.2e} {'ok' if rel <= 1e-4 else 'FAIL'}")
    fa.visititems(visit)
print(f"worst relative difference cuda vs cpu: {worst:.2e}")
for kind in ("gen", "sample"):
    c, g = json.load(open(f"{kind}_cpu.json")), json.load(open(f"{kind}_cuda.json"))
    same = c["generated_ids"] == g["generated_ids"]
    lp = np.abs(np.array(c["logprobs"]) - np.array(g["logprobs"])).max()
    print(f"{kind}: ids equal cpu/cuda: {same}; max logprob diff {lp:.2e}")
PY
echo "== gpt2 preset decode speed"
model init --preset gpt2 --seed 1 -o gpt2.h5 -q
P="$(python3 -c 'print(" ".join(["word"] * 16))')"
for dev in cpu cuda; do
    for r in 1 2; do
        echo "-- $dev run $r"; generate -m gpt2.h5 "$P" -n 128 --ignore-eos --seed 1 --device $dev --stats > /dev/null
    done
done
