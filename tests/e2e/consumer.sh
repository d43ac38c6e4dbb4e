#!/bin/bash
# libqkv used by another project: installed into a temporary prefix, tests/consumer configured
# against it with find_package(qkv) (CMake) and compiled again with pkg-config; both programs
# load the shipped model and run layer 0's attention, and print what `attend --layer 0` writes.
# Then qkv as an add_subdirectory of another project: only the library is configured.
set -u
BUILD=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
prefix=$work/prefix
cmake --install "$BUILD" --prefix "$prefix" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
export XDG_CACHE_HOME=$work/cache
cmake -S "$SRC/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" >"$work/log" 2>&1 &&
    cmake --build "$work/consumer" >>"$work/log" 2>&1 || { cat "$work/log"; echo "FAIL: find_package(qkv) build"; exit 1; }
libdir=$(dirname "$(find "$prefix" -name qkv.pc)")
# shellcheck disable=SC2046
PKG_CONFIG_PATH=$libdir g++ -std=c++17 -o "$work/first_layer_pc" "$SRC/tests/consumer/first_layer.cpp" \
    $(PKG_CONFIG_PATH=$libdir pkg-config --cflags --libs qkv) -Wl,-rpath,"$prefix/lib" 2>"$work/log" ||
    { cat "$work/log"; no "pkg-config build"; }
# the public headers compile without CLI11, HDF5's or BLAS's include paths
grep -rlE "CLI/|<hdf5|<cblas" "$prefix/include/qkv" && no "public headers include CLI11, HDF5 or BLAS"
[ -f "$prefix/include/qkv/files/h5_api.hpp" ] && no "the HDF5 API header is installed"
M=$SRC/examples/models/shakespeare.h5
TEXT="ROMEO: But soft, what light"
"$work/consumer/first_layer" "$M" "$TEXT" >"$work/lib.txt" || no "first_layer failed"
PATH=$prefix/bin:$PATH qkv tokenize -m "$M" "$TEXT" | PATH=$prefix/bin:$PATH qkv embed -m "$M" |
    PATH=$prefix/bin:$PATH qkv attend -m "$M" --layer 0 -o "$work/l0.h5" || no "attend"
/usr/bin/python3 - "$work/l0.h5" "$work/lib.txt" <<'PY' || no "first_layer differs from attend"
import sys
import h5py
import numpy as np
want = h5py.File(sys.argv[1])["resid"][0, -1].astype(np.float32)
got = np.loadtxt(sys.argv[2], dtype=np.float32)
sys.exit(0 if got.shape == want.shape and np.array_equal(got, want) else 1)
PY
[ -x "$work/first_layer_pc" ] && { "$work/first_layer_pc" "$M" "$TEXT" | cmp -s - "$work/lib.txt" || no "pkg-config build differs"; }
# As a subdirectory of another project, qkv configures its library alone (no tools, tests,
# benchmarks).
mkdir -p "$work/sub"
cat >"$work/sub/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.21)
project(sub LANGUAGES C CXX)
add_subdirectory("$SRC" qkv)
add_executable(first_layer "$SRC/tests/consumer/first_layer.cpp")
target_link_libraries(first_layer PRIVATE qkv::qkv)
CM
if cmake -S "$work/sub" -B "$work/sub/build" -DQKV_CUDA=OFF >"$work/log" 2>&1; then
    targets=$(cmake --build "$work/sub/build" --target help)
    grep -q "libqkv" <<<"$targets" || no "add_subdirectory: no libqkv target"
    grep -qE "\.\.\. (attend|unit_tests|gemm_bench)$" <<<"$targets" && no "add_subdirectory builds tools or tests"
else
    cat "$work/log"
    no "add_subdirectory: configure failed"
fi
[ $fail -eq 0 ] && echo "consumer: find_package(qkv) and pkg-config builds equal attend --layer 0"
exit $fail
