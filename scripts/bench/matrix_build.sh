#!/usr/bin/env bash
# How fast a corpus is built, and how soon an append becomes searchable: a 50,000-worker corpus built from
# scratch (rows/s, and where the time goes: reading, embedding, indexing, the keyword index), then 1,000
# workers appended to its dataset and the time until searches answer from the new version.
#
#   scripts/bench/matrix_build.sh [path/to/lakehouse] [workers]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
workers="${2:-50000}"
added=1000
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
LAKEHOUSE_LOG__LEVEL=warn "$bin" serve --data "$work/data" --listen 127.0.0.1:0 --addr-file "$work/addr" \
  >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s "$work/addr" ] && break; sleep 0.1; done
url="http://$(cat "$work/addr")"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
corpus() { curl -sS "$url/v1/matrix/corpora/workers"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

# The same seed: the first $workers rows of the bigger file are the corpus, the rest the append.
"$bin" generate --workers $((workers + added)) --out "$work/csv" --seed 42 >/dev/null
head -n $((workers + 1)) "$work/csv/workers.csv" >"$work/base.csv"
{ head -n 1 "$work/csv/workers.csv"; tail -n "$added" "$work/csv/workers.csv"; } >"$work/more.csv"
"$bin" ingest "$work/base.csv" --dataset workers --mode create --url "$url" >/dev/null
"$bin" ingest "$work/csv/job_orders.csv" --dataset job_orders --mode create --url "$url" >/dev/null
# The model loads in the background at start; wait for it so the build measures building.
curl -sS -H 'Content-Type: application/json' -d '{"text": "warm-up"}' "$url/v1/embed" >/dev/null

start=$(date +%s%N)
curl -sS --fail-with-body -H 'Content-Type: application/json' -d @crates/lakehouse/src/demo/workers_corpus.json \
  "$url/v1/matrix/corpora" >/dev/null
until [ "$(corpus | field '["status"]')" = ready ]; do sleep 0.2; done
took=$(ms "$start")
echo "build of $workers rows: $took ms, $(( workers * 1000 / took )) rows/s; RSS $(awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' /proc/$pid/status)"
echo "  where the time went: $(corpus | field '["last_sync"]')"

start=$(date +%s%N)
"$bin" ingest "$work/more.csv" --dataset workers --mode append --url "$url" >/dev/null
ingested=$(ms "$start")
body='{"query": "forklift operator", "k": 1}'
until curl -sS -H 'Content-Type: application/json' -d "$body" "$url/v1/matrix/search" \
      | grep -q '"dataset_version":1'; do sleep 0.05; done
echo "append of $added rows: ingested in $ingested ms, searchable after $(ms "$start") ms (from the start of the upload)"
# Searches answer from the new version as soon as its snapshot is in place; the corpus's own record (and
# its last_sync) is written after the checkpoint that follows.
until [ "$(corpus | field '["version"]')" = 1 ]; do sleep 0.05; done
echo "  where the time went: $(corpus | field '["last_sync"]')"
