#!/bin/bash
# The model qkv trained itself on Shakespeare (examples/models/make_shakespeare.sh made it:
# tokenize --train, model init, train, model export): text it writes, a head of layer 0 that
# looks at the previous token, and its held-out loss when the corpus is at hand.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
M=$here/models/shakespeare.h5
generate --model "$M" "ROMEO:" -n 80 --seed 3 | tee text.txt
echo
# check: English words, and at least one line break, as in a play
words=$(tr -cs "A-Za-z'" '\n' < text.txt | grep -c .)
[ "$words" -ge 25 ]
[ "$(wc -l < text.txt)" -ge 1 ]
tokenize --model "$M" "ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet is the sun." \
    | embed --model "$M" | attend --model "$M" --layer 0 --save pattern -o l0.h5
inspect l0.h5 --pattern --head 3 --png head.png
# check: layer 0, head 3 puts its largest weight on the previous token for most queries
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
p = h5py.File("l0.h5", "r")["attn/pattern"][0, 3]  # [query, key]
T = p.shape[0]
on_prev = np.mean([np.argmax(p[t, :t + 1]) == t - 1 for t in range(2, T)])
weight = np.mean([p[t, t - 1] for t in range(1, T)])
print(f"layer 0 head 3: strongest on the previous token for {on_prev:.0%} of queries, mean weight {weight:.2f}")
assert on_prev >= 0.4 and weight >= 0.2, "not a previous-token head"
PY
corpus=$here/../../shared/data/tinyshakespeare.txt
if [ -f "$corpus" ]; then
    train --model "$M" -f "$corpus" --eval-only | tee eval.txt
    awk '$1 == "val_nats_per_char" { exit !($2 < 1.88) }' eval.txt
else
    echo "held-out loss skipped: $corpus is absent (see ../shared/data/README)"
fi
