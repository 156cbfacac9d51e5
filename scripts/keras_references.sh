#!/usr/bin/env bash
# Extends reference/keras/ to the seed counts the verdicts need, as a
# resumable background job: two workers (one per core, one TensorFlow thread
# each, niced), each taking its half of every stage; a seed already finished
# is skipped, so a job cut short goes on where it stopped when started again.
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
worker() {
    local k=$1
    while read -r preset seeds; do
        [ -n "$preset" ] || continue
        nice -n 19 "$python" scripts/keras_reference.py --preset "$preset" --seeds "$seeds" \
            --shard "$k/2" --threads 1 --verbose 0
    done <<<"$stages"
}
worker 0 & a=$!
worker 1 & b=$!
wait $a && wait $b
