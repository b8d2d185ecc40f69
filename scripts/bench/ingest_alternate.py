#!/usr/bin/env python3
"""Ingest against pyarrow, alternating, to take the drift of a shared machine out of the comparison.

Usage: ingest_alternate.py LAKEHOUSE_BINARY CSV [RUNS]

Each round times pyarrow's `read_csv` + `write_table` on CSV inside this process (imports done once, before),
then one `POST /v1/ingest` of the same file to a fresh server on a fresh data directory, ready (the upload
of datasets_bench.py), timed from the first byte sent to the answer. Prints every time and the medians.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datasets_bench import Server


def main() -> None:
    binary, src = sys.argv[1], Path(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="ingest-alternate-") as work:
        for i in range(runs):
            started = time.perf_counter()
            table = pacsv.read_csv(src, parse_options=pacsv.ParseOptions(newlines_in_values=True))
            pq.write_table(table, Path(work) / "pyarrow.parquet")
            theirs.append(time.perf_counter() - started)
            del table
            server = Server(binary, Path(work) / f"data-{i}")
            try:
                started = time.perf_counter()
                server.ingest("t", src)
                ours.append(time.perf_counter() - started)
            finally:
                server.stop()
    for name, times in (("pyarrow read_csv + write_table", theirs), ("lakehouse POST /v1/ingest", ours)):
        print(f"{name:32} {' '.join(f'{t:.2f}' for t in times)}  median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
