#!/usr/bin/env bash
# The fuzz targets with a long budget: every `fuzz_*` test (the filter language, dates, object keys, JSON
# request bodies, the SQL read-only gate, the CSV record splitter against csv_core, CSV, NDJSON and Parquet
# bodies through inference and decoding, the eligibility rules), each running 1,000,000 generated cases (or
# the count given). The test command runs the same targets with a short budget. A test build, as the test
# command makes (a release test build of these crates rebuilds DataFusion with other features: most of an hour).
#
#   scripts/fuzz.sh [cases per target]
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-1000000}"
export LAKEHOUSE_FUZZ_CASES="$cases"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lakehouse-target}"
start=$(date +%s)
cargo test --lib -p lakehouse-types -p lakehouse-query -p lakehouse-ingest -p lakehouse-matrix \
  -- fuzz_ 2>&1 | grep -E '^test |^test result: [A-Z]+\. [1-9]|panicked|FAILED'
echo "each target above ran $cases cases; $(( $(date +%s) - start )) s in all"
