"""The one place that reads the environment. Everything else calls `get_settings()`.

Every variable is documented in README.md ("Configuration"). Defaults need nothing installed
beyond requirements.txt: a DuckDB file and a SQLite-backed Huey queue under the data dir.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.errors import BadInput

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    queue_backend: str  # "sqlite" | "redis"
    redis_url: str | None
    device: str  # "auto" | "cpu" | "0" | "0,1" ...
    max_upload_mb: int
    max_upload_files: int
    max_archive_files: int
    max_archive_mb: int
    max_video_frames: int
    worker_concurrency: int
    heartbeat_s: float
    worker_timeout_s: float
    users_file: Path | None
    db_busy_timeout_s: float
    port: int
    project_quota_videos: int
    offline: bool

    @property
    def db_path(self) -> Path:
        return self.data_dir / "tpod.duckdb"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.sqlite3"

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def versions_dir(self) -> Path:
        return self.data_dir / "versions"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def weights_dir(self) -> Path:
        return self.data_dir / "weights"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def yolo_config_dir(self) -> Path:
        return self.data_dir / "ultralytics"

    @property
    def auth_enabled(self) -> bool:
        return self.users_file is not None and self.users_file.exists()


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise BadInput(f"{name}={value} must be >= {minimum}")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise BadInput(f"{name}={raw!r} is not a number") from None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from an environment mapping (os.environ by default)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("TPOD_DATA_DIR") or "data").expanduser().resolve()
    redis_url = env.get("TPOD_REDIS_URL") or None
    backend = (env.get("TPOD_QUEUE") or ("redis" if redis_url else "sqlite")).lower()
    if backend not in ("sqlite", "redis"):
        raise BadInput(f"TPOD_QUEUE={backend!r}: use 'sqlite' or 'redis'")
    if backend == "redis" and not redis_url:
        raise BadInput("TPOD_QUEUE=redis needs TPOD_REDIS_URL (e.g. redis://localhost:6379/0)")
    users = env.get("TPOD_USERS_FILE")
    users_file = Path(users).expanduser().resolve() if users else data_dir / "users.json"
    return Settings(
        data_dir=data_dir,
        queue_backend=backend,
        redis_url=redis_url,
        device=(env.get("TPOD_DEVICE") or "auto").strip(),
        max_upload_mb=_int(env, "TPOD_MAX_UPLOAD_MB", 2048, 1),
        max_upload_files=_int(env, "TPOD_MAX_UPLOAD_FILES", 500, 1),
        max_archive_files=_int(env, "TPOD_MAX_ARCHIVE_FILES", 20000, 1),
        max_archive_mb=_int(env, "TPOD_MAX_ARCHIVE_MB", 4096, 1),
        max_video_frames=_int(env, "TPOD_MAX_VIDEO_FRAMES", 100000, 1),
        worker_concurrency=_int(env, "TPOD_WORKER_THREADS", 2, 1),
        heartbeat_s=_float(env, "TPOD_HEARTBEAT_S", 5.0),
        worker_timeout_s=_float(env, "TPOD_WORKER_TIMEOUT_S", 30.0),
        users_file=users_file,
        db_busy_timeout_s=_float(env, "TPOD_DB_BUSY_TIMEOUT_S", 15.0),
        port=_int(env, "TPOD_PORT", 8501, 1),
        project_quota_videos=_int(env, "TPOD_PROJECT_MAX_VIDEOS", 500, 1),
        offline=(env.get("TPOD_OFFLINE") or "").strip().lower() in ("1", "true", "yes", "on"),
    )


def get_settings() -> Settings:
    """Current settings. Reads the environment each call (cheap), so tests can repoint TPOD_DATA_DIR."""
    return load_settings()
