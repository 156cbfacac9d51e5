#!/usr/bin/env bash
# The benchmark of README's table: set up if needed (JAX included, in its own
# environment: `scripts/setup.sh --bench`), build, then time the baseline job as
# binclass train, binclass sweep, JAX (one seed, and the sweep's seeds under
# vmap), eager PyTorch and Keras (when `scripts/setup.sh --keras` installed it).
# Options go to scripts/bench.py (--runs N, --seeds N; --tensorboard times only
# binclass, with and without writing TensorBoard events, and needs no JAX).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case " $* " in
*" --tensorboard "*) scripts/setup.sh ;;
*) scripts/setup.sh --bench ;;
esac
cargo build --release --quiet
venv=$(readlink -f .libtorch) # <venv>/lib/pythonX.Y/site-packages/torch
venv=${venv%/lib/python*}
exec "$venv/bin/python" scripts/bench.py --jax "$(scripts/setup.sh --jax-env)/bin/python" "$@"
