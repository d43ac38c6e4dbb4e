#!/bin/bash
# The GPT-3 walk-through: where 175 billion parameters live, checked as it is printed.
set -euo pipefail
out=$(count-params --preset gpt3)
echo "$out"
j=$(count-params --preset gpt3 --json)
/usr/bin/python3 - "$j" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
head, block, model = j["head"]["total"], j["block"]["attention_matrices"], j["model"]
print()
print(f"one head: 4 matrices of 12,288 x 128 = {head:,} (about {head / 1e6:.1f} million)")
print(f"one attention block: 96 heads = {block:,} (around {block / 1e6:.0f} million)")
print(f"attention in all 96 layers: {model['attention_matrices']:,} (just under {model['attention_matrices'] / 1e9:.0f} billion)")
print(f"the whole model: {model['total']:,} (about {model['total'] / 1e9:.0f} billion)")
assert head == 6_291_456 and block == 603_979_776
assert model["attention_matrices"] == 57_982_058_496 and round(model["total"] / 1e9) == 175
PY
