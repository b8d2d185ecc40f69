#!/usr/bin/env bash
# Soak: a release server with the demo's data (workers, job orders, the workers corpus) under a mixed valid
# load and malformed requests against every route (scripts/bench/soak.lua) for a set time, sampling its RSS
# every 10 s. Prints requests, answers by status, the 5xx that were not 503 with Retry-After (must be 0),
# socket errors, and RSS at start, peak and end; then checks the server still answers.
#
#   scripts/bench/soak.sh [path/to/lakehouse] [seconds] [connections]
#
# With SLICE_SECS set (60, say), the load runs as back-to-back runs of that length and one line per slice
# gives its requests/s, p99, socket errors (time-outs among them) and the server's RSS at its end: how the
# rate and memory move over a long run (tables over time: the last minute against the first).
#
# Build the binary first: cargo build --release -p lakehouse. wrk (Debian package `wrk`) runs on the same
# machine as the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
seconds="${2:-600}"
connections="${3:-32}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
scripts/fetch-model.sh
work="$(mktemp -d)"
trap 'kill "$pid" "$sampler" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
sampler=0
LAKEHOUSE_LOG__LEVEL=warn "$bin" serve --data "$work/data" --listen 127.0.0.1:0 --addr-file "$work/addr" \
  >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s "$work/addr" ] && break; sleep 0.1; done
url="http://$(cat "$work/addr")"
rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }

"$bin" generate --workers 2000 --out "$work/csv" --seed 7 >/dev/null
for table in workers job_orders; do
  "$bin" ingest "$work/csv/$table.csv" --dataset "$table" --mode create --url "$url" >/dev/null
done
printf 'id,note\n0,start\n' | curl -sS --fail-with-body -H 'Content-Type: text/csv' --data-binary @- \
  "$url/v1/ingest/soak?mode=create" >/dev/null
curl -sS --fail-with-body -H 'Content-Type: application/json' -d @crates/lakehouse/src/demo/workers_corpus.json \
  "$url/v1/matrix/corpora" >/dev/null
for _ in $(seq 1200); do
  curl -sS "$url/v1/matrix/corpora/workers" | grep -q '"status":"ready"' && break
  sleep 0.5
done
curl -sS "$url/v1/matrix/corpora/workers" | grep -q '"status":"ready"' ||
  { echo "the workers corpus was not ready after 10 minutes:" >&2; tail -3 "$work/server.log" >&2; exit 1; }

start_rss=$(rss)
echo "RSS at start (data loaded, corpus built): $start_rss MB"
( while sleep 10; do rss >>"$work/rss" 2>/dev/null && echo >>"$work/rss" || exit 0; done ) &
sampler=$!
if [ -n "${SLICE_SECS:-}" ]; then
  for slice in $(seq 1 $((seconds / SLICE_SECS))); do
    line=$(wrk -t2 -c"$connections" -d"${SLICE_SECS}s" --timeout 30s -s scripts/bench/soak.lua "$url" | grep '^SOAK')
    echo "slice $slice (to $((slice * SLICE_SECS)) s): ${line#SOAK } rss_mb=$(rss)"
  done
else
  wrk -t2 -c"$connections" -d"${seconds}s" --timeout 30s -s scripts/bench/soak.lua "$url" | grep '^SOAK'
fi
kill "$sampler" 2>/dev/null || true
end_rss=$(rss)
peak_sampled=$(sort -n "$work/rss" | tail -1)
echo "RSS: start $start_rss MB, peak $(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status") MB (sampled every 10 s: $peak_sampled MB), end $end_rss MB"
curl -sS --fail-with-body "$url/health" >/dev/null && echo "healthy after the soak"
curl -sS --fail-with-body -H 'Content-Type: application/json' \
  -d '{"sql": "SELECT count(*) AS appended FROM soak"}' "$url/v1/sql"
echo
grep -c -E ' (ERROR|WARN) ' "$work/server.log" | sed 's/^/server log lines at WARN or above: /' || true
