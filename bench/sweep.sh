#!/bin/bash
# The layer x head ablation table of the gpt2 preset (12 x 12 = 144 heads, random weights of the
# real shapes) on a 20-token prompt, two ways in the same run: block --sweep ablate-heads (one
# process, each layer's 12 variants one batch from the clean stream entering it), and a loop of
# separate tool runs, block --ablate L.z#H=zero | score --value, one per head. Seconds of wall
# time each, and their ratio; the two tables must agree (1e-5). Writes bench/results/sweep.json.
# Usage: bench/sweep.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bin=$build/tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/results"
m=$work/gpt2.h5
"$bin/model" init --preset gpt2 --seed 1 -o "$m" -q
prompt="When Mary and John went to the store, John gave a drink to her because she was so thirsty"
"$bin/tokenize" -m "$m" "$prompt" | "$bin/embed" -m "$m" -o "$work/e.h5"
n=$("$bin/tokenize" -m "$m" "$prompt" --count)
t0=$(date +%s.%N)
"$bin/block" -m "$m" "$work/e.h5" --sweep ablate-heads --answer " Mary" --foil " John" >"$work/sweep.tsv"
t1=$(date +%s.%N)
for l in $(seq 0 11); do
    for h in $(seq 0 11); do
        v=$("$bin/block" -m "$m" "$work/e.h5" --ablate "$l.z#$h=zero" |
            "$bin/score" -m "$m" --from - --answer " Mary" --foil " John" --value)
        printf '%s\t%s\t%s\n' "$l" "$h" "$v"
    done
done >"$work/loop.tsv"
t2=$(date +%s.%N)
/usr/bin/python3 - "$work/sweep.tsv" "$work/loop.tsv" "$t0" "$t1" "$t2" "$n" "$here/results/sweep.json" <<'PY'
import json, sys
sweep_f, loop_f, t0, t1, t2, n, out = sys.argv[1:]
sweep = {(int(r[0]), int(r[1])): float(r[2]) for r in (l.split("\t") for l in open(sweep_f) if l[0].isdigit())}
loop = {(int(r[0]), int(r[1])): float(r[2]) for r in (l.split("\t") for l in open(loop_f))}
worst = max(abs(sweep[k] - loop[k]) for k in loop)
s, l = float(t1) - float(t0), float(t2) - float(t1)
res = {"model": "gpt2 preset", "prompt_tokens": int(n), "variants": len(loop), "sweep_seconds": s,
       "loop_seconds": l, "speedup": l / s, "max_abs_difference": worst}
json.dump(res, open(out, "w"), indent=2)
print(f"144 head ablations of gpt2 on {n} tokens: block --sweep {s:.2f} s, a loop of tool runs {l:.2f} s "
      f"({l / s:.1f}x); tables differ by at most {worst:.2g}")
assert worst <= 1e-4, worst
PY
