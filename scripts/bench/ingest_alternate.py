#!/usr/bin/env python3
"""Ingest against pyarrow, alternating, to take the drift of a shared machine out of the comparison.

Usage: ingest_alternate.py LAKEHOUSE_BINARY CSV [RUNS] [--one-server]

Each round times pyarrow's `read_csv` + `write_table` on CSV inside this process (imports done once, before),
then one `POST /v1/ingest` of the same file (the upload of datasets_bench.py), timed from the first byte sent
to the answer. Prints every time and the medians.

pyarrow runs every round in this one process, so from the second round on its memory pool is warm. By default
each ingest goes to a fresh server on a fresh data directory (ready: it has answered /health), so every
ingest is a server's first. With --one-server, one server takes every round, each into a new dataset, as a
running server would: warm like pyarrow from the second round on.
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
    args = [a for a in sys.argv[1:] if a != "--one-server"]
    one_server = len(args) != len(sys.argv) - 1
    binary, src = args[0], Path(args[1])
    runs = int(args[2]) if len(args) > 2 else 7
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="ingest-alternate-") as work:
        shared = Server(binary, Path(work) / "data") if one_server else None
        try:
            for i in range(runs):
                started = time.perf_counter()
                table = pacsv.read_csv(src, parse_options=pacsv.ParseOptions(newlines_in_values=True))
                pq.write_table(table, Path(work) / "pyarrow.parquet")
                theirs.append(time.perf_counter() - started)
                del table
                server = shared or Server(binary, Path(work) / f"data-{i}")
                try:
                    started = time.perf_counter()
                    server.ingest(f"t{i}", src)
                    ours.append(time.perf_counter() - started)
                finally:
                    if shared is None:
                        server.stop()
        finally:
            if shared is not None:
                shared.stop()
    server_kind = "one server" if one_server else "fresh servers"
    for name, times in (("pyarrow read_csv + write_table", theirs), (f"lakehouse POST /v1/ingest ({server_kind})", ours)):
        print(f"{name:48} {' '.join(f'{t:.2f}' for t in times)}  median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
