#!/usr/bin/env bash
# The benchmark of README's table: set up if needed, build, then time the
# baseline job as binclass train, binclass sweep, eager PyTorch and Keras
# (when `scripts/setup.sh --keras` installed it). Options go to scripts/bench.py
# (--runs N, --seeds N).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release --quiet
venv=$(readlink -f .libtorch) # <venv>/lib/pythonX.Y/site-packages/torch
venv=${venv%/lib/python*}
exec "$venv/bin/python" scripts/bench.py "$@"
