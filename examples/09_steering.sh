#!/bin/bash
# Steering the Shakespeare model towards love (contrastive activation addition): steer takes the
# mean stream entering layer 2 over lines of love minus that over lines of hate; block --add
# puts the vector into a run, generate --add into every step of generation (KV cache on).
set -euo pipefail
M=$(cd "$(dirname "$0")" && pwd)/models/shakespeare.h5
printf '%s\n' "My love, my sweet love, I love thee" "O gentle love, sweet love" \
    "Love is a smoke made with the fume of sighs" "I do love thee, sweet" >love.txt
printf '%s\n' "I hate thee, villain" "O hateful day, cursed hate" "I do hate thee, knave" \
    "Hate and rage and fury" >hate.txt
steer -m "$M" -l 2 --positive love.txt --negative hate.txt --all-positions -o love.h5
PROMPT="ROMEO: I tell thee, my"
tokenize -m "$M" "$PROMPT" | embed -m "$M" -o e.h5
logp() { block -m "$M" e.h5 "$@" | score -m "$M" --from - --answer " love" --value; }
clean=$(logp)
steered=$(logp --add 2.resid_pre=love.h5 --scale 2)
echo "log p(\" love\" | \"$PROMPT\"): $clean, steered $steered"
/usr/bin/python3 -c "import sys; sys.exit($steered < $clean + 0.5)" ||
    { echo "steering did not make \" love\" more likely"; exit 1; }
plain=$(generate -m "$M" "$PROMPT" -n 16 --temperature 0)
loving=$(generate -m "$M" "$PROMPT" -n 16 --temperature 0 --add 2.resid_pre=love.h5 --scale 2)
printf 'unsteered: %s\nsteered:   %s\n' "$plain" "$loving"
[ "$plain" != "$loving" ] || { echo "steered generation is the same text"; exit 1; }
