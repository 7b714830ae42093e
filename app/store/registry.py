"""SQL for training runs and the model registry (tables training_runs and models)."""
from __future__ import annotations

import json
from typing import Any

import duckdb

_RUN_COLS = ("r.id, r.project_id, r.version_id, v.name AS version_name, r.job_id, r.model_arch, r.params, "
             "r.state, r.history, r.error, r.run_dir, r.created_at, r.finished_at, r.created_by, "
             "j.state AS job_state, j.progress AS job_progress, j.error AS job_error, "
             "(SELECT min(m.id) FROM models m WHERE m.run_id = r.id) AS model_id")
_RUN_FROM = ("FROM training_runs r LEFT JOIN dataset_versions v ON v.id = r.version_id "
             "LEFT JOIN jobs j ON j.id = r.job_id")
_MODEL_COLS = ("m.id, m.project_id, m.run_id, m.version_id, v.name AS version_name, m.name, m.arch, m.path, "
               "m.classes, m.metrics, m.params, m.created_at")
_MODEL_FROM = "FROM models m LEFT JOIN dataset_versions v ON v.id = m.version_id"
_JSON_KEYS = ("params", "history", "job_progress", "classes", "metrics")


def _dicts(res: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [d[0] for d in res.description]
    out = []
    for row in res.fetchall():
        item = dict(zip(cols, row, strict=True))
        for key in _JSON_KEYS:
            if isinstance(item.get(key), str):
                item[key] = json.loads(item[key])
        out.append(item)
    return out


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def version_row(cur: duckdb.DuckDBPyConnection, version_id: int) -> dict[str, Any] | None:
    res = cur.execute("SELECT id, project_id, name, path, classes, stats FROM dataset_versions WHERE id = ?",
                      [version_id])
    rows = _dicts(res)
    return rows[0] if rows else None


def insert_run(cur: duckdb.DuckDBPyConnection, project_id: int, version_id: int, arch: str,
               params: dict[str, Any], author: str | None) -> int:
    row = cur.execute(
        "INSERT INTO training_runs (project_id, version_id, model_arch, params, created_by) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        [project_id, version_id, arch, _json(params), author],
    ).fetchone()
    return int(row[0])


def set_run_start(cur: duckdb.DuckDBPyConnection, run_id: int, params: dict[str, Any], run_dir: str,
                  job_id: str) -> None:
    cur.execute("UPDATE training_runs SET params = ?, run_dir = ?, job_id = ? WHERE id = ?",
                [_json(params), run_dir, job_id, run_id])


def set_run_progress(cur: duckdb.DuckDBPyConnection, run_id: int, state: str, history: list | None) -> None:
    cur.execute(
        "UPDATE training_runs SET state = ?, history = coalesce(?, history) "
        "WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')",
        [state, _json(history), run_id],
    )


def finish_run(cur: duckdb.DuckDBPyConnection, run_id: int, state: str, history: list | None,
               error: str | None) -> None:
    cur.execute(
        "UPDATE training_runs SET state = ?, history = coalesce(?, history), error = ?, "
        "finished_at = current_timestamp WHERE id = ?",
        [state, _json(history), error, run_id],
    )


def run_by_id(cur: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, Any] | None:
    rows = _dicts(cur.execute(f"SELECT {_RUN_COLS} {_RUN_FROM} WHERE r.id = ?", [run_id]))  # noqa: S608
    return rows[0] if rows else None


def runs(cur: duckdb.DuckDBPyConnection, project_id: int | None) -> list[dict[str, Any]]:
    where, args = ("WHERE r.project_id = ?", [project_id]) if project_id is not None else ("", [])
    return _dicts(cur.execute(f"SELECT {_RUN_COLS} {_RUN_FROM} {where} ORDER BY r.id DESC", args))  # noqa: S608


def model_for_run(cur: duckdb.DuckDBPyConnection, run_id: int) -> int | None:
    row = cur.execute("SELECT min(id) FROM models WHERE run_id = ?", [run_id]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def insert_model(cur: duckdb.DuckDBPyConnection, project_id: int, run_id: int, version_id: int, name: str,
                 arch: str, path: str, classes: list[str], metrics: dict[str, Any],
                 params: dict[str, Any]) -> int:
    row = cur.execute(
        "INSERT INTO models (project_id, run_id, version_id, name, arch, path, classes, metrics, params) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [project_id, run_id, version_id, name, arch, path, _json(classes), _json(metrics), _json(params)],
    ).fetchone()
    return int(row[0])


def models(cur: duckdb.DuckDBPyConnection, project_id: int) -> list[dict[str, Any]]:
    return _dicts(cur.execute(
        f"SELECT {_MODEL_COLS} {_MODEL_FROM} WHERE m.project_id = ? ORDER BY m.id DESC", [project_id]  # noqa: S608
    ))


def model_by_id(cur: duckdb.DuckDBPyConnection, model_id: int) -> dict[str, Any] | None:
    rows = _dicts(cur.execute(f"SELECT {_MODEL_COLS} {_MODEL_FROM} WHERE m.id = ?", [model_id]))  # noqa: S608
    return rows[0] if rows else None


def models_sharing_path(cur: duckdb.DuckDBPyConnection, path: str, except_id: int) -> int:
    row = cur.execute("SELECT count(*) FROM models WHERE path = ? AND id <> ?", [path, except_id]).fetchone()
    return int(row[0])


def delete_model(cur: duckdb.DuckDBPyConnection, model_id: int) -> None:
    cur.execute("DELETE FROM models WHERE id = ?", [model_id])
