"""Projects and their label classes: create, rename, delete, list."""
from __future__ import annotations

import shutil

import duckdb

from app import framestore
from app.domain import LabelClass, Project
from app.errors import Conflict, NotFound
from app.names import clean_color, clean_name
from app.store import projects as sql
from app.store.db import connect


def create_project(name: str, classes: list[tuple[str, str | None]] | list[str] | None = None,
                   author: str | None = None) -> Project:
    """Create a project with optional classes ("name" or ("name", "#rrggbb"))."""
    name = clean_name(name, "project name")
    specs = [(c, None) if isinstance(c, str) else c for c in (classes or [])]
    cleaned = [(clean_name(n, "class name"), clean_color(col, i)) for i, (n, col) in enumerate(specs)]
    if len({n for n, _ in cleaned}) != len(cleaned):
        raise Conflict("class names must be unique within a project")
    with connect() as cur:
        if sql.project_by_name(cur, name) is not None:
            raise Conflict(f"a project named {name!r} already exists")
        cur.execute("BEGIN")
        try:
            pid = sql.insert_project(cur, name, author)
            for n, col in cleaned:
                sql.insert_class(cur, pid, n, col)
            cur.execute("COMMIT")
        except duckdb.ConstraintException:
            cur.execute("ROLLBACK")
            raise Conflict(f"a project named {name!r} already exists") from None
        return sql.project_by_id(cur, pid)  # type: ignore[return-value]


def list_projects() -> list[Project]:
    with connect() as cur:
        return sql.all_projects(cur)


def get_project(ref: str | int) -> Project:
    """A project by id or by exact name."""
    with connect() as cur:
        project = None
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            project = sql.project_by_id(cur, int(ref))
        if project is None and isinstance(ref, str):
            project = sql.project_by_name(cur, ref.strip())
    if project is None:
        raise NotFound(f"no project {ref!r}")
    return project


def ensure_project(name: str, author: str | None = None) -> Project:
    try:
        return get_project(name)
    except NotFound:
        return create_project(name, author=author)


def rename_project(project_id: int, new_name: str) -> Project:
    new_name = clean_name(new_name, "project name")
    with connect() as cur:
        if sql.project_by_id(cur, project_id) is None:
            raise NotFound(f"no project {project_id}")
        other = sql.project_by_name(cur, new_name)
        if other is not None and other.id != project_id:
            raise Conflict(f"a project named {new_name!r} already exists")
        sql.rename_project(cur, project_id, new_name)
        return sql.project_by_id(cur, project_id)  # type: ignore[return-value]


def delete_project(project_id: int) -> None:
    """Delete a project, its rows and its files (frames, versions, runs)."""
    from app.settings import get_settings

    with connect() as cur:
        if sql.project_by_id(cur, project_id) is None:
            raise NotFound(f"no project {project_id}")
        cur.execute("BEGIN")
        try:
            video_ids = sql.delete_project(cur, project_id)
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
    for vid in video_ids:
        shutil.rmtree(framestore.video_dir(vid), ignore_errors=True)
    s = get_settings()
    shutil.rmtree(s.versions_dir / str(project_id), ignore_errors=True)


def add_class(project_id: int, name: str, color: str | None = None) -> LabelClass:
    name = clean_name(name, "class name")
    with connect() as cur:
        existing = sql.classes_of(cur, project_id)
        if any(c.name == name for c in existing):
            raise Conflict(f"class {name!r} already exists in this project")
        cid = sql.insert_class(cur, project_id, name, clean_color(color, len(existing)))
        return LabelClass(cid, project_id, name, clean_color(color, len(existing)))


def update_class(class_id: int, name: str | None = None, color: str | None = None) -> LabelClass:
    """Rename and/or recolour a class. Its boxes keep pointing at it (by id), so nothing is lost."""
    with connect() as cur:
        row = cur.execute("SELECT id, project_id, name, color FROM label_classes WHERE id = ?", [class_id]).fetchone()
        if row is None:
            raise NotFound(f"no class {class_id}")
        cls = LabelClass(*row)
        new_name = clean_name(name, "class name") if name is not None else cls.name
        new_color = clean_color(color) if color else cls.color
        if new_name != cls.name and any(c.name == new_name for c in sql.classes_of(cur, cls.project_id)):
            raise Conflict(f"class {new_name!r} already exists in this project")
        sql.update_class(cur, class_id, new_name, new_color)
        return LabelClass(class_id, cls.project_id, new_name, new_color)


def delete_class(class_id: int, force: bool = False) -> int:
    """Delete a class. Refuses when it has boxes unless force=True; returns boxes deleted."""
    with connect() as cur:
        n = sql.class_box_count(cur, class_id)
        if n and not force:
            raise Conflict(f"class has {n} boxes; confirm to delete them too")
        sql.delete_class(cur, class_id)
        return n
