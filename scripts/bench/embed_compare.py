#!/usr/bin/env python3
"""The local model against sentence-transformers (PyTorch, CPU) on the same 1,000 sentences, in one run.

Usage: embed_compare.py THROUGHPUT_BINARY [MODEL_DIR]

THROUGHPUT_BINARY is the release build of `lakehouse-embed`'s `throughput` example. Both engines get the same
sentences in the same chunks (batch sizes 1, 8, 32), one untimed warm-up over the first 64 sentences, and
the same number of threads (2, or LAKEHOUSE_BENCH_THREADS). Needs: pip install sentence-transformers.
"""

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCHES = [1, 8, 32]
ROLES = ["forklift operator", "certified welder", "CNC machinist", "warehouse associate", "registered nurse",
         "CDL-A truck driver", "medical assistant", "line cook", "electrician apprentice", "data entry clerk"]
SKILLS = ["OSHA 10", "MIG and TIG welding", "reach truck and order picker", "blueprint reading",
          "bilingual Spanish", "EPIC charting", "ServSafe", "hazmat endorsement", "10-key", "PLC troubleshooting"]
PLACES = ["Houston, TX", "Dallas", "the Phoenix distribution centre", "Atlanta", "a cold-storage facility",
          "Newark, NJ", "a 24/7 hospital", "Chicago's south side"]
TAILS = ["", "", ", available immediately", ", prefers nights and weekends",
         ", available immediately for first or second shift and willing to travel up to 50 miles",
         ". Previous assignments rated 5/5 by three clients; needs a forklift certificate renewal in March"]


def sentences(n=1000, seed=7):
    rng = random.Random(seed)
    return [f"{rng.choice(ROLES)} with {rng.randint(1, 25)} years of experience, {rng.choice(SKILLS)}, "
            f"based in {rng.choice(PLACES)}{rng.choice(TAILS)}" for _ in range(n)]


def main():
    binary = sys.argv[1]
    model_dir = Path(sys.argv[2] if len(sys.argv) > 2 else
                     os.environ.get("LAKEHOUSE_EMBED_MODEL_DIR",
                                    Path.home() / ".cache/lakehouse/models/all-MiniLM-L6-v2"))
    threads = int(os.environ.get("LAKEHOUSE_BENCH_THREADS", "2"))
    texts = sentences()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts))
        path = f.name

    env = dict(os.environ, LAKEHOUSE_EMBED_MODEL_DIR=str(model_dir))
    out = subprocess.run([binary, path, *map(str, BATCHES)], check=True, capture_output=True, text=True,
                         env=env).stdout
    ours = {int(line.split()[1].rstrip(":")): float(line.split()[2]) for line in out.splitlines()}

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(model_dir), device="cpu")
    theirs = {}
    for batch in BATCHES:
        chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]
        for chunk in chunks[: max(1, 64 // batch)]:
            model.encode(chunk, batch_size=batch)
        started = time.perf_counter()
        for chunk in chunks:
            model.encode(chunk, batch_size=batch)
        theirs[batch] = len(texts) / (time.perf_counter() - started)
    os.unlink(path)

    import sentence_transformers
    print(f"{len(texts)} sentences, {threads} threads; sentence-transformers {sentence_transformers.__version__}, "
          f"torch {torch.__version__}\n")
    print("| batch | lakehouse (sentences/s) | sentence-transformers (sentences/s) | ratio |")
    print("|---|---|---|---|")
    for batch in BATCHES:
        print(f"| {batch} | {ours[batch]:.0f} | {theirs[batch]:.0f} | {ours[batch] / theirs[batch]:.2f}× |")


if __name__ == "__main__":
    main()
