#!/bin/bash
# Packs the built tools, the CUDA unit test and the shared libraries they need (not glibc, not
# CUDA's) into .devcarry/bundle.tar.xz, for a GPU machine that cannot install packages.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rm -rf .devcarry && mkdir -p .devcarry/pack/bin .devcarry/pack/lib
cp "$build"/tools/{model,tokenize,embed,attend,mlp,block,generate,inspect} "$build/tests/unit_cuda" "$build/libcore/libqkvcuda.so" .devcarry/pack/bin/
for f in .devcarry/pack/bin/*; do ldd "$f"; done | awk '/=> \//{print $3}' | sort -u \
    | grep -vE '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*)\.so|libcuda|libcublas|libcudart' \
    | xargs -I{} cp -L {} .devcarry/pack/lib/
tar -C .devcarry/pack -cJf .devcarry/bundle.tar.xz .
rm -rf .devcarry/pack
ls -la .devcarry
