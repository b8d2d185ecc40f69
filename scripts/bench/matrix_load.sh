#!/usr/bin/env bash
# Load sweep of matrix search, as the system Lakehouse replaces measured it: a 5,000-worker corpus, 200
# distinct searches with filters (every tenth from a job order), hybrid mode, recordings on; 10, 50, 100 and
# 200 concurrent clients, then embed and search mixed at 60 clients each. wrk (Debian package `wrk`) runs
# on the same machine as the server.
#
#   scripts/bench/matrix_load.sh [path/to/lakehouse] [seconds per step]
#
# With LAKEHOUSE_BENCH_PERF=FILE the 50-client step is recorded by `perf record -g` into FILE.
#
# Prints, per step: requests/s, p50, p99, errors, and the server's RSS; then the recordings written and
# dropped. Build the binary first: cargo build --release -p lakehouse.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
seconds="${2:-30}"
workers="${LAKEHOUSE_BENCH_WORKERS:-5000}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
LAKEHOUSE_LOG__LEVEL=warn "$bin" serve --data "$work/data" --listen 127.0.0.1:0 --addr-file "$work/addr" \
  >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s "$work/addr" ] && break; sleep 0.1; done
url="http://$(cat "$work/addr")"
rss() { awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$pid/status"; }
peak() { awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$pid/status"; }

"$bin" generate --workers "$workers" --out "$work/csv" --seed 42 >/dev/null
for table in workers job_orders; do
  "$bin" ingest "$work/csv/$table.csv" --dataset "$table" --mode create --url "$url" >/dev/null
done
curl -sS --fail-with-body -H 'Content-Type: application/json' -d @crates/lakehouse/src/demo/workers_corpus.json \
  "$url/v1/matrix/corpora" >/dev/null
start=$(date +%s%N)
while ! curl -sS "$url/v1/matrix/corpora/workers" | grep -q '"status":"ready"'; do sleep 0.2; done
echo "corpus of $workers workers built in $(( ($(date +%s%N) - start) / 1000000 )) ms: $(curl -sS "$url/v1/matrix/corpora/workers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_sync"])')"
echo "RSS after the build: $(rss) (peak $(peak))"

# Every search once (embeddings cached, code paths warm), then each step.
wrk -t2 -c50 -d10s -s scripts/bench/matrix_load.lua "$url" >/dev/null
printf '%-26s %9s %8s %8s %7s %9s\n' step req/s p50_ms p99_ms errors rss
for c in 10 50 100 200; do
  if [ "$c" = 50 ] && [ -n "${LAKEHOUSE_BENCH_PERF:-}" ]; then
    # The 50-client step under `perf record`, for where a search's time goes (perf report -i FILE).
    perf record -F 999 -g -p "$pid" -o "$LAKEHOUSE_BENCH_PERF" -- sleep "$seconds" >/dev/null 2>&1 &
  fi
  line=$(wrk -t2 -c"$c" -d"${seconds}s" --latency -s scripts/bench/matrix_load.lua "$url" | grep '^RESULT')
  eval "${line#RESULT }"
  printf '%-26s %9s %8s %8s %7s %9s\n' "search, $c clients" "$rps" "$p50_ms" "$p99_ms" "$errors" "$(rss)"
done
# Mixed: embed and search at 60 clients each, at once.
wrk -t1 -c60 -d"${seconds}s" --latency -s scripts/bench/embed_load.lua "$url" >"$work/embed.out" &
embed_pid=$!
search_line=$(wrk -t1 -c60 -d"${seconds}s" --latency -s scripts/bench/matrix_load.lua "$url" | grep '^RESULT')
wait "$embed_pid"
eval "${search_line#RESULT }"
printf '%-26s %9s %8s %8s %7s %9s\n' "mixed: search, 60" "$rps" "$p50_ms" "$p99_ms" "$errors" "$(rss)"
line=$(grep '^RESULT' "$work/embed.out")
eval "${line#RESULT }"
printf '%-26s %9s %8s %8s %7s %9s\n' "mixed: embed, 60" "$rps" "$p50_ms" "$p99_ms" "$errors" "$(rss)"
echo "peak RSS: $(peak)"
sleep 2
curl -sS "$url/metrics" | grep -E '^lakehouse_matrix_recordings_(written|dropped)_total' || true
