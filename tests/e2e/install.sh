#!/bin/bash
# install.sh BUILD [deb]: cmake --install into a temporary prefix, or (deb) the Debian package
# cpack makes, its metadata checked and unpacked into a temporary root (dpkg-deb -x); then as a
# user of the installed tree, from another folder: only qkv and qkv-TOOL on PATH's bin, the tools' short names in $(qkv path), the
# README's first pipeline with the installed model, the built-in tokenizer by name, the helper
# that checks untrusted files found, man pages (qkv-TOOL too, NAME lines apropos finds), bash
# completion and the licences.
set -u
BUILD=$1
hostile=$(cd "$(dirname "$0")/../data/hostile-h5" && pwd)
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
if [ "${2:-}" = deb ]; then
    (cd "$BUILD" && cpack -G DEB -B "$work/pkg" >/dev/null) || { echo "FAIL: cpack -G DEB"; exit 1; }
    deb=$(echo "$work"/pkg/qkv_*.deb)
    [ -f "$deb" ] || { echo "FAIL: no .deb"; exit 1; }
    [ "$(dpkg-deb -f "$deb" Package)" = qkv ] || no "Package: $(dpkg-deb -f "$deb" Package)"
    version=$(sed -n 's/^project(qkv VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../../CMakeLists.txt")
    [ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || no "Version: $(dpkg-deb -f "$deb" Version)"
    depends=$(dpkg-deb -f "$deb" Depends)
    for lib in libhdf5-103 libhdf5-hl libopenblas0 libpng16 libpcre2-8 libicu libssl3 libc6; do
        [[ $depends == *"$lib"* ]] || no "Depends lacks $lib: $depends"
    done
    dpkg-deb -x "$deb" "$prefix" || { echo "FAIL: dpkg-deb -x"; exit 1; }
    prefix=$prefix/usr
else
    cmake --install "$BUILD" --prefix "$prefix" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
fi
cd "$work" || exit 1
export PATH="$prefix/bin:/usr/bin:/bin" XDG_CACHE_HOME="$work/cache"
# bin: qkv and links only
for f in "$prefix"/bin/*; do
    n=$(basename "$f")
    [[ $n == qkv || ( $n == qkv-* && -L $f ) ]] || no "bin/$n is not qkv or a qkv-TOOL link"
done
tools="tokenize embed attend mlp block generate score attribute steer inspect model count-params train"
for t in $tools; do
    [ -x "$prefix/bin/qkv-$t" ] || no "no bin/qkv-$t"
    [ -f "$prefix/share/man/man1/$t.1" ] || no "no man page $t.1"
    [ -f "$prefix/share/man/man1/qkv-$t.1" ] || no "no man page qkv-$t.1"
    [ -f "$prefix/share/bash-completion/completions/qkv-$t" ] || no "no completion for qkv-$t"
    if command -v lexgrog >/dev/null; then
        lexgrog "$prefix/share/man/man1/$t.1" | grep -q "qkv-$t - " || no "$t.1: NAME does not name qkv-$t"
    fi
    command -v "$t" >/dev/null && [[ $(command -v "$t") == "$prefix"/* ]] && no "$t is on PATH"
done
[ "$(qkv path)" = "$(realpath "$prefix/libexec/qkv/bin")" ] || no "qkv path: $(qkv path)"
M=$prefix/share/qkv/models/shakespeare.h5
[ -f "$M" ] || no "no shipped model"
[ -f "$prefix/share/doc/qkv/LICENSE.gpt2-vocabulary" ] && [ -f "$prefix/share/doc/qkv/LICENSE.font" ] ||
    no "licences missing"
# The three ways to run a tool give the same bytes.
a=$(qkv tokenize --vocab gpt2 --ids "Hello world") b=$(qkv-tokenize --vocab gpt2 --ids "Hello world")
c=$(PATH="$(qkv path):$PATH" tokenize --vocab gpt2 --ids "Hello world")
[ "$a" = "15496 995" ] && [ "$b" = "$a" ] && [ "$c" = "$a" ] || no "tokenize --vocab gpt2: '$a' '$b' '$c'"
# The README's first pipeline, with the short names on PATH.
(
    export PATH="$(qkv path):$PATH"
    generate --model "$M" "ROMEO:" -n 8 --seed 3 >gen.txt &&
        tokenize --model "$M" "ROMEO: But soft, what light through yonder window breaks?" |
        embed --model "$M" | attend --model "$M" --layer 0 --save pattern |
            inspect - --pattern --head 3 --png head.png
) >/dev/null 2>err.txt || no "the README pipeline: $(cat err.txt)"
[ -s gen.txt ] && [ -s head.png ] || no "the README pipeline wrote nothing"
# The installed helper checks untrusted files (a file the HDF5 library crashes on).
out=$(qkv inspect "$hostile/crash-h5hg-read-memcpy-overlap.h5" 2>&1)
[ $? -eq 1 ] && [[ $out == *"not a readable qkv file"* ]] || no "hostile file: $out"
qkv --version | grep -q "^qkv " || no "qkv --version"
MANPATH="$prefix/share/man" man -w qkv-attend >/dev/null 2>&1 || no "man qkv-attend"
[ $fail -eq 0 ] && echo "install${2:+ ($2)}: the installed tree works from $work"
exit $fail
