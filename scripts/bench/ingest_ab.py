#!/usr/bin/env python3
"""Ingest with two or more builds of the server, alternating, to compare them on a shared machine.

Usage: ingest_ab.py CSV ROUNDS NAME=BINARY [NAME=BINARY ...]

Each round runs every build once, in the order given: a fresh server on a fresh data directory, ready (it
has answered /health), takes one `POST /v1/ingest` of CSV, timed from the first byte sent to the answer.
The server's log line for the ingest gives the second part of it, `write_ms`: decoding, writing and
committing, after the body arrived and its inference ended. Prints the medians and every time.
"""

import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from datasets_bench import Server


def one(binary: str, csv: Path) -> tuple[float, int]:
    os.environ["LAKEHOUSE_LOG__LEVEL"] = "info"
    data = Path(os.environ.get("TMPDIR", "/tmp")) / f"ingest-ab-{os.getpid()}"
    server = Server(binary, data)
    try:
        started = time.perf_counter()
        server.ingest("t", csv)
        wall = time.perf_counter() - started
    finally:
        server.stop()
    log = re.sub(r"\x1b\[[0-9;]*m", "", (server.dir / "server.log").read_text(errors="replace"))
    found = re.search(r"write_ms=(\d+)", log)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(server.dir, ignore_errors=True)
    return wall, int(found.group(1)) if found else -1


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    csv, rounds = Path(sys.argv[1]), int(sys.argv[2])
    builds = [arg.split("=", 1) for arg in sys.argv[3:]]
    times: dict[str, list[tuple[float, int]]] = {name: [] for name, _ in builds}
    for _ in range(rounds):
        for name, binary in builds:
            times[name].append(one(binary, csv))
    for name, runs in times.items():
        walls = sorted(wall for wall, _ in runs)
        writes = [write for _, write in runs]
        print(f"{name:12s} median {statistics.median(walls):.3f} s, write_ms {statistics.median(writes):.0f}"
              f"   ({' '.join(f'{w:.2f}' for w in walls)})")


if __name__ == "__main__":
    main()
