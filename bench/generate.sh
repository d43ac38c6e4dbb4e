#!/bin/bash
# Generation speed on the gpt2 preset (124M, random weights of the real shapes): prompt
# processing tokens/s and generation tokens/s (128 new tokens with the KV cache), median of
# 3 runs each. Writes bench/results/generate.json.
# Usage: bench/generate.sh [BUILD_DIR] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${2:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/results"
"$build/tools/model" init --preset gpt2 --seed 1 -o "$work/gpt2.h5" -q
prompt16=$(/usr/bin/python3 -c 'print(" ".join(["word"] * 16))')
prompt256=$(/usr/bin/python3 -c 'print(" ".join(["word"] * 256))')
run() { # prompt, n -> "prompt_tps gen_tps peak_mib"
    "$build/tools/generate" -m "$work/gpt2.h5" "$1" -n "$2" --ignore-eos --seed 1 \
        --threads "$threads" --stats 2>&1 >/dev/null \
        | /usr/bin/python3 -c '
import re, sys
t = sys.stdin.read()
p = re.search(r"prompt: \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", t).group(1)
g = re.search(r"generated: \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", t).group(1)
m = re.search(r"peak memory: ([\d.]+) MiB", t).group(1)
print(p, g, m)'
}
results=()
for case in "16 128" "256 128"; do
    set -- $case
    prompt=$([ "$1" = 16 ] && echo "$prompt16" || echo "$prompt256")
    for r in 1 2 3; do results+=("$1 $(run "$prompt" "$2")"); done
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [l.split() for l in sys.stdin.read().splitlines()]
out = {}
print(f"gpt2 preset (124M), threads='"$threads"', median of 3 (min..max)")
hdr = ("prompt", "prompt tok/s", "decode tok/s", "peak MiB")
print("%8s %22s %22s %9s" % hdr)
for n in ("16", "256"):
    r = [list(map(float, x[1:])) for x in rows if x[0] == n]
    p, g, m = zip(*r)
    out[n] = {"prompt_tokens": int(n), "prompt_tokens_per_s": statistics.median(p), "prompt_min": min(p), "prompt_max": max(p),
              "decode_tokens_per_s": statistics.median(g), "decode_min": min(g), "decode_max": max(g), "peak_mib": max(m)}
    print(f"{n:>8} {statistics.median(p):>10.1f} ({min(p):.0f}..{max(p):.0f}) {statistics.median(g):>10.1f} ({min(g):.1f}..{max(g):.1f}) {max(m):>9.0f}")
json.dump({"model": "gpt2 preset", "threads": '"$threads"', "new_tokens": 128, "runs": out},
          open("'"$here"'/results/generate.json", "w"), indent=2)
'
