#!/bin/bash
# Installs what qkv needs to build and test on Debian 12 (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential cmake pkg-config \
    libhdf5-dev libopenblas-dev libcli11-dev catch2 nlohmann-json3-dev libpcre2-dev \
    python3 python3-torch python3-h5py python3-numpy \
    groff-base bsdutils nodejs npm
