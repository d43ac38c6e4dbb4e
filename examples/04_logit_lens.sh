#!/bin/bash
# The logit lens: the prediction the residual stream would give after each layer, against the
# model's own after the last one.
set -euo pipefail
model init --preset tiny --seed 1 -o tiny.h5 -q
tokenize --model tiny.h5 "The capital of France is" | embed --model tiny.h5 -o e.h5
block --model tiny.h5 --layers 0:1 e.h5 -o after0.h5
block --model tiny.h5 --layers 1:2 after0.h5 -o after1.h5
for f in e.h5 after0.h5 after1.h5; do
    echo "== $f"
    generate --model tiny.h5 --from $f --top 3
done
# check: the earlier streams are marked as the logit lens, the last one is the prediction
generate --model tiny.h5 --from after0.h5 --top 1 | grep -q "logit lens"
! generate --model tiny.h5 --from after1.h5 --top 1 | grep -q "logit lens"
echo "logit lens ok"
