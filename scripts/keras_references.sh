#!/usr/bin/env bash
# Extends reference/keras/ to the seed counts the verdicts need, as a
# resumable background job: two workers (one per core, one TensorFlow thread
# each, niced), each taking half of what is left of every stage; a seed
# already finished is skipped, so a job cut short goes on where it stopped
# when started again.
#
#   nohup scripts/keras_references.sh > keras-references.log 2>&1 &
#
# Stages, most telling first: scaled to 100 seeds, the four well-conditioned
# presets to 20, scaled-long to 30, scaled to 300. KERAS_STAGES replaces them
# ("preset A..B" per line).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh --keras
python=${BINCLASS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/binclass/torch-2.11.0}/bin/python
stages=${KERAS_STAGES:-"scaled 0..100
baseline 0..20
noise 0..20
dummy-features 0..20
shifted 0..20
scaled-long 0..30
scaled 0..300"}
export TF_CPP_MIN_LOG_LEVEL=2
# Both workers take each stage together, each half of what is left of it
# (--shard-unfinished), and the next stage starts when both are done: on a
# stage partly done before, contiguous halves of the whole range would leave
# the rest to one worker while the other idles.
while read -r preset seeds; do
    [ -n "$preset" ] || continue
    pids=()
    for k in 0 1; do
        nice -n 19 "$python" scripts/keras_reference.py --preset "$preset" --seeds "$seeds" \
            --shard "$k/2" --shard-unfinished --threads 1 --verbose 0 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
done <<<"$stages"
