#!/bin/bash
# Runs every example with the tools in $1 on PATH; each example checks its own result.
set -euo pipefail
export PATH="$1:$PATH"
here=$(cd "$(dirname "$0")" && pwd)
for ex in "$here"/[0-9]*.sh; do
    echo "== $(basename "$ex")"
    work=$(mktemp -d)
    (cd "$work" && bash "$ex")
    rm -rf "$work"
done
echo "all examples ok"
