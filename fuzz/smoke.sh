#!/bin/bash
# A short, deterministic fuzz run for the test suite: a fixed seed and a fixed number of
# executions, new inputs into a scratch folder (the seeds in fuzz/corpus are only read).
# Usage: smoke.sh FUZZER SEED_DIR RUNS
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" && mkdir corpus
"$1" -seed=1 -runs="$3" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 corpus "$2" 2>&1 | tail -12
