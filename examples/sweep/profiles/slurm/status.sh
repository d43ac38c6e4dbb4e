#!/bin/bash
# Snakemake's --cluster-status for Slurm without accounting: a job's state from scontrol (the
# controller's record), as running, success or failed. A completing job whose script has ended
# is judged by its exit code, without waiting for the node's cleanup.
info=$(scontrol show job "$1" 2>/dev/null)
state=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2)
case "$state" in
COMPLETED) echo success ;;
COMPLETING) grep -q ' ExitCode=0:0' <<<"$info" && echo success || echo failed ;;
PENDING | RUNNING | CONFIGURING | SUSPENDED | REQUEUED | RESIZING) echo running ;;
"") echo success ;; # gone from the controller's memory: finished long ago, and its file is there
*) echo failed ;;
esac
