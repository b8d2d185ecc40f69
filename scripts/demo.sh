#!/usr/bin/env bash
# Starts Lakehouse on the embedded default (local storage in ./lakehouse-data, built-in model) and shows it
# working. Shares the build directory with scripts/test.sh, so after a test run it starts at once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lakehouse-target}"
# The built-in embedding model, for the local provider.
./scripts/fetch-model.sh

exec cargo run --locked -p lakehouse -- demo "$@"
