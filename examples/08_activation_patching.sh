#!/bin/bash
# Activation patching on the Shakespeare model: where does the model carry what one word of the
# prompt changes? Two prompts that differ in one token ("father" / "mother"); the stream of the
# corrupted run replaces the clean run's at one layer and one position at a time, and each
# variant is scored by the logit difference of "self" over " life" after the prompt.
# block --sweep patch-positions runs all 6 x 27 variants in batches, in one process, and
# inspect draws the grid (layer down, position across) of the change from the clean run.
set -euo pipefail
M=$(cd "$(dirname "$0")" && pwd)/models/shakespeare.h5
CLEAN="JULIET: O Romeo, Romeo, wherefore art thou Romeo? Deny thy father and refuse thy"
CORRUPT="JULIET: O Romeo, Romeo, wherefore art thou Romeo? Deny thy mother and refuse thy"
ANSWER="self" FOIL=" life"
tokenize -m "$M" "$CLEAN" | embed -m "$M" -o clean.h5
# the corrupted run, every layer's entering stream kept (block --save resid_pre)
tokenize -m "$M" "$CORRUPT" | embed -m "$M" | block -m "$M" --save resid_pre -o corrupt.h5
block -m "$M" clean.h5 --sweep patch-positions --patch-from corrupt.h5 \
    --answer "$ANSWER" --foil "$FOIL" -o grid.h5
inspect grid.h5:/sweep/change --png patching.png
clean=$(score -m "$M" "$CLEAN" --answer "$ANSWER" --foil "$FOIL" --value)
corrupt=$(score -m "$M" "$CORRUPT" --answer "$ANSWER" --foil "$FOIL" --value)
echo "clean $clean, corrupted $corrupt"
# The prompts differ only at position 20: patching layer 0's stream there makes the whole run
# the corrupted one, and patching it anywhere else changes nothing.
at() { inspect grid.h5:/sweep/metric --slice "$1" | tail -n 1 | cut -f 2; }
near() { /usr/bin/python3 -c "import sys; sys.exit(abs($1 - $2) > 1e-4)"; }
near "$(at 0,20)" "$corrupt" || { echo "layer 0, position 20: $(at 0,20), not $corrupt"; exit 1; }
for p in 0 10 19 21 26; do
    near "$(at 0,$p)" "$clean" || { echo "layer 0, position $p: $(at 0,$p), not $clean"; exit 1; }
done
echo "patching.png: the change at each layer and position (layer 0, position 20: the corrupted run)"
