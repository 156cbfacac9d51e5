#!/usr/bin/env bash
# The whole test suite: set up if needed, then every unit and integration test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The tests load models in Python's PyTorch (tests/torch_loader.rs), whose
# import on Linux needs CUDA's wheels even on a CPU: the full install.
scripts/setup.sh --cuda
exec cargo test --release "$@"
