#!/usr/bin/env bash
# Runs the whole test suite, after installing what the tests need:
#   - a Python virtualenv with moto (an S3-compatible server the storage suite runs against) and the Python
#     deltalake package (a second Delta reader, for the interoperability test),
#   - the built-in embedding model's weights (scripts/fetch-model.sh),
# all cached under ~/.cache/lakehouse so a second run starts at once.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lakehouse-target}"
mkdir -p "$cache"

# Python tools for the tests, in their own virtualenv.
venv="$cache/venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import moto, deltalake, pyarrow' 2>/dev/null; then
  echo "==> installing moto[server] (S3-compatible test server), deltalake and pyarrow (a second Delta reader)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 'deltalake>=1,<2' 'pyarrow>=15'
fi
export LAKEHOUSE_MOTO_SERVER="$venv/bin/moto_server"
export LAKEHOUSE_TEST_PYTHON="$venv/bin/python"

# The built-in embedding model, for the local provider.
./scripts/fetch-model.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast
