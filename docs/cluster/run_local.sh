#!/bin/bash
# The cluster scheme on one machine: N shards of a command as separate
# processes (what the Slurm array's tasks or the Indexed Job's pods run,
# with K from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX), each into a
# folder of its own, then `binclass merge`.
#
#   docs/cluster/run_local.sh 4 runs/grid sweep --seeds 0..20 --vary noise-rate=0,0.2 --epochs 5
#   docs/cluster/run_local.sh 3 runs/repro reproduce --seeds 10
set -euo pipefail
N=${1:?usage: run_local.sh N OUT COMMAND ARGS...}
OUT=${2:?usage: run_local.sh N OUT COMMAND ARGS...}
shift 2
BINCLASS=${BINCLASS:-target/release/binclass}
pids=()
for ((K = 0; K < N; K++)); do
    "$BINCLASS" "$@" --shard "$K/$N" --out-dir "$OUT-shards/shard-$K" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
"$BINCLASS" merge "$OUT-shards"/shard-* --out "$OUT"
