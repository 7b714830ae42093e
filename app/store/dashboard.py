"""SQL for the home page's overview."""
from __future__ import annotations

import duckdb


def project_counts(cur: duckdb.DuckDBPyConnection) -> dict[int, dict]:
    rows = cur.execute(
        """
        SELECT p.id,
               (SELECT count(*) FROM videos v WHERE v.project_id = p.id AND v.status = 'ready') AS videos,
               (SELECT count(*) FROM frames f JOIN videos v ON v.id = f.video_id WHERE v.project_id = p.id) AS frames,
               (SELECT count(*) FROM boxes b JOIN videos v ON v.id = b.video_id
                 WHERE v.project_id = p.id AND NOT b.outside) AS boxes,
               (SELECT count(DISTINCT (b.video_id, b.frame_idx)) FROM boxes b JOIN videos v ON v.id = b.video_id
                 WHERE v.project_id = p.id AND NOT b.outside) AS labeled_frames,
               (SELECT count(*) FROM models m WHERE m.project_id = p.id) AS models
        FROM projects p
        """
    ).fetchall()
    return {r[0]: {"videos": r[1], "frames": r[2], "boxes": r[3], "labeled_frames": r[4], "models": r[5]} for r in rows}


def videos_overview(cur: duckdb.DuckDBPyConnection, project_id: int) -> list[dict]:
    res = cur.execute(
        """
        SELECT v.id, v.name, v.kind, v.status, v.width, v.height, v.fps, v.frame_count,
               (SELECT count(*) FROM boxes b WHERE b.video_id = v.id AND NOT b.outside) AS boxes,
               (SELECT count(DISTINCT b.frame_idx) FROM boxes b WHERE b.video_id = v.id AND NOT b.outside) AS labeled
        FROM videos v WHERE v.project_id = ? ORDER BY v.id
        """,
        [project_id],
    )
    cols = [d[0] for d in res.description]
    return [dict(zip(cols, r, strict=True)) for r in res.fetchall()]


def recent_runs(cur: duckdb.DuckDBPyConnection, limit: int = 10) -> list[dict]:
    res = cur.execute(
        """
        SELECT r.id, r.project_id, p.name AS project, r.model_arch, r.state, r.created_at, r.finished_at,
               (SELECT min(m.id) FROM models m WHERE m.run_id = r.id) AS model_id
        FROM training_runs r JOIN projects p ON p.id = r.project_id
        ORDER BY r.created_at DESC LIMIT ?
        """,
        [limit],
    )
    cols = [d[0] for d in res.description]
    return [dict(zip(cols, r, strict=True)) for r in res.fetchall()]
