#!/bin/bash
# Installs what qkv needs on Debian 12 (as root): to build it and run it (the tools, the
# examples, h5dump and h5py to read its files, man); with --test also what the tests and
# benchmarks use (PyTorch for the float64 references, clang and its sanitizers, clang-format,
# Node for the reference tokenizers, Chromium and playwright-core for the browser test).
set -euo pipefail
test=0
case "${1:-}" in
--test) test=1 ;;
"") ;;
*)
    echo "usage: deps.sh [--test]" >&2
    exit 2
    ;;
esac
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential cmake pkg-config \
    libhdf5-dev libopenblas-dev libcli11-dev nlohmann-json3-dev libpcre2-dev libicu-dev libpng-dev libssl-dev \
    catch2 hdf5-tools python3 python3-h5py python3-numpy groff-base man-db bash-completion
[ $test -eq 1 ] || exit 0
apt-get install -y --no-install-recommends \
    python3-torch python3-regex bsdutils clang clang-format libclang-rt-14-dev \
    snakemake slurm-wlm munge chromium \
    $(command -v node >/dev/null || echo nodejs) $(command -v npm >/dev/null || echo npm)
# The reference tokenizer for the tests (js-tiktoken); without it they use a committed fixture.
cd "$(dirname "$0")/../tests/browser"
npm ci --no-audit --no-fund # playwright-core, which drives the system's Chromium
cd ../reference/node
npm ci --no-audit --no-fund || echo "deps.sh: npm ci failed; tokenizer tests will use the fixture" >&2
