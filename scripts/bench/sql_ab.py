#!/usr/bin/env python3
"""The eight staffing queries with two or more builds of the server, or data directories, alternating.

Usage: sql_ab.py ROUNDS NAME=BINARY@DATA_DIR [NAME=BINARY@DATA_DIR ...]

DATA_DIR is a server data directory holding the four staffing tables (`timesheets`, `workers`, `job_orders`,
`clients`), e.g. one `datasets_bench.py` left behind, or one filled by a given build to compare the files
that build writes. Each round starts every variant in turn (in reverse order every other round) on its data
directory, runs each query once to warm up and five times more, and keeps the median. Prints, per query
and variant, the median of the rounds' medians, in ms.
"""

import statistics
import sys
import time

from datasets_bench import QUERIES, Server


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    rounds = int(sys.argv[1])
    variants = []
    for arg in sys.argv[2:]:
        name, _, rest = arg.partition("=")
        binary, _, data = rest.partition("@")
        if not (name and binary and data):
            raise SystemExit(f"{arg!r}: expected NAME=BINARY@DATA_DIR")
        variants.append((name, binary, data))
    times = {name: {q: [] for q in QUERIES} for name, _, _ in variants}
    for r in range(rounds):
        for name, binary, data in variants if r % 2 == 0 else variants[::-1]:
            server = Server(binary, data)
            try:
                for query, sql in QUERIES.items():
                    runs = []
                    for i in range(6):
                        started = time.perf_counter()
                        server.sql(sql)
                        if i:
                            runs.append(time.perf_counter() - started)
                    times[name][query].append(statistics.median(runs) * 1000)
            finally:
                server.stop()
        print(f"round {r + 1} of {rounds}", file=sys.stderr)
    names = [name for name, _, _ in variants]
    print("| query | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for query in QUERIES:
        cells = " | ".join(f"{statistics.median(times[n][query]):.1f}" for n in names)
        print(f"| {query} | {cells} |")


if __name__ == "__main__":
    main()
