#!/bin/bash
# Replays every artifact (crash-*, timeout-*, oom-*, leak-*) a long fuzz run left in DIR and
# names the first stack frame outside the sanitizer and fuzzer runtimes and libc: inside libhdf5
# (HDF5's own finding) or in qkv's code. Prints one line per artifact and a count per place.
# Usage: classify.sh FUZZER DIR
set -uo pipefail
fuzzer=$1
dir=$2
for a in "$dir"/crash-* "$dir"/timeout-* "$dir"/oom-* "$dir"/leak-*; do
    [ -e "$a" ] || continue
    trace=$(timeout 60 "$fuzzer" -timeout=5 -rss_limit_mb=4096 "$a" 2>&1)
    frame=$(grep -E '^ +#[0-9]+ ' <<<"$trace" \
        | grep -vE '__sanitizer|__asan|__ubsan|__lsan|fuzzer::|libc\.so|__libc|libstdc\+\+|malloc|calloc|realloc|operator new|memcpy|memmove|memset|strlen|__interceptor|___interceptor|sigaction|raise|abort' \
        | head -1)
    if grep -q 'libhdf5' <<<"$frame"; then where=libhdf5
    elif grep -q 'qkv' <<<"$frame"; then where=qkv
    elif [ -z "$frame" ]; then where=no-reproduction
    else where=other
    fi
    fn=$(sed -E 's/.* in ([^ ]+).*/\1/' <<<"$frame")
    echo "$where $(basename "$a") $fn"
done | tee /dev/stderr | awk '{n[$1]++} END {for (k in n) printf "%s: %d\n", k, n[k]}'
