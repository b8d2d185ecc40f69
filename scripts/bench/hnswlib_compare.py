#!/usr/bin/env python3
"""hnswlib on the vectors the Rust HNSW benchmark wrote, for a like-for-like comparison.

Usage:
    cargo run --release -p lakehouse-vector --example hnsw_bench -- 100000 target/vector-bench
    pip install numpy hnswlib
    python3 scripts/bench/hnswlib_compare.py target/vector-bench

Same data (base.npy, queries.npy), same exact top-10 (truth.npy), same graph parameters (M = 16,
ef_construction = 128, cosine), build on 2 threads, queries timed on 1 thread, one query per call as a
service sees them; like the Rust benchmark, each ef setting is timed over PASSES passes and the fastest
is reported (the machine is shared).
"""

import sys
import time

import hnswlib
import numpy as np

K = 10
PASSES = 3


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "target/vector-bench"
    base = np.load(f"{out}/base.npy")
    queries = np.load(f"{out}/queries.npy")
    truth = np.load(f"{out}/truth.npy")
    n, dim = base.shape
    print(f"data: {n} x {dim} base vectors, {len(queries)} queries, cosine, k = {K}")

    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=n, M=16, ef_construction=128, random_seed=42)
    index.set_num_threads(2)
    started = time.perf_counter()
    index.add_items(base, np.arange(n))
    build = time.perf_counter() - started
    print(f"build: {build:.2f} s on 2 threads ({n / build:.0f} vectors/s), M = 16, ef_construction = 128")

    index.set_num_threads(1)
    print("ef_search  recall@10  QPS (1 thread)  mean latency")
    for ef in [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]:
        index.set_ef(ef)
        for q in queries[:50]:
            index.knn_query(q, k=K)
        elapsed = float("inf")
        for _ in range(PASSES):
            started = time.perf_counter()
            found = [index.knn_query(q, k=K)[0][0] for q in queries]
            elapsed = min(elapsed, time.perf_counter() - started)
        hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
        recall = hits / (len(queries) * K)
        qps = len(queries) / elapsed
        print(f"{ef:>9}  {recall:>9.4f}  {qps:>14.0f}  {elapsed * 1e6 / len(queries):>9.1f} µs")

    # Batched (the C++ loop, no per-call Python overhead) at the setting closest to recall 0.95.
    index.set_ef(64)
    started = time.perf_counter()
    labels, _ = index.knn_query(queries, k=K, num_threads=1)
    elapsed = time.perf_counter() - started
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(labels, truth))
    print(f"batched, ef 64: recall {hits / (len(queries) * K):.4f}, {len(queries) / elapsed:.0f} QPS on 1 thread")


if __name__ == "__main__":
    main()
