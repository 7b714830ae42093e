"""How fast is `project_stats()` on a big project? Target: <= 100 ms on 1M boxes.

Generates N boxes (default 1,000,000) with DuckDB range() into a fresh data dir, then times
`app.stats.project_stats`:
  - cold: use_cache=False, every figure recomputed from the boxes (the honest number; the
    connection is open and DuckDB's buffers are warm, as in the running app);
  - first fill: the cached path with nothing cached yet (per-video partials counted for all videos);
  - after one edit: one box of one video moved (as update_box does), then the cached path, which
    counts that video again and reuses the other videos' partials (the usual case while labeling);
  - cached: an unchanged project answering from the in-process cache (revision query + copy);
against a baseline: the same figures computed with pandas on the same rows, already loaded in
memory (which flatters pandas). Wall times are min and median of several runs; CPU time (all
threads of this process) is printed too, because on a shared, loaded machine the wall time
mostly measures the neighbours.

    .venv/bin/python benchmarks/bench_stats.py [--boxes 1000000] [--quick]
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


def generate(project_id: int, n_boxes: int, n_videos: int = 20, per_frame: int = 10) -> None:
    from app.store.db import connect

    frames_per_video = max(1, n_boxes // (n_videos * per_frame))
    with connect() as cur:
        classes = [r[0] for r in cur.execute(
            "SELECT id FROM label_classes WHERE project_id = ? ORDER BY id", [project_id]).fetchall()]
        cur.execute(
            "INSERT INTO videos (id, project_id, name, status, width, height, fps, frame_count) "
            "SELECT 1000 + i, ?, 'video ' || i, 'ready', 1280, 720, 30, ? FROM range(?) t(i)",
            [project_id, frames_per_video, n_videos])
        cur.execute(
            "INSERT INTO frames (video_id, idx, source_idx, ts, reviewed) "
            "SELECT 1000 + v, f, f, f / 30.0, f % 7 = 0 FROM range(?) a(v), range(?) b(f)",
            [n_videos, frames_per_video])
        cur.execute(
            f"""
            INSERT INTO boxes (id, video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source,
                               outside, author, created_at, updated_at)
            SELECT i, 1000 + (i // {per_frame}) // ? , (i // {per_frame}) % ?, i % {per_frame} + 100 * (i // ?),
                   list_extract(?::INTEGER[], 1 + (hash(i) % {len(classes)})::INTEGER),
                   x, y, x + w, y + h,
                   ['manual', 'tracked', 'interpolated', 'predicted'][1 + (i % 4)],
                   i % 97 = 0, ['ann', 'bob', 'cy'][1 + (i % 3)],
                   TIMESTAMP '2024-01-01' + to_seconds(i // 50), TIMESTAMP '2024-01-01' + to_seconds(i // 50)
            FROM (SELECT i, (hash(i * 3) % 1200)::DOUBLE AS x, (hash(i * 5) % 650)::DOUBLE AS y,
                         2 + (hash(i * 7) % 200)::DOUBLE AS w, 2 + (hash(i * 11) % 150)::DOUBLE AS h
                  FROM range(?) t(i))
            """,
            [frames_per_video, frames_per_video, frames_per_video * per_frame, classes,
             n_videos * frames_per_video * per_frame])
        cur.execute("CHECKPOINT")


def pandas_baseline(boxes, frames, videos) -> dict:
    import numpy as np

    b = boxes[~boxes["outside"]].merge(videos[["id", "width", "height"]], left_on="video_id", right_on="id")
    w, h = b["x2"] - b["x1"], b["y2"] - b["y1"]
    rw, rh = w / b["width"], h / b["height"]
    out = {
        "class": b.groupby("class_id").size(),
        "source": b.groupby("source").size(),
        "author": b.groupby(["author", "source"]).size(),
        "hours": b.groupby(["author", b["created_at"].dt.floor("h")]).size(),
        "w": np.clip(np.floor(rw * 20), 0, 19).value_counts(),
        "h": np.clip(np.floor(rh * 20), 0, 19).value_counts(),
        "area": pd_cut(rw * rh),
        "aspect": np.clip(np.round(np.log2(w / h) / 0.5), -8, 8).value_counts(),
        "heat": b.groupby([np.clip(np.floor((b["x1"] + b["x2"]) / 2 / b["width"] * 20), 0, 19),
                           np.clip(np.floor((b["y1"] + b["y2"]) / 2 / b["height"] * 20), 0, 19)]).size(),
        "tiny": int((np.minimum(w, h) < 4).sum()),
        "touch": int(((b["x1"] <= 0.5) | (b["y1"] <= 0.5) | (b["x2"] >= b["width"] - 0.5)
                      | (b["y2"] >= b["height"] - 0.5)).sum()),
    }
    per = b.groupby(["video_id", "frame_idx"]).size().rename("n").reset_index()
    ff = frames.merge(per, left_on=["video_id", "idx"], right_on=["video_id", "frame_idx"], how="left")
    ff["n"] = ff["n"].fillna(0)
    ff["labeled"] = ff["n"] > 0
    out["per_video"] = ff.groupby("video_id").agg(frames=("idx", "size"), labeled=("labeled", "sum"),
                                                  reviewed=("reviewed", "sum"))
    out["bpf"] = ff["n"].clip(upper=10).value_counts()
    return out


def pd_cut(rel_area):
    import pandas as pd

    return pd.cut(rel_area, [-1, 0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 10]).value_counts()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="100k boxes, 3 runs")
    args = parser.parse_args()
    if args.quick:
        args.boxes, args.runs = 100_000, 3

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TPOD_DATA_DIR"] = tmp
        from app.projects import create_project
        from app.stats import clear_cache, project_stats
        from app.store.db import connect, release

        project = create_project("bench", ["car", "person", "bike", "truck", "dog"])
        t0 = time.perf_counter()
        generate(project.id, args.boxes)
        print(f"generated {args.boxes:,} boxes in {time.perf_counter() - t0:.1f} s")

        project_stats(project.id, use_cache=False)  # open the connection, warm DuckDB's buffers
        times, cpus = timed(lambda: project_stats(project.id, use_cache=False), args.runs)

        def first_fill() -> None:
            clear_cache()
            project_stats(project.id)

        fills, fill_cpus = timed(first_fill, max(3, args.runs // 2))
        edits, edit_cpus = after_one_edit(project.id, args.boxes, args.runs)
        result = project_stats(project.id)
        assert result == project_stats(project.id, use_cache=False), "partials disagree with a full recount"
        cached, _ = timed(lambda: project_stats(project.id), args.runs)
        filtered, _ = timed(lambda: project_stats(project.id, video_ids=[1000, 1001, 1002],
                                                  class_ids=[project.classes[0].id], use_cache=False), 3)

        with connect() as cur:
            boxes = cur.execute("SELECT * FROM boxes").df()
            frames = cur.execute("SELECT * FROM frames").df()
            videos = cur.execute("SELECT * FROM videos").df()
        release()
        ptimes, pcpus = timed(lambda: pandas_baseline(boxes, frames, videos), max(1, args.runs // 2))

    ours, theirs = statistics.median(times), statistics.median(ptimes)
    print(f"boxes counted: {result['boxes']:,}  frames: {result['frames']:,}  warnings: {len(result['warnings'])}")
    print(f"project_stats cold ({args.runs} runs): wall min {min(times) * 1000:.1f} ms, "
          f"median {ours * 1000:.1f} ms; CPU median {statistics.median(cpus) * 1000:.1f} ms")
    print(f"project_stats first fill (nothing cached, per-video partials): wall min {min(fills) * 1000:.1f} ms, "
          f"median {statistics.median(fills) * 1000:.1f} ms; CPU median {statistics.median(fill_cpus) * 1000:.1f} ms")
    print(f"project_stats after one box edit (one video counted again): wall min {min(edits) * 1000:.1f} ms, "
          f"median {statistics.median(edits) * 1000:.1f} ms; CPU median {statistics.median(edit_cpus) * 1000:.1f} ms")
    print(f"project_stats cached (unchanged revision): wall min {min(cached) * 1000:.1f} ms, "
          f"median {statistics.median(cached) * 1000:.1f} ms")
    print(f"project_stats cold, filtered (3 videos, 1 class): wall min {min(filtered) * 1000:.1f} ms")
    print(f"pandas baseline on in-memory DataFrames: wall min {min(ptimes) * 1000:.1f} ms, "
          f"median {theirs * 1000:.1f} ms; CPU median {statistics.median(pcpus) * 1000:.1f} ms")
    edit = statistics.median(edits)
    print(f"ratio pandas / duckdb (cold, median): {theirs / ours:.1f}x   "
          f"full recount / after one edit (median): {ours / edit:.1f}x")
    print(f"target <= 100 ms, full recount: {'OK' if min(times) <= 0.1 else 'MISSED'} (min), "
          f"{'OK' if ours <= 0.1 else 'MISSED'} (median); first computation after an edit: "
          f"{'OK' if min(edits) <= 0.1 else 'MISSED'} (min), {'OK' if edit <= 0.1 else 'MISSED'} (median)")


def after_one_edit(project_id: int, n_boxes: int, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of project_stats right after moving one box of a random video (the edit
    itself is not timed)."""
    import random

    from app.stats import project_stats
    from app.store.db import connect

    project_stats(project_id)
    rng, walls, cpus = random.Random(5), [], []
    for _ in range(runs):
        with connect() as cur:
            cur.execute("UPDATE boxes SET x2 = x2 + 1, updated_at = current_timestamp, rev = rev + 1 WHERE id = ?",
                        [rng.randrange(n_boxes)])
        t0, c0 = time.perf_counter(), time.process_time()
        project_stats(project_id)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus


def timed(fn, runs: int) -> tuple[list[float], list[float]]:
    """Wall and process CPU seconds of `runs` calls of fn."""
    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus

if __name__ == "__main__":
    main()
