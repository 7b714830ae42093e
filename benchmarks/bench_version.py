"""How fast is `create_version()`? Target: a 10k-frame version materialised in <= 5 s.

Builds a project of 10 videos x 1,000 frames (small JPEGs in the frame store, 1-3 boxes per
frame) in a fresh data dir, times `create_version` (rows + hard-linked YOLO folder), and, as a
baseline measured in the same run, a plain `shutil.copy` of the same 10k JPEGs.

    .venv/bin/python benchmarks/bench_version.py [--frames 10000] [--quick]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(project_id: int, class_ids: list[int], n_frames: int, n_videos: int = 10) -> list[Path]:
    import numpy as np
    from PIL import Image

    from app import framestore
    from app.store.db import connect

    per_video = n_frames // n_videos
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    jpeg = buf.getvalue()
    files = []
    with connect() as cur:
        for v in range(n_videos):
            vid = int(cur.execute(
                "INSERT INTO videos (project_id, name, status, width, height, fps, frame_count) "
                "VALUES (?, ?, 'ready', 1280, 720, 30, ?) RETURNING id", [project_id, f"video{v}", per_video],
            ).fetchone()[0])
            cur.execute("INSERT INTO frames (video_id, idx, source_idx, ts) "
                        "SELECT ?, i, i, i / 30.0 FROM range(?) t(i)", [vid, per_video])
            cur.execute(
                """INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source)
                   SELECT ?, i, ? * 10 + k, list_extract(?::INTEGER[], 1 + k % len(?::INTEGER[])),
                          100 + 50 * k, 100, 300 + 50 * k, 260, 'tracked'
                   FROM range(?) t(i), range(3) s(k) WHERE k <= i % 3""",
                [vid, vid, class_ids, class_ids, per_video])
            folder = framestore.frame_file(vid, 0).parent
            folder.mkdir(parents=True)
            for i in range(per_video):
                path = folder / f"{i:06d}.jpg"
                path.write_bytes(jpeg)
                files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2,000 frames")
    args = parser.parse_args()
    if args.quick:
        args.frames = 2_000

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TPOD_DATA_DIR"] = str(Path(tmp) / "data")
        from app.datasets import create_version
        from app.projects import create_project
        from app.store.db import release

        project = create_project("bench", ["car", "person", "bike"])
        files = build(project.id, [c.id for c in project.classes], args.frames)

        t0 = time.perf_counter()
        version = create_version(project.id, "bench v1", split="video", val=0.2)
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        blocks = create_version(project.id, "bench v2", split="blocks", val=0.2, test=0.1)
        ours_blocks = time.perf_counter() - t0

        target = Path(tmp) / "copy"
        target.mkdir()
        t0 = time.perf_counter()
        for i, f in enumerate(files):
            shutil.copy(f, target / f"{i}.jpg")
        baseline = time.perf_counter() - t0
        release()

    print(f"version (split=video): {version['stats']['images']:,} images, {version['stats']['boxes']:,} boxes "
          f"in {ours:.2f} s")
    print(f"version (split=blocks, val+test): {blocks['stats']['images']:,} images in {ours_blocks:.2f} s")
    print(f"baseline shutil.copy of the same {len(files):,} JPEGs: {baseline:.2f} s")
    print(f"ratio copy / create_version: {baseline / ours:.2f}x   target <= 5 s: {'OK' if ours <= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
