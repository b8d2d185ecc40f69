#!/usr/bin/env python3
"""Ingest against pyarrow, alternating, to take the drift of a shared machine out of the comparison.

Usage: ingest_alternate.py LAKEHOUSE_BINARY CSV [RUNS]

Each round times pyarrow's `read_csv` + `write_table` on CSV inside this process (imports done once, before),
then one `POST /v1/ingest` of the same file with `curl -T` to a fresh server on a fresh data directory,
timed from the first byte sent to the answer. Prints every time and the medians.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def main() -> None:
    binary, src = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="ingest-alternate-") as work:
        for _ in range(runs):
            started = time.perf_counter()
            table = pacsv.read_csv(src, parse_options=pacsv.ParseOptions(newlines_in_values=True))
            pq.write_table(table, os.path.join(work, "pyarrow.parquet"))
            theirs.append(time.perf_counter() - started)
            del table
            with tempfile.TemporaryDirectory(dir=work) as run:
                addr_file = os.path.join(run, "addr")
                server = subprocess.Popen(
                    [binary, "serve", "--data", os.path.join(run, "data"), "--listen", "127.0.0.1:0",
                     "--addr-file", addr_file],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    while not (os.path.exists(addr_file) and os.path.getsize(addr_file) > 0):
                        if server.poll() is not None:
                            raise SystemExit("the server did not start")
                        time.sleep(0.05)
                    with open(addr_file) as f:
                        addr = f.read().strip()
                    started = time.perf_counter()
                    subprocess.run(
                        ["curl", "-sf", "-o", os.devnull, "-T", src, "-X", "POST", "-H", "Content-Type: text/csv",
                         f"http://{addr}/v1/ingest/t?mode=create"], check=True)
                    ours.append(time.perf_counter() - started)
                finally:
                    server.terminate()
                    server.wait()
    for name, times in (("pyarrow read_csv + write_table", theirs), ("lakehouse POST /v1/ingest", ours)):
        print(f"{name:32} {' '.join(f'{t:.2f}' for t in times)}  median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
