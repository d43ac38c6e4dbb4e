#!/bin/bash
# Tokenizer speed on the Shakespeare corpus: qkv (one thread, vocabulary loaded, median of 5)
# against js-tiktoken on the same text in the same run. MB/s = input bytes / encode seconds.
# Usage: bench/tokenizer.sh [BUILD_DIR] [TEXT]   (writes bench/results/tokenizer.json)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
text=${2:-$here/../../shared/data/tinyshakespeare.txt}
[ -f "$text" ] || { echo "tokenizer.sh: $text not found (see ../shared/data/README.md)"; exit 0; }
mkdir -p "$here/results"
ours=$("$build/bench/tokenizer_bench" "$text" 5)
ref='null'
node_dir=$here/../tests/reference/node
if command -v node >/dev/null && [ -d "$node_dir/node_modules/js-tiktoken" ]; then
    ref=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps([open(sys.argv[1], encoding="utf-8").read()]))' "$text" \
          | node "$node_dir/encode.js" bench)
fi
/usr/bin/python3 - "$ours" "$ref" "$here/results/tokenizer.json" <<'PY'
import json, sys
ours, ref = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'tokenizer':<24}{'MB/s':>8}{'tokens':>10}")
print(f"{'qkv (median of ' + str(ours['runs']) + ')':<24}{ours['mb_per_s_median']:>8.2f}{ours['tokens']:>10}")
if ref:
    print(f"{'js-tiktoken (1 run)':<24}{ref['mb_per_s']:>8.2f}{ref['tokens']:>10}")
    print(f"ratio qkv / js-tiktoken: {ours['mb_per_s_median'] / ref['mb_per_s']:.2f}")
json.dump({"qkv": ours, "js_tiktoken": ref}, open(sys.argv[3], "w"), indent=2)
PY
