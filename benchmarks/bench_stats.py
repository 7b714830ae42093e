"""How fast is `project_stats()` on a big project? Target: <= 100 ms on 1M boxes.

Generates N boxes (default 1,000,000) with DuckDB range() into a fresh data dir, then times
`app.stats.project_stats`:
  - cold: use_cache=False, every figure recomputed from the boxes (the honest number; the
    connection is open and DuckDB's buffers are warm, as in the running app);
  - first call: the cached path with nothing cached yet (what the Stats page does first in a fresh
    process): one plain pass answers, and the per-video partials are then built in the background
    (their time is printed separately; it is not what the user waits for);
  - after one edit: one box of one video moved (as update_box does), then the cached path, which
    counts that video again and reuses the other videos' partials (the usual case while labeling);
  - cached: an unchanged project answering from the in-process cache (revision query + copy);
  - fresh process: a new Python process opening the file and asking once (nothing cached);
  - inline bins: the cold pass with every box's stored bins marked stale, so each box is binned
    by per-row arithmetic in the query (what the pass cost before bins were stored at write time),
    and the fill that stores them again (what the migration costs an older data dir);
  - writes: labels.create_box / update_box with and without storing the bins (fill_bins a no-op);
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
    from app.store.stats import fill_bins

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
            INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source,
                               outside, author, created_at, updated_at)
            SELECT 1000 + (i // {per_frame}) // ? , (i // {per_frame}) % ?, 10000000 + i % {per_frame} + 100 * (i // ?),
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
        fill_bins(cur)   # as every app write path does (and the migration for older data dirs)
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
        from app.stats import clear_cache, project_stats, settle
        from app.store.db import connect, release

        project = create_project("bench", ["car", "person", "bike", "truck", "dog"])
        t0 = time.perf_counter()
        generate(project.id, args.boxes)
        print(f"generated {args.boxes:,} boxes in {time.perf_counter() - t0:.1f} s")

        project_stats(project.id, use_cache=False)  # open the connection, warm DuckDB's buffers
        times, cpus = timed(lambda: project_stats(project.id, use_cache=False), args.runs)

        fills, fill_cpus, settles = [], [], []
        for _ in range(max(3, args.runs // 2)):
            clear_cache()
            (wall,), (cpu,) = timed(lambda: project_stats(project.id), 1)
            (settle_s,), _ = timed(settle, 1)   # the partials built in the background, before the next run
            fills.append(wall)
            fill_cpus.append(cpu)
            settles.append(settle_s)
        edits, edit_cpus = after_one_edit(project.id, args.boxes, args.runs)
        result = project_stats(project.id)
        assert result == project_stats(project.id, use_cache=False), "partials disagree with a full recount"
        cached, _ = timed(lambda: project_stats(project.id), args.runs)
        filtered, _ = timed(lambda: project_stats(project.id, video_ids=[1000, 1001, 1002],
                                                  class_ids=[project.classes[0].id], use_cache=False), 3)

        fresh = fresh_process(tmp, project.id, max(3, args.runs // 2))
        inline, inline_cpus, fill_s = inline_bins(project.id, args.runs)
        writes = write_costs(project.id, project.classes[0].id, max(20, args.runs * 5))

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
    print(f"project_stats first call (nothing cached: a plain pass): wall min {min(fills) * 1000:.1f} ms, "
          f"median {statistics.median(fills) * 1000:.1f} ms; CPU median {statistics.median(fill_cpus) * 1000:.1f} ms; "
          f"then the per-video partials in the background, done {statistics.median(settles) * 1000:.0f} ms later")
    print(f"project_stats after one box edit (one video counted again): wall min {min(edits) * 1000:.1f} ms, "
          f"median {statistics.median(edits) * 1000:.1f} ms; CPU median {statistics.median(edit_cpus) * 1000:.1f} ms")
    print(f"project_stats cached (unchanged revision): wall min {min(cached) * 1000:.1f} ms, "
          f"median {statistics.median(cached) * 1000:.1f} ms")
    print(f"project_stats cold, filtered (3 videos, 1 class): wall min {min(filtered) * 1000:.1f} ms")
    print(f"project_stats in a fresh process (connect + first call, nothing cached): wall min "
          f"{min(f[0] for f in fresh) * 1000:.1f} ms, median {statistics.median(f[0] for f in fresh) * 1000:.1f} ms; "
          f"CPU median {statistics.median(f[1] for f in fresh) * 1000:.1f} ms")
    print(f"baseline, cold with bins binned inline per row (as before stored bins): wall min {min(inline) * 1000:.1f} ms, "
          f"median {statistics.median(inline) * 1000:.1f} ms; CPU median {statistics.median(inline_cpus) * 1000:.1f} ms"
          f"  -> stored/inline CPU {statistics.median(cpus) / statistics.median(inline_cpus):.2f}")
    print(f"storing the bins of all {args.boxes:,} boxes (migration of an older data dir): {fill_s * 1000:.0f} ms")
    for name, (with_bins, without) in writes.items():
        print(f"{name}: wall median {statistics.median(with_bins) * 1000:.2f} ms with bins, "
              f"{statistics.median(without) * 1000:.2f} ms without (min {min(with_bins) * 1000:.2f} / "
              f"{min(without) * 1000:.2f} ms)")
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

    from app.stats import project_stats, settle
    from app.store.db import connect

    project_stats(project_id)
    settle()   # its per-video partials, built in the background
    rng, walls, cpus = random.Random(5), [], []
    for _ in range(runs):
        with connect() as cur:
            cur.execute("UPDATE boxes SET x2 = x2 + 1, updated_at = current_timestamp, rev = rev + 1 WHERE id = ?",
                        [1 + rng.randrange(n_boxes)])
        t0, c0 = time.perf_counter(), time.process_time()
        project_stats(project_id)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus


def fresh_process(data_dir: str, project_id: int, runs: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of connect + one project_stats call in a new process, after imports."""
    import json
    import subprocess

    from app.store.db import release

    release()   # the child needs the file lock
    code = ("import json, time, sys; from app.stats import project_stats; "
            "t0, c0 = time.perf_counter(), time.process_time(); project_stats(int(sys.argv[1])); "
            "print(json.dumps([time.perf_counter() - t0, time.process_time() - c0]))")
    env = {**os.environ, "TPOD_DATA_DIR": data_dir}
    root = Path(__file__).resolve().parents[1]
    out = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", code, str(project_id)], env=env, cwd=root,
                              capture_output=True, text=True, check=True)
        out.append(tuple(json.loads(proc.stdout.strip().splitlines()[-1])))
    return out


def inline_bins(project_id: int, runs: int) -> tuple[list[float], list[float], float]:
    """The cold pass with every stored bin stale (binned per row in the query), then the time to
    store them all again."""
    from app.stats import project_stats
    from app.store.db import connect
    from app.store.stats import fill_bins

    stored = project_stats(project_id, use_cache=False)
    with connect() as cur:
        cur.execute("UPDATE boxes SET bins_rev = NULL")
        cur.execute("CHECKPOINT")
    assert project_stats(project_id, use_cache=False) == stored, "inline bins disagree with stored bins"
    walls, cpus = timed(lambda: project_stats(project_id, use_cache=False), runs)
    with connect() as cur:
        t0 = time.perf_counter()
        fill_bins(cur)
        fill_s = time.perf_counter() - t0
        cur.execute("CHECKPOINT")
    return walls, cpus, fill_s


def write_costs(project_id: int, class_id: int, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall seconds of labels.create_box and labels.update_box with the bins stored, and with
    fill_bins replaced by a no-op (interleaved, same file)."""
    from app import labels
    from app.store import boxes as box_sql

    real = box_sql.fill_bins
    out: dict[str, tuple[list[float], list[float]]] = {"create_box": ([], []), "update_box": ([], [])}
    for i in range(2 * runs):
        store = i % 2 == 0
        box_sql.fill_bins = real if store else (lambda *a, **k: None)
        try:
            t0 = time.perf_counter()
            box = labels.create_box(1000 + i % 20, i % 50, class_id, (10 + i, 10, 80 + i, 90), author="bench")
            t1 = time.perf_counter()
            labels.update_box(box.id, (12 + i, 11, 90 + i, 95), expected_rev=None, author="bench")
            t2 = time.perf_counter()
        finally:
            box_sql.fill_bins = real
        out["create_box"][0 if store else 1].append(t1 - t0)
        out["update_box"][0 if store else 1].append(t2 - t1)
    return out


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
