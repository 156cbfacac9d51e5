#!/usr/bin/env bash
# The figures of docs/tensorboard.md, from a real TensorBoard in a real
# browser: binclass's and Keras's baseline (seed 0) overlaid in the SCALARS
# tab (docs/tensorboard/scalars.png), and a --vary grid in the HPARAMS tab
# (docs/tensorboard/hparams.png). Needs TensorFlow (scripts/setup.sh --keras)
# and Debian's headless Chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh --keras
cargo build --release --quiet
command -v chromium >/dev/null || { echo "tensorboard_figures: chromium not found (apt-get install chromium)" >&2; exit 1; }
venv=$(readlink -f .libtorch) # <venv>/lib/pythonX.Y/site-packages/torch
py=${venv%/lib/python*}/bin/python
bin=$PWD/target/release/binclass
out=$PWD/docs/tensorboard
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
cd "$tmp"

"$bin" train --tensorboard tb/binclass -v 0
TF_CPP_MIN_LOG_LEVEL=3 "$py" "$OLDPWD/scripts/keras_reference.py" --preset baseline --seed 0 --verbose 0 \
    --threads 1 --tensorboard tb/keras >/dev/null 2>&1
"$bin" sweep --seeds 0..4 --vary noise-rate=0,0.1,0.2 --vary lr=0.001,0.01 --epochs 20 --out-dir grid \
    --tensorboard tb-grid -v 0

# shot LOGDIR PAGE PNG: TensorBoard on LOGDIR (a port of its own), PAGE's screenshot.
shot() {
    "$py" -m tensorboard.main --logdir "$1" --host 127.0.0.1 --port 0 2>"$tmp/tb.log" &
    local tb=$! url=
    for _ in $(seq 60); do
        url=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/tb.log" | head -1) && [ -n "$url" ] && break
        sleep 1
    done
    sleep 5 # its first load of the event files
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --no-first-run --disable-sync --user-data-dir="$tmp/chromium" --window-size=1400,900 \
        --virtual-time-budget=30000 --screenshot="$3" "$url/$2" 2>/dev/null
    kill "$tb"
    wait "$tb" || true
}
shot tb '#scalars&_smoothingWeight=0' "$out/scalars.png"
shot tb-grid '#hparams' "$out/hparams.png"
echo "wrote $out/scalars.png and $out/hparams.png"
