#!/bin/bash
# One attention pattern drawn for the classic sentence, every head of layer 0 in a grid, and
# the same in the terminal. (On a random model the heads look at earlier tokens almost evenly;
# on a trained model some heads pick out the words that describe the noun.)
set -euo pipefail
model init --preset tiny --seed 1 -o tiny.h5 -q
tokenize --model tiny.h5 "a fluffy blue creature roamed the verdant forest" | embed --model tiny.h5 \
    | attend --model tiny.h5 --layer 0 --save pattern -o l0.h5
inspect l0.h5 --pattern --heads all --png pattern.png
NO_COLOR=1 inspect l0.h5 --pattern --head 0 --term --width 60
# check: a PNG of the expected kind, and the terminal picture has one row per token
head -c 8 pattern.png | od -An -c | grep -q "P   N   G"
rows=$(NO_COLOR=1 inspect l0.h5 --pattern --head 0 --term --width 60 | tail -n +2 | wc -l)
[ "$rows" -eq "$(tokenize --model tiny.h5 --count "a fluffy blue creature roamed the verdant forest")" ]
echo "pattern.png written; $rows query rows drawn"
