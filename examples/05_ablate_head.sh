#!/bin/bash
# Ablate one head of layer 0 and measure how the next-token probability changes.
set -euo pipefail
model init --preset tiny --seed 1 -o tiny.h5 -q
tokenize --model tiny.h5 "a fluffy blue creature roamed the verdant" | embed --model tiny.h5 -o e.h5
attend --model tiny.h5 --layer 0 e.h5 | mlp --model tiny.h5 --layer 0 \
    | block --model tiny.h5 --layers 1: -o clean.h5
attend --model tiny.h5 --layer 0 --ablate-heads 2 e.h5 | mlp --model tiny.h5 --layer 0 \
    | block --model tiny.h5 --layers 1: -o ablated.h5
generate --model tiny.h5 --from clean.h5 --top 1 --json > clean.json
generate --model tiny.h5 --from ablated.h5 --top 1 --json > ablated.json
# inspect --diff exits 1 when the files differ, as diff does
if inspect clean.h5 --diff ablated.h5 >diff.txt; then echo "the runs do not differ"; exit 1; fi
head -3 diff.txt
/usr/bin/python3 - <<'PY'
import json
c, a = json.load(open("clean.json"))["top"][0], json.load(open("ablated.json"))["top"][0]
print(f"clean:   top token {c['token']!r} p = {c['prob']:.6f}")
print(f"ablated: top token {a['token']!r} p = {a['prob']:.6f}")
assert c["prob"] != a["prob"], "ablating a head changed nothing"
PY
grep -q "ablated heads 2" <(inspect ablated.h5)
echo "ablation recorded and measured"
