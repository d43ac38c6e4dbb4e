#!/bin/bash
# The README's cheat sheet runs as written, in order, with the shipped model (every command
# must succeed; set -e).
set -eu
BIN=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$SRC/examples/models/shakespeare.h5" "$work/"
sed -n '/<!-- cheat sheet/,/<!-- end of the cheat sheet/p' "$SRC/README.md" | grep '^    ' | sed 's/^    //' >"$work/sheet.sh"
[ "$(wc -l <"$work/sheet.sh")" -ge 15 ] || { echo "FAIL: no cheat sheet in the README"; exit 1; }
cd "$work"
PATH="$BIN:$PATH" bash -eo pipefail sheet.sh >out.txt 2>err.txt || { cat err.txt; echo "FAIL: the cheat sheet"; exit 1; }
grep -qx same out.txt || { echo "FAIL: the cheat sheet's last line"; exit 1; }
echo "cheat sheet: $(wc -l <sheet.sh) lines ran"
