"""SQL for projects and label classes."""
from __future__ import annotations

import duckdb

from app.domain import LabelClass, Project


def insert_project(cur: duckdb.DuckDBPyConnection, name: str, author: str | None) -> int:
    row = cur.execute(
        "INSERT INTO projects (name, created_by) VALUES (?, ?) RETURNING id", [name, author]
    ).fetchone()
    return int(row[0])


def project_by_name(cur: duckdb.DuckDBPyConnection, name: str) -> Project | None:
    row = cur.execute("SELECT id, name, created_at FROM projects WHERE name = ?", [name]).fetchone()
    return _with_classes(cur, row)


def project_by_id(cur: duckdb.DuckDBPyConnection, project_id: int) -> Project | None:
    row = cur.execute("SELECT id, name, created_at FROM projects WHERE id = ?", [project_id]).fetchone()
    return _with_classes(cur, row)


def _with_classes(cur: duckdb.DuckDBPyConnection, row: tuple | None) -> Project | None:
    if row is None:
        return None
    return Project(id=row[0], name=row[1], created_at=row[2], classes=tuple(classes_of(cur, row[0])))


def all_projects(cur: duckdb.DuckDBPyConnection) -> list[Project]:
    rows = cur.execute("SELECT id, name, created_at FROM projects ORDER BY created_at DESC, id DESC").fetchall()
    classes: dict[int, list[LabelClass]] = {}
    for c in cur.execute("SELECT id, project_id, name, color FROM label_classes ORDER BY id").fetchall():
        classes.setdefault(c[1], []).append(LabelClass(*c))
    return [Project(id=r[0], name=r[1], created_at=r[2], classes=tuple(classes.get(r[0], []))) for r in rows]


def rename_project(cur: duckdb.DuckDBPyConnection, project_id: int, name: str) -> None:
    cur.execute("UPDATE projects SET name = ? WHERE id = ?", [name, project_id])


def delete_project(cur: duckdb.DuckDBPyConnection, project_id: int) -> list[int]:
    """Delete a project and every row that hangs off it; returns its video ids (for file cleanup)."""
    videos = [r[0] for r in cur.execute("SELECT id FROM videos WHERE project_id = ?", [project_id]).fetchall()]
    versions = [r[0] for r in cur.execute("SELECT id FROM dataset_versions WHERE project_id = ?", [project_id]).fetchall()]
    for vid in videos:
        delete_video_rows(cur, vid)
    for ver in versions:
        cur.execute("DELETE FROM version_items WHERE version_id = ?", [ver])
    for table in ("dataset_versions", "training_runs", "models", "label_classes", "edits"):
        cur.execute(f"DELETE FROM {table} WHERE project_id = ?", [project_id])  # noqa: S608 (fixed names)
    cur.execute("DELETE FROM projects WHERE id = ?", [project_id])
    return videos


def delete_video_rows(cur: duckdb.DuckDBPyConnection, video_id: int) -> None:
    cur.execute("DELETE FROM boxes WHERE video_id = ?", [video_id])
    cur.execute("DELETE FROM tracks WHERE video_id = ?", [video_id])
    cur.execute("DELETE FROM frames WHERE video_id = ?", [video_id])
    cur.execute("DELETE FROM videos WHERE id = ?", [video_id])


def classes_of(cur: duckdb.DuckDBPyConnection, project_id: int) -> list[LabelClass]:
    rows = cur.execute(
        "SELECT id, project_id, name, color FROM label_classes WHERE project_id = ? ORDER BY id", [project_id]
    ).fetchall()
    return [LabelClass(*r) for r in rows]


def insert_class(cur: duckdb.DuckDBPyConnection, project_id: int, name: str, color: str) -> int:
    row = cur.execute(
        "INSERT INTO label_classes (project_id, name, color) VALUES (?, ?, ?) RETURNING id",
        [project_id, name, color],
    ).fetchone()
    return int(row[0])


def update_class(cur: duckdb.DuckDBPyConnection, class_id: int, name: str, color: str) -> None:
    cur.execute("UPDATE label_classes SET name = ?, color = ? WHERE id = ?", [name, color, class_id])


def class_box_count(cur: duckdb.DuckDBPyConnection, class_id: int) -> int:
    return int(cur.execute("SELECT count(*) FROM boxes WHERE class_id = ?", [class_id]).fetchone()[0])


def delete_class(cur: duckdb.DuckDBPyConnection, class_id: int) -> None:
    cur.execute("DELETE FROM boxes WHERE class_id = ?", [class_id])
    cur.execute("DELETE FROM tracks WHERE class_id = ?", [class_id])
    cur.execute("DELETE FROM label_classes WHERE id = ?", [class_id])
