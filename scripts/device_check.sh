#!/bin/bash
# Runs on the GPU machine (see scripts/device_bundle.sh): the CUDA unit test, the cuda-labelled
# tool tests (tiny, gpt2 preset, imported HF folder), compute-sanitizer on a pipeline and a
# short generation, and the gpt2-preset benchmark on both devices beside PyTorch on the GPU.
set -uo pipefail
OUT=${OUT:-/tmp/out}
repo=$(pwd)
mkdir -p "$OUT" /tmp/qkv && tar -C /tmp/qkv -xJf .devcarry/bundle.tar.xz
cublas=$(find / -name 'libcublas.so.13' -not -path '/proc/*' 2>/dev/null | head -1)
cudart=$(find / -name 'libcudart.so.13' -not -path '/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=/tmp/qkv/lib:$(dirname "$cublas"):$(dirname "$cudart"):${LD_LIBRARY_PATH:-}
export PATH=/tmp/qkv/bin:$PATH QKV_BIN=/tmp/qkv/bin
exec > >(tee "$OUT/device_check.txt") 2>&1
nvidia-smi -L
echo "== unit_cuda"; unit_cuda
echo "== test_cuda.py"; python3 "$repo/tests/reference/test_cuda.py" 2>&1 | tail -12
echo "== compute-sanitizer"
cd /tmp/qkv && model init --preset tiny --seed 3 -o tiny.h5 -q
tokenize -m tiny.h5 "a fluffy blue creature roamed the verdant forest" -o tok.h5
embed -m tiny.h5 tok.h5 -o e.h5 --device cuda
for cmd in "embed -m tiny.h5 tok.h5 --device cuda -o s1.h5" \
           "attend -m tiny.h5 -l 0 e.h5 --device cuda --save pattern,head_out -o s2.h5" \
           "block -m tiny.h5 e.h5 --device cuda -o s3.h5" \
           "generate -m tiny.h5 hello -n 8 --device cuda"; do
    compute-sanitizer --tool memcheck --error-exitcode 9 $cmd > cs.log 2>&1
    echo "memcheck rc=$? : $cmd :: $(grep -E 'ERROR SUMMARY' cs.log)"
done
echo "== benchmark: gpt2 preset (124M), 16-token prompt + 128 new tokens; prefill 256 and 1000"
model init --preset gpt2 --seed 1 -o gpt2.h5 -q
P16="$(python3 -c 'print(" ".join(["word"] * 16))')"
P256="$(python3 -c 'print(" ".join(["word"] * 256))')"
P1000="$(python3 -c 'print(" ".join(["word"] * 1000))')"
for dev in cuda cpu; do
    for r in 1 2 3; do
        echo "-- qkv $dev decode run $r"; generate -m gpt2.h5 "$P16" -n 128 --ignore-eos --device $dev --stats --threads 16 > /dev/null
    done
    for P in "$P256" "$P1000"; do
        echo "-- qkv $dev prefill"; generate -m gpt2.h5 "$P" -n 1 --ignore-eos --device $dev --stats --threads 16 > /dev/null
    done
done
echo "-- pytorch cuda"; python3 "$repo/bench/torch_forward.py" gpt2.h5 --device cuda --prefill 256,1000 --decode 128 --runs 3
echo "-- pytorch cpu 16 threads"; python3 "$repo/bench/torch_forward.py" gpt2.h5 --device cpu --threads 16 --prefill 256 --decode 64 --runs 1
