"""What sharing the DuckDB file costs a labeling page.

tpod keeps one connection per process while it is busy and releases it after 1 s idle, so the
CLI can take the file. Compares, on the same file in the same run:
  - warm: the kept connection, a cursor per unit of work (what a page pays while a user clicks)
  - cold: open + query + close per unit of work (what a page pays after an idle pause)
  - bulk box insert via DataFrame vs executemany.
Usage: python benchmarks/bench_db.py [--n 200]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    os.environ["TPOD_DATA_DIR"] = tempfile.mkdtemp(prefix="tpod-bench-db-")
    import duckdb
    import pandas as pd

    from app import projects
    from app.store import db

    p = projects.create_project("bench", ["car"])
    query = "SELECT id, x1, y1, x2, y2 FROM boxes WHERE video_id = ? AND frame_idx = ?"

    def unit() -> None:
        with db.connect() as cur:
            cur.execute(query, [1, 5]).fetchall()

    warm = []
    unit()
    for _ in range(args.n):
        t = time.perf_counter()
        unit()
        warm.append((time.perf_counter() - t) * 1000)
    cold = []
    for _ in range(max(10, args.n // 10)):
        db.release()
        t = time.perf_counter()
        unit()
        db.release()
        cold.append((time.perf_counter() - t) * 1000)

    rows = 20000
    df = pd.DataFrame({"video_id": 1, "frame_idx": range(rows), "track_id": range(rows), "class_id": p.classes[0].id,
                       "x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0, "source": "tracked"})
    with db.connect() as cur:
        t = time.perf_counter()
        cur.register("df_boxes", df)
        cur.execute("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source) "
                    "SELECT * FROM df_boxes")
        bulk = time.perf_counter() - t
        cur.execute("DELETE FROM boxes")
        small = df.head(2000)
        t = time.perf_counter()
        cur.executemany("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", small.values.tolist())
        many = (time.perf_counter() - t) * (rows / len(small))
    db.release()
    print(f"duckdb {duckdb.__version__}")
    print(f"point query, kept connection (warm): p50 {statistics.median(warm):.2f} ms  "
          f"p95 {sorted(warm)[int(0.95 * len(warm))]:.2f} ms")
    print(f"point query, open+close per unit (cold): p50 {statistics.median(cold):.2f} ms")
    print(f"ratio cold/warm: {statistics.median(cold) / statistics.median(warm):.1f}x")
    print(f"bulk insert {rows} boxes: DataFrame {rows / bulk:,.0f} rows/s; executemany {rows / many:,.0f} rows/s "
          f"(ratio {many / bulk:.0f}x)")


if __name__ == "__main__":
    main()
