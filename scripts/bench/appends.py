#!/usr/bin/env python3
"""Many one-row appends to one table, as a day of search recordings or a trickle feed makes them: the append
latency, the table's data files, and the time of a SQL count and of the manifest, at points along the way.

    scripts/bench/appends.py [path/to/lakehouse] [appends]

Starts its own server on a temporary directory (default config: compaction past 32 small files) and stops
it at the end. Prints one line per checkpoint: appends so far, median and p99 of the last 100 appends (ms),
data files, `SELECT count(*)` (ms) and the manifest (ms). At the end, the bytes of the table on storage
before and after a vacuum by hand. Versions are kept `KEEP_DAYS` (environment; default 0, so that the
vacuum has something to remove) with a grace of `GRACE_SECS` (default 5); background vacuums are off.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")), "release", "lakehouse")
APPENDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3000


def call(url, method="GET", body=None, content_type=None):
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = response.read()
    return (time.perf_counter() - started) * 1000, answer


def main():
    work = tempfile.mkdtemp()
    addr_file = os.path.join(work, "addr")
    env = dict(os.environ, LAKEHOUSE_LOG__LEVEL="warn",
               LAKEHOUSE_DATASETS__KEEP_VERSIONS=os.environ.get("KEEP_DAYS", "0"),
               LAKEHOUSE_DATASETS__VACUUM_GRACE_SECS=os.environ.get("GRACE_SECS", "5"),
               LAKEHOUSE_DATASETS__VACUUM_EVERY_SECS="0")
    server = subprocess.Popen([BIN, "serve", "--data", os.path.join(work, "data"), "--listen", "127.0.0.1:0",
                               "--addr-file", addr_file], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(work, "server.log"), "w"))
    try:
        for _ in range(600):
            if os.path.exists(addr_file) and os.path.getsize(addr_file) > 0:
                break
            time.sleep(0.1)
        url = "http://" + open(addr_file).read().strip()
        call(f"{url}/v1/ingest/trickle?mode=create", "POST", b"id,note\n0,start\n", "text/csv")
        latencies = []
        print("appends  p50_ms  p99_ms  files  count_ms  manifest_ms")
        marks = {100, 1000, 10000, 100000, APPENDS}
        for i in range(1, APPENDS + 1):
            ms, _ = call(f"{url}/v1/ingest/trickle?mode=append", "POST", f"id,note\n{i},row {i}\n".encode(),
                         "text/csv")
            latencies.append(ms)
            if i in marks or i % 1000 == 0:
                last = sorted(latencies[-100:])
                count_ms, counted = call(f"{url}/v1/sql", "POST",
                                         json.dumps({"sql": "SELECT count(*) FROM trickle"}).encode(),
                                         "application/json")
                manifest_ms, manifest = call(f"{url}/v1/catalog/datasets/trickle")
                rows = json.loads(counted)["rows"][0][0]
                assert rows == i + 1, (rows, i + 1)
                files = len(json.loads(manifest)["files"])
                print(f"{i:7d}  {last[len(last) // 2]:6.1f}  {last[int(len(last) * 0.99) - 1]:6.1f}  {files:5d}"
                      f"  {count_ms:8.1f}  {manifest_ms:11.1f}", flush=True)
        _, metrics = call(f"{url}/metrics")
        for line in metrics.decode().splitlines():
            if line.startswith("lakehouse_catalog_compaction") or line.startswith("lakehouse_catalog_compactions"):
                print(line)
        table = pathlib.Path(work, "data", "datasets", "trickle")

        def stored():
            files = [p for p in table.rglob("*") if p.is_file()]
            return len(files), sum(p.stat().st_size for p in files)

        time.sleep(float(os.environ.get("GRACE_SECS", "5")) + 1)
        before = stored()
        ms, answer = call(f"{url}/v1/catalog/datasets/trickle/vacuum", "POST")
        done = json.loads(answer)
        after = stored()
        print(f"vacuum: {done['files']} data files ({done['bytes']} bytes) and {done['log_files']} log entries "
              f"removed in {ms:.0f} ms; table on storage {before[0]} files / {before[1]} bytes -> "
              f"{after[0]} files / {after[1]} bytes")
        count_ms, counted = call(f"{url}/v1/sql", "POST",
                                 json.dumps({"sql": "SELECT count(*) FROM trickle"}).encode(), "application/json")
        assert json.loads(counted)["rows"][0][0] == APPENDS + 1
        print(f"count after the vacuum: {count_ms:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
