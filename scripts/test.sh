#!/usr/bin/env bash
# Runs the whole test suite, after installing what the tests need:
#   - a Python virtualenv with moto (an S3-compatible server the storage suite runs against), the Python
#     deltalake package (a second Delta reader, for the interoperability test) and the official MCP SDK
#     (`mcp`, the client of the MCP tests),
#   - the built-in embedding model's weights (scripts/fetch-model.sh),
#   - Debian's chromium and playwright-core from npm, for the web page's tests in a real browser,
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
if ! "$venv/bin/python" -c 'import moto, deltalake, pyarrow, mcp' 2>/dev/null; then
  echo "==> installing moto[server] (S3-compatible test server), deltalake and pyarrow (a second Delta reader), mcp (the MCP SDK)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.0.15,<6' 'deltalake>=1,<2' 'pyarrow>=15' 'mcp>=2.3,<3'
fi
export LAKEHOUSE_MOTO_SERVER="$venv/bin/moto_server"
export LAKEHOUSE_TEST_PYTHON="$venv/bin/python"

# A browser for the page's tests: Debian's Chromium, driven by playwright-core (npm).
if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing chromium (Debian) for the browser tests"
  sudo_=""
  [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi
node_dir="$cache/node"
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  echo "==> installing playwright-core (npm) for the browser tests"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent 'playwright-core@1'
fi
export LAKEHOUSE_CHROMIUM=/usr/bin/chromium
export LAKEHOUSE_NODE_PATH="$node_dir/node_modules"

# The built-in embedding model, for the local provider.
./scripts/fetch-model.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast

# The reader of the usearch snapshots of earlier versions is a feature off by default (see
# crates/lakehouse-vector/src/hnsw/usearch.rs); its conversion is tested here.
echo "==> cargo clippy and test, lakehouse-vector --features usearch-snapshots"
cargo clippy -p lakehouse-vector --features usearch-snapshots --all-targets --locked -- -D warnings
cargo test -p lakehouse-vector --features usearch-snapshots --locked --lib usearch
