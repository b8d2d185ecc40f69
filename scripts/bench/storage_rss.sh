#!/usr/bin/env bash
# Peak RSS of `lakehouse serve` while a 1 GiB object is uploaded (streamed, chunked) and downloaded.
# Usage: scripts/bench/storage_rss.sh [path/to/lakehouse]   (default: a release build in the cache target dir)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/lakehouse-target-release}/release/lakehouse}"
size_mib="${SIZE_MIB:-1024}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

LAKEHOUSE_STORAGE__MAX_OBJECT_BYTES=$((4 * 1024 * 1024 * 1024)) RUST_LOG=warn \
  "$bin" serve --data "$work/data" --listen 127.0.0.1:0 --addr-file "$work/addr" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
url="http://$(cat "$work/addr")"
curl -fsS "$url/health" >/dev/null
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
echo "idle:            RSS $(( $(rss) / 1024 )) MiB"

start=$(date +%s.%N)
head -c "$((size_mib * 1024 * 1024))" /dev/zero | curl -fsS -T - "$url/v1/storage/objects/bench/big.bin" >/dev/null
mid=$(date +%s.%N)
echo "after upload:    RSS $(( $(rss) / 1024 )) MiB, peak $(( $(hwm) / 1024 )) MiB, $(awk -v n="$size_mib" -v a="$start" -v b="$mid" 'BEGIN {printf "%.0f", n / (b - a)}') MiB/s"
curl -fsS "$url/v1/storage/objects/bench/big.bin" -o /dev/null
end=$(date +%s.%N)
echo "after download:  RSS $(( $(rss) / 1024 )) MiB, peak $(( $(hwm) / 1024 )) MiB, $(awk -v n="$size_mib" -v a="$mid" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}') MiB/s"
