#!/bin/bash
# Activation patching on the Shakespeare model: where does the model carry what one word of the
# prompt changes? Two prompts that differ in one token ("father" / "mother"); the stream of the
# corrupted run replaces the clean run's at one layer and one position at a time, and each
# variant is scored by the logit difference of "self" over " life" after the prompt.
# block --sweep patch-positions runs all 6 x 27 variants in batches, in one process, and
# inspect draws the grid (layer down, position across) of the change from the clean run.
# Attribution patching (attribute --method atp) then estimates the same grid, and every head's,
# from one backward pass; the estimates are checked against the real patches.
set -euo pipefail
M=$(cd "$(dirname "$0")" && pwd)/models/shakespeare.h5
CLEAN="JULIET: O Romeo, Romeo, wherefore art thou Romeo? Deny thy father and refuse thy"
CORRUPT="JULIET: O Romeo, Romeo, wherefore art thou Romeo? Deny thy mother and refuse thy"
ANSWER="self" FOIL=" life"
tokenize -m "$M" "$CLEAN" | embed -m "$M" -o clean.h5
# the corrupted run, every layer's entering stream and heads' z kept (block --save)
tokenize -m "$M" "$CORRUPT" | embed -m "$M" | block -m "$M" --save resid_pre,z -o corrupt.h5
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

# Attribution patching: both grids estimated at once, against the real patches of each head
# and each layer's stream at each position.
block -m "$M" clean.h5 --sweep patch-heads --patch-from corrupt.h5 \
    --answer "$ANSWER" --foil "$FOIL" -o heads.h5
attribute -m "$M" "$CLEAN" --answer "$ANSWER" --foil "$FOIL" --method atp \
    --patch-from corrupt.h5 -o atp.h5
attribute -m "$M" "$CLEAN" --answer "$ANSWER" --foil "$FOIL" --method atp \
    --patch-from corrupt.h5 --top 5
/usr/bin/python3 - <<'PY'
import sys
import h5py
import numpy as np
with h5py.File("atp.h5") as a, h5py.File("grid.h5") as p, h5py.File("heads.h5") as h:
    pairs = {"positions": (a["atp/positions"][()], p["sweep/change"][()]),
             "heads": (a["atp/heads"][()], h["sweep/change"][()])}
for name, (estimate, real) in pairs.items():
    r = np.corrcoef(estimate.ravel(), real.ravel())[0, 1]
    print(f"attribution patching vs real patches, {name}: correlation {r:.3f}")
    if r < 0.9:
        sys.exit(f"{name}: the estimates do not follow the real patches")
PY
