#!/usr/bin/env bash
# Load test of POST /v1/embed: 60 concurrent connections, 200 distinct texts (after the first round, cache
# hits), driven by wrk (Debian package `wrk`) on the same machine as the server.
#
#   scripts/bench/embed_load.sh [path/to/lakehouse] [seconds]
#
# Starts `lakehouse serve` on a temporary data directory, waits for the model, embeds the 200 texts once,
# runs wrk, and prints its summary (requests/s, latency percentiles, errors) and the server's RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release/lakehouse}"
seconds="${2:-30}"
connections="${LAKEHOUSE_BENCH_CONNECTIONS:-60}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
LAKEHOUSE_LOG__LEVEL=warn "$bin" serve --data "$work/data" --listen 127.0.0.1:0 --addr-file "$work/addr" \
  >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s "$work/addr" ] && break; sleep 0.1; done
url="http://$(cat "$work/addr")"
# The first request waits for the model to load.
curl -sS --fail-with-body -H 'Content-Type: application/json' -d '{"text": "warm-up"}' "$url/v1/embed" >/dev/null
wrk -t2 -c"$connections" -d10s -s scripts/bench/embed_load.lua "$url" >/dev/null   # every text cached, JIT warm
echo "RSS before: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s scripts/bench/embed_load.lua "$url"
echo "RSS after: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status); peak: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
curl -sS "$url/metrics" | grep -E '^lakehouse_embed_cache_(hits|misses)_total' || true
