#!/bin/bash
# The patching study of examples/sweep as a Snakemake workflow: run here, killed halfway and
# resumed, and on a real single-node Slurm (slurmctld and slurmd on this machine, munge for
# authentication, a slurm.conf written here) through the repository's profile; the local, the
# resumed and the Slurm results equal each other bit for bit, and equal `block --sweep` run
# directly. Exit 77 (skipped) where Slurm cannot start: not root, or its programs missing.
set -u
BIN=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SWEEP=$SRC/examples/sweep
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$work/slurm/munged.pid" ] && kill "$(cat "$work/slurm/munged.pid")" 2>/dev/null
    for f in slurmctld slurmd; do [ -f "$work/slurm/$f.pid" ] && kill "$(cat "$work/slurm/$f.pid")" 2>/dev/null; done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT
export PATH="$BIN:$PATH" XDG_CACHE_HOME="$work/cache"
export CI=true # Snakemake polls a cluster every second, not every ten
fail=0
no() { echo "FAIL: $*"; fail=1; }
command -v snakemake >/dev/null || { echo "SKIP: no snakemake (scripts/deps.sh --test)"; exit 77; }
same() { # two studies, bit for bit
    cmp -s "$1/results/study.csv" "$2/results/study.csv" && /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
import h5py
import numpy as np
a, b = (h5py.File(d + "/results/study.h5") for d in sys.argv[1:])
sys.exit(0 if all(np.array_equal(a["study"][k][()], b["study"][k][()])
                  for k in ("metric", "change", "mean_change", "clean")) else 1)
PY
}
jobs_run() { grep -E "^total +[0-9]+" "$1" | tail -n 1 | awk '{print $2}'; }

# 1. Here, in one go.
snakemake -s "$SWEEP/Snakefile" --directory "$work/local" --cores 2 >"$work/local.log" 2>&1 ||
    { tail -20 "$work/local.log"; echo "FAIL: the local run"; exit 1; }
pairs=$(/usr/bin/python3 -c "import h5py; print(len(h5py.File('$work/local/results/study.h5')['study/pairs']))")
[ "$pairs" -ge 8 ] || no "the study has $pairs pairs"
[ -s "$work/local/results/study.png" ] || no "no picture of the study"

# 2. block --sweep run directly on each pair gives the study's numbers.
M=$SRC/examples/models/shakespeare.h5
/usr/bin/python3 - "$SWEEP/config.yaml" "$work" "$M" <<'PY' || no "the study differs from block --sweep run directly"
import subprocess, sys
import h5py, numpy as np, yaml
cfg, work, model = yaml.safe_load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
study = h5py.File(work + "/local/results/study.h5")
names = [n.decode() if isinstance(n, bytes) else n for n in study["study/pairs"][()]]
for i, name in enumerate(names):
    pair, d = cfg["pairs"][name], f"{work}/direct-{i}"
    sh = lambda c: subprocess.run(["bash", "-o", "pipefail", "-c", c], check=True)
    sh(f"tokenize -m {model} '{pair['clean']}' | embed -m {model} -o {d}-clean.h5")
    sh(f"tokenize -m {model} '{pair['corrupt']}' | embed -m {model} | block -m {model} --save resid_pre,z -o {d}-cap.h5")
    sh(f"block -m {model} {d}-clean.h5 --sweep {cfg['sweep']} --patch-from {d}-cap.h5 --answer '{cfg['answer']}' "
       f"--foil '{cfg['foil']}' -o {d}-sweep.h5")
    if not np.array_equal(h5py.File(f"{d}-sweep.h5")["sweep/metric"][()], study["study/metric"][i]):
        sys.exit(f"{name}: differs")
PY

# 3. Killed halfway (SIGKILL, the running job with it) and resumed: only what is missing is made.
mkdir -p "$work/resume"
setsid snakemake -s "$SWEEP/Snakefile" --directory "$work/resume" --cores 1 >"$work/killed.log" 2>&1 &
run=$!
for _ in $(seq 600); do
    n=$(find "$work/resume/work" -name sweep.h5 2>/dev/null | wc -l)
    [ "$n" -ge 3 ] && break
    sleep 0.1
done
kill -KILL -- -"$run" 2>/dev/null
wait "$run" 2>/dev/null
done_before=$(find "$work/resume/work" -name sweep.h5 | wc -l)
[ "$done_before" -ge 3 ] && [ "$done_before" -lt "$pairs" ] || no "the kill came at $done_before of $pairs sweeps"
# a killed Snakemake leaves its lock, which the user removes (the outputs stay as they are)
snakemake -s "$SWEEP/Snakefile" --directory "$work/resume" --unlock >/dev/null 2>&1 || no "--unlock"
planned=$(cd "$SWEEP" && snakemake -s Snakefile --directory "$work/resume" -n --rerun-incomplete 2>&1 |
    grep -E "^total +[0-9]+" | tail -n 1 | awk '{print $2}')
snakemake -s "$SWEEP/Snakefile" --directory "$work/resume" --cores 2 --rerun-incomplete >"$work/resume.log" 2>&1 ||
    { tail -20 "$work/resume.log"; no "the resumed run"; }
ran=$(jobs_run "$work/resume.log")
total=$(jobs_run "$work/local.log")
# every sweep left is one job, and each of its own inputs that was missing
[ -n "$ran" ] && [ "$ran" = "$planned" ] && [ "$ran" -lt "$total" ] && [ "$ran" -ge $((pairs - done_before + 3)) ] ||
    no "the resumed run made $ran jobs (planned $planned, the whole study $total, $done_before sweeps done)"
[ -z "$(find "$work/resume" -name '*.tmp*')" ] || no "temporary files left: $(find "$work/resume" -name '*.tmp*')"
same "$work/local" "$work/resume" || no "the resumed study differs from the local one"

# 4. On Slurm, through the repository's profile.
if [ "$(id -u)" != 0 ] || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null ||
    [ ! -r /etc/munge/munge.key ]; then
    echo "SKIP (Slurm): needs root, slurm-wlm and munge with /etc/munge/munge.key; the local checks passed"
    [ $fail -eq 0 ] && exit 77 || exit 1
fi
s=$work/slurm
mkdir -p "$s/state" "$s/spool" "$s/log"
host=$(hostname)
port() { /usr/bin/python3 -c "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"; }
cat >"$s/slurm.conf" <<CONF
ClusterName=qkvtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$s/munge.socket
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/log/slurmctld.log
SlurmdLogFile=$s/log/slurmd.log
SlurmctldPort=$(port)
SlurmdPort=$(port)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$s/slurm.conf
munged --force --socket="$s/munge.socket" --pid-file="$s/munged.pid" --log-file="$s/munged.log" \
    --seed-file="$s/munge.seed" || { echo "FAIL: munged did not start"; exit 1; }
slurmctld -f "$SLURM_CONF" && slurmd -f "$SLURM_CONF" || { cat "$s"/log/*; echo "FAIL: Slurm did not start"; exit 1; }
for _ in $(seq 100); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.2; done
sinfo -h -o %t | grep -q idle || { cat "$s"/log/*; echo "FAIL: the Slurm node is not idle"; exit 1; }
snakemake -s "$SWEEP/Snakefile" --directory "$work/cluster" --profile "$SWEEP/profiles/slurm" >"$work/cluster.log" 2>&1 ||
    { tail -30 "$work/cluster.log"; no "the Slurm run"; }
submitted=$(grep -c "Submitted job .* with external jobid" "$work/cluster.log")
[ "$submitted" = $((total - 1)) ] || no "$submitted jobs went to Slurm, not $((total - 1))" # all: local
same "$work/local" "$work/cluster" || no "the Slurm study differs from the local one"
scontrol shutdown >/dev/null 2>&1
[ $fail -eq 0 ] && echo "sweep: $pairs pairs x $(grep -c . "$work/local/results/study.csv") rows; local, resumed ($ran of $total jobs after the kill), direct and Slurm ($submitted sbatch jobs) agree"
exit $fail
