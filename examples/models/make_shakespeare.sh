#!/bin/bash
# The exact commands that made examples/models/shakespeare.h5 (about 25 minutes on this 2-core
# machine; see the README). Needs the qkv tools on PATH and ../shared/data/tinyshakespeare.txt
# (or the corpus as $1). Works in the current folder (tokenizer.h5, init.h5, the checkpoint
# shakespeare.h5) and writes the shipped copy to $2 (default: shakespeare-f16.h5).
set -euo pipefail
corpus=${1:-$(dirname "$0")/../../../shared/data/tinyshakespeare.txt}
out=${2:-shakespeare-f16.h5}
# The tokenizer learns from the training part only: the first 90% of the text, which is what
# train keeps for training (--val-fraction 0.1 holds out the rest).
head -c $(( $(wc -c < "$corpus") * 9 / 10 )) "$corpus" > train-part.txt
tokenize --train 1024 -f train-part.txt -o tokenizer.h5
model init --vocab tokenizer.h5 --n-layers 6 --d-model 192 --n-heads 6 --n-ctx 128 --seed 1 \
    --name shakespeare -o init.h5
train --model init.h5 -f "$corpus" -o shakespeare.h5 --threads 2 --seed 1337 \
    --steps 2500 --batch 16 --context 128 --lr 2e-3 --min-lr 1e-4 --warmup 100 \
    --weight-decay 0.1 --grad-clip 1.0 --eval-every 100 --eval-iters 10 --save-every 250
rm train-part.txt
# The checkpoint carries AdamW's moments (three times the weights); the shipped copy has the
# weights in half precision and the training log.
model export shakespeare.h5 -o "$out"
train --model "$out" -f "$corpus" --eval-only
