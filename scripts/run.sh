#!/usr/bin/env bash
# The main job: set up if needed, build, and train (the baseline by default).
# Arguments go to `binclass train`, e.g. scripts/run.sh -e noise --seed 3
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release --quiet
exec target/release/binclass train "$@"
