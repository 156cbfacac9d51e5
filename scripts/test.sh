#!/usr/bin/env bash
# The whole test suite: set up if needed, then every unit and integration test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
exec cargo test --release "$@"
