#!/usr/bin/env python3
"""Datasets benchmark: ingest and SQL against pyarrow and DuckDB, on the same files, in the same run.

Usage: datasets_bench.py LAKEHOUSE_BINARY WORK_DIR [--rows N] [--runs K]

1. Writes a seeded staffing export to WORK_DIR/csv: timesheets (N rows, default 1,000,000), workers,
   job_orders, clients. Kept between runs.
2. Ingest: `POST /v1/ingest/timesheets?mode=create` of the timesheets CSV into a fresh server and data
   directory, K times (default 3), once the server answers /health (it has loaded what it loads at start):
   wall time from the first byte sent to the answer, and the server's peak RSS (VmHWM). Beside it, on the
   same file: pyarrow's `csv.read_csv` + `parquet.write_table` (whole file in memory) and `csv.open_csv` +
   `ParquetWriter` (streaming), each in its own process for its peak RSS.
3. SQL: the other tables are ingested into the last server; eight staffing queries run K+1 times each (the
   first is discarded) through `POST /v1/sql`, and through DuckDB over the Parquet files of the same Delta
   tables. Medians, their ratio, and a check that both engines return the same number of rows.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

SEED = 20261124

QUERIES = {
    "hours_by_month": """
        SELECT date_trunc('month', week_ending) AS month, count(*) AS sheets,
               sum(hours) AS hours, sum(hours * bill_rate) AS billed
        FROM timesheets GROUP BY 1 ORDER BY 1""",
    "top_clients_by_revenue": """
        SELECT c.name, c.industry, sum(t.hours * t.bill_rate) AS revenue
        FROM timesheets t JOIN job_orders j ON t.job_order_id = j.job_order_id
                          JOIN clients c ON j.client_id = c.client_id
        WHERE t.status = 'approved'
        GROUP BY c.name, c.industry ORDER BY revenue DESC LIMIT 20""",
    "top_workers_per_state": """
        SELECT state, worker_id, hours, rnk FROM (
          SELECT w.state, w.worker_id, sum(t.hours) AS hours,
                 rank() OVER (PARTITION BY w.state ORDER BY sum(t.hours) DESC) AS rnk
          FROM timesheets t JOIN workers w ON t.worker_id = w.worker_id
          GROUP BY w.state, w.worker_id) ranked
        WHERE rnk <= 3 ORDER BY state, rnk, worker_id""",
    "notes_text_filter": """
        SELECT status, count(*) AS sheets, sum(hours) AS hours
        FROM timesheets WHERE lower(notes) LIKE '%overtime%' AND notes NOT LIKE '%holiday%'
        GROUP BY status ORDER BY status""",
    "margin_by_skill": """
        SELECT j.skill, count(*) AS sheets, avg(t.bill_rate - t.pay_rate) AS margin,
               sum(t.hours * (t.bill_rate - t.pay_rate)) AS gross_profit
        FROM timesheets t JOIN job_orders j ON t.job_order_id = j.job_order_id
        GROUP BY j.skill ORDER BY gross_profit DESC""",
    "active_workers_by_month": """
        SELECT date_trunc('month', week_ending) AS month, status,
               count(DISTINCT worker_id) AS workers
        FROM timesheets GROUP BY 1, 2 ORDER BY 1, 2""",
    "pending_by_client": """
        SELECT j.client_id, count(*) AS pending, sum(t.hours) AS hours
        FROM timesheets t JOIN job_orders j ON t.job_order_id = j.job_order_id
        WHERE t.status = 'pending' AND t.submitted_at >= TIMESTAMP '2026-06-01 00:00:00'
        GROUP BY j.client_id HAVING count(*) > 20 ORDER BY pending DESC, j.client_id LIMIT 50""",
    "week_over_week": """
        SELECT worker_id, week_ending, hours, hours - prev AS change FROM (
          SELECT worker_id, week_ending, hours,
                 lag(hours) OVER (PARTITION BY worker_id ORDER BY week_ending, timesheet_id) AS prev
          FROM timesheets) w
        WHERE prev IS NOT NULL AND hours - prev > 30
        ORDER BY change DESC, worker_id, week_ending LIMIT 100""",
}

STATES = ["CA", "TX", "FL", "NY", "IL", "PA", "OH", "GA", "NC", "MI", "NJ", "VA", "WA", "AZ", "MA",
          "TN", "IN", "MO", "MD", "WI", "CO", "MN", "SC", "AL", "LA", "KY", "OR", "OK", "CT", "UT"]
SKILLS = ["forklift operator", "welder", "cna", "rn", "lpn", "warehouse associate", "picker packer",
          "machine operator", "cdl driver", "electrician", "customer service", "data entry",
          "medical assistant", "line cook", "housekeeper", "security officer", "assembler",
          "quality inspector", "maintenance technician", "receptionist"]
FIRST = ["Maria", "James", "Ana", "John", "Luis", "Mary", "Jose", "Linda", "Wei", "Fatima", "Ahmed",
         "Olga", "Chen", "Priya", "Kofi", "Sofia", "Diego", "Emily", "Noah", "Aisha"]
LAST = ["Garcia", "Smith", "Nguyen", "Johnson", "Lopez", "Brown", "Kim", "Patel", "O'Brien", "Silva",
        "Okafor", "Rossi", "Kowalski", "Haddad", "Ivanova", "Tanaka", "Murphy", "Diaz", "Chen", "Ali"]
NOTES = ["", "", "", "approved by site lead", "overtime approved, 2 shifts", "late clock-in; adjusted",
         "holiday overtime", "no lunch break, \"paid\"", "covered night shift\nper manager", "weekend overtime",
         "mileage, tolls, parking", "training hours included", "client requested extension"]
INDUSTRIES = ["healthcare", "logistics", "manufacturing", "hospitality", "retail", "construction"]


def generate(csv_dir: Path, rows: int) -> None:
    marker = csv_dir / f".complete-{rows}"
    if marker.exists():
        return
    csv_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    n_workers, n_clients, n_jobs = 50_000, 1_000, 20_000

    def pick(values, n):
        return pa.array(np.array(values, dtype=object)[rng.integers(0, len(values), n)].tolist())

    def dates(start, days, n):
        return pa.array(np.datetime64(start) + rng.integers(0, days, n).astype("timedelta64[D]"))

    workers = pa.table({
        "worker_id": pa.array(np.arange(1, n_workers + 1)),
        "first_name": pick(FIRST, n_workers),
        "last_name": pick(LAST, n_workers),
        "state": pick(STATES, n_workers),
        "primary_skill": pick(SKILLS, n_workers),
        "years_experience": pa.array(rng.integers(0, 30, n_workers)),
        "hourly_rate": pa.array(np.round(rng.uniform(14, 60, n_workers), 2)),
        "hired_on": dates("2015-01-01", 4000, n_workers),
    })
    clients = pa.table({
        "client_id": pa.array(np.arange(1, n_clients + 1)),
        "name": pa.array([f"Client {i}, Inc." for i in range(1, n_clients + 1)]),
        "industry": pick(INDUSTRIES, n_clients),
        "state": pick(STATES, n_clients),
    })
    jobs = pa.table({
        "job_order_id": pa.array(np.arange(1, n_jobs + 1)),
        "client_id": pa.array(rng.integers(1, n_clients + 1, n_jobs)),
        "skill": pick(SKILLS, n_jobs),
        "opened_on": dates("2025-01-01", 600, n_jobs),
        "bill_rate": pa.array(np.round(rng.uniform(20, 95, n_jobs), 2)),
    })
    job_of = rng.integers(1, n_jobs + 1, rows)
    bill = np.asarray(jobs["bill_rate"])[job_of - 1]
    week = np.datetime64("2025-06-06") + 7 * rng.integers(0, 78, rows).astype("timedelta64[D]")
    submitted = (week.astype("datetime64[s]") + rng.integers(3600, 5 * 86400, rows).astype("timedelta64[s]"))
    notes = pick(NOTES, rows)
    timesheets = pa.table({
        "timesheet_id": pa.array(np.arange(1, rows + 1)),
        "worker_id": pa.array(rng.integers(1, n_workers + 1, rows)),
        "job_order_id": pa.array(job_of),
        "week_ending": pa.array(week),
        "hours": pa.array(np.round(rng.gamma(9, 4.5, rows), 2)),
        "pay_rate": pa.array(np.round(bill * rng.uniform(0.6, 0.8, rows), 2)),
        "bill_rate": pa.array(bill),
        "status": pick(["approved"] * 8 + ["pending", "rejected"], rows),
        "submitted_at": pa.array(submitted),
        "notes": notes,
    })
    options = pacsv.WriteOptions(include_header=True)
    for name, table in [("workers", workers), ("clients", clients), ("job_orders", jobs),
                        ("timesheets", timesheets)]:
        pacsv.write_csv(table, csv_dir / f"{name}.csv", write_options=options)
    marker.touch()


# The notes column holds quoted line breaks, which pyarrow reads only with `newlines_in_values`.
PYARROW_SNIPPETS = {
    "pyarrow read_csv + write_table": """
p.write_table(c.read_csv(SRC, parse_options=c.ParseOptions(newlines_in_values=True)), DST)""",
    "pyarrow open_csv + ParquetWriter (streaming)": """
r = c.open_csv(SRC, parse_options=c.ParseOptions(newlines_in_values=True))
with p.ParquetWriter(DST, r.schema) as w:
    for b in r:
        w.write_batch(b)""",
}


def run_pyarrow(snippet: str, src: Path, dst: Path):
    """Runs one conversion in a fresh interpreter, timing the conversion only (not the imports); returns
    (seconds, peak RSS bytes)."""
    code = (f"SRC, DST = {str(src)!r}, {str(dst)!r}\nimport time, resource\n"
            "import pyarrow.csv as c, pyarrow.parquet as p\nt = time.perf_counter()\n"
            f"{snippet}\nprint(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    seconds, kib = out.split()
    return float(seconds), int(kib) * 1024


class Server:
    def __init__(self, binary: str, data: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="lakehouse-bench-"))
        addr_file = self.dir / "addr"
        self.log = open(self.dir / "server.log", "wb")
        env = dict(os.environ, LAKEHOUSE_LOG__LEVEL=os.environ.get("LAKEHOUSE_LOG__LEVEL", "warn"))
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", str(data), "--listen", "127.0.0.1:0", "--addr-file", str(addr_file)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while not (addr_file.exists() and addr_file.read_text().strip()):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"server did not start; log in {self.dir / 'server.log'}")
            time.sleep(0.05)
        host, port = addr_file.read_text().strip().rsplit(":", 1)
        self.host, self.port = host, int(port)
        # Ready, not just listening: the server loads its embedding model in the background as it starts, and
        # /health answers once that is done. Timing an ingest before would time the model load beside it.
        self.request("GET", "/health")

    def request(self, method, path, body=None, headers=None, length=None):
        # Sent in 1 MiB blocks, as the CLI sends (http.client's default is 8 KiB: 12,000 sends for 98 MB, whose
        # CPU this 2-core machine takes from the server).
        conn = http.client.HTTPConnection(self.host, self.port, timeout=3600, blocksize=1 << 20)
        hdrs = dict(headers or {})
        if length is not None:
            hdrs["Content-Length"] = str(length)
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if resp.status >= 300:
            raise SystemExit(f"{method} {path} -> {resp.status}: {data[:500]!r}")
        return data

    def ingest(self, name: str, csv: Path) -> dict:
        with open(csv, "rb") as f:
            body = self.request("POST", f"/v1/ingest/{name}?mode=create", body=f,
                                headers={"Content-Type": "text/csv"}, length=csv.stat().st_size)
        return json.loads(body)

    def sql(self, query: str) -> dict:
        return json.loads(self.request("POST", "/v1/sql", body=json.dumps({"sql": query, "max_rows": 100000}),
                                       headers={"Content-Type": "application/json"}))

    def peak_rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("work", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    csv_dir = args.work / "csv"
    t = time.perf_counter()
    generate(csv_dir, args.rows)
    src = csv_dir / "timesheets.csv"
    size = src.stat().st_size
    print(f"data: {args.rows:,} timesheet rows, {mb(size)} CSV (ready in {time.perf_counter() - t:.1f} s)")

    print(f"\n## Ingest of timesheets.csv ({args.runs} runs each, median)\n")
    print("| | seconds | rows/s | MB/s | peak RSS |\n|---|---|---|---|---|")
    results = {}
    for label, snippet in PYARROW_SNIPPETS.items():
        runs = [run_pyarrow(snippet, src, args.work / "pyarrow.parquet") for _ in range(args.runs)]
        results[label] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
    server = None
    ours = []
    for i in range(args.runs):
        if server:
            server.stop()
        data = args.work / f"data-{i}"
        subprocess.run(["rm", "-rf", str(data)], check=True)
        server = Server(args.binary, data)
        t = time.perf_counter()
        answer = server.ingest("timesheets", src)
        ours.append((time.perf_counter() - t, server.peak_rss()))
        if answer.get("rows") != args.rows:
            raise SystemExit(f"ingest answered {answer}")
    results["lakehouse POST /v1/ingest"] = (statistics.median(r[0] for r in ours), max(r[1] for r in ours))
    for label, (seconds, rss) in results.items():
        print(f"| {label} | {seconds:.2f} | {args.rows / seconds:,.0f} | {size / seconds / 1e6:.0f} | {mb(rss)} |")

    for name in ["workers", "clients", "job_orders"]:
        server.ingest(name, csv_dir / f"{name}.csv")
    import duckdb

    con = duckdb.connect()
    root = data / "datasets"
    for name in ["timesheets", "workers", "clients", "job_orders"]:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root / name}/*.parquet')")
    print(f"\n## SQL over {args.rows:,} rows ({args.runs} timed runs after one warm-up, median ms)\n")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"DuckDB {duckdb.__version__}, {threads} threads\n")
    print("| query | lakehouse | DuckDB | ratio | rows |\n|---|---|---|---|---|")
    ratios = []
    for qname, query in QUERIES.items():
        ours, theirs = [], []
        rows_ours = rows_theirs = None
        for i in range(args.runs + 1):
            t = time.perf_counter()
            answer = server.sql(query)
            elapsed = time.perf_counter() - t
            rows_ours = len(answer["rows"])
            t2 = time.perf_counter()
            rows_theirs = len(con.execute(query).fetchall())
            elapsed2 = time.perf_counter() - t2
            if i:
                ours.append(elapsed)
                theirs.append(elapsed2)
        if rows_ours != rows_theirs:
            raise SystemExit(f"{qname}: lakehouse returned {rows_ours} rows, DuckDB {rows_theirs}")
        a, b = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
        ratios.append(a / b)
        print(f"| {qname} | {a:.0f} | {b:.0f} | {a / b:.2f}× | {rows_ours} |")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"\ngeometric mean of the ratios: {geo:.2f}×; worst: {max(ratios):.2f}×")
    server.stop()


if __name__ == "__main__":
    main()
