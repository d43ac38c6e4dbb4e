#!/bin/bash
# The cost of an activation store: one layer's stream (layer 6's resid_pre) of the gpt2 preset
# (random weights of the real shapes) over the Shakespeare text (the first BYTES of it), in
# windows of 1,024 tokens, with block --append. block times the writing (compressing, writing,
# flushing each batch) apart from the forward passes in the same run; overhead = writing /
# (total - writing). Writes bench/results/store.json. Usage: bench/store.sh [BUILD_DIR] [BYTES]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bytes=${2:-200000}
bin=$build/tools
corpus=$here/../../shared/data/tinyshakespeare.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/results"
m=$work/gpt2.h5
"$bin/model" init --preset gpt2 --seed 1 -o "$m" -q
head -c "$bytes" "$corpus" >"$work/text.txt"
"$bin/block" -m "$m" -f "$work/text.txt" --window 1024 --layers 6 --save resid_pre \
    --append "$work/store.h5" 2>"$work/log"
cat "$work/log" >&2
/usr/bin/python3 - "$work/log" "$work/store.h5" "$bytes" "$here/results/store.json" <<'PY'
import json, os, re, sys
log, store, nbytes, out = sys.argv[1:]
line = open(log).read()
m = re.search(r"windows 0\.\.(\d+) of (\d+) tokens.*?; ([\d.]+) s, (\d+) tokens/s; writing ([\d.]+) s, ([\d.]+)% over", line)
windows, window, total, tps, writing, overhead = m.groups()
res = {"model": "gpt2 preset", "site": "6.resid_pre", "corpus_bytes": int(nbytes), "windows": int(windows),
       "window": int(window), "tokens": int(windows) * int(window), "seconds": float(total),
       "tokens_per_s": int(tps), "writing_seconds": float(writing), "overhead_percent": float(overhead),
       "store_bytes": os.path.getsize(store), "raw_bytes": int(windows) * int(window) * 768 * 4}
json.dump(res, open(out, "w"), indent=2)
print(json.dumps(res))
PY
