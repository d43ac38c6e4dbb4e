#!/bin/bash
# Installs what qkv needs to build and test on Debian 12 (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential cmake pkg-config \
    libhdf5-dev libopenblas-dev libcli11-dev catch2 nlohmann-json3-dev libpcre2-dev libicu-dev libpng-dev libssl-dev \
    python3 python3-torch python3-h5py python3-numpy python3-regex \
    groff-base man-db bsdutils clang clang-format libclang-rt-14-dev $(command -v node >/dev/null || echo nodejs) $(command -v npm >/dev/null || echo npm)
# The reference tokenizer for the tests (js-tiktoken); without it they use a committed fixture.
cd "$(dirname "$0")/../tests/reference/node"
npm ci --no-audit --no-fund || echo "deps.sh: npm ci failed; tokenizer tests will use the fixture" >&2
