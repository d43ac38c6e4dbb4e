#!/bin/bash
# How much each head of layer 0 of the Shakespeare model matters to the next token: ablate one
# head at a time and measure the logit difference of an answer over a foil. score --value
# prints that one number, so the experiment is a shell loop (no Python, no parsing of tables).
set -euo pipefail
M=$(cd "$(dirname "$0")" && pwd)/models/shakespeare.h5
PROMPT="ROMEO: But soft, what light through yonder window breaks? It is"
ANSWER=" the" FOIL=" a"
tokenize -m "$M" "$PROMPT" | embed -m "$M" -o e.h5
measure() { # attend's extra options, then the rest of the model, then the number
    attend -m "$M" -l 0 "$@" e.h5 | mlp -m "$M" -l 0 | block -m "$M" -L 1: \
        | score -m "$M" --from - --answer "$ANSWER" --foil "$FOIL" --value
}
clean=$(measure)
echo "clean run:        logit(\"$ANSWER\") - logit(\"$FOIL\") = $clean"
# The stream scored is the text scored: the same number from the text itself.
direct=$(score -m "$M" "$PROMPT" --answer "$ANSWER" --foil "$FOIL" --value)
[ "$direct" = "$clean" ] || { echo "score of the text ($direct) differs from the stream's"; exit 1; }
changed=0
for h in 0 1 2 3 4 5; do
    v=$(measure --ablate-heads "$h")
    echo "head 0.$h ablated: $v"
    [ "$v" != "$clean" ] && changed=$((changed + 1))
done
[ "$changed" -eq 6 ] || { echo "ablating $((6 - changed)) head(s) changed nothing"; exit 1; }
echo "each head's effect measured"
