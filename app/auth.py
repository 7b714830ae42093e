"""Login for a self-hosted team: a users file with bcrypt hashes and two roles.

Login is on as soon as the users file (TPOD_USERS_FILE, default <data>/users.json) holds a user;
with none the app is open (a local demo) and every page says so. Passwords are never stored or
logged in plain text.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import bcrypt

from app.errors import BadInput, NotFound
from app.names import clean_name
from app.settings import get_settings

ROLES = ("admin", "annotator")
_lock = threading.Lock()
MIN_PASSWORD = 8


def _path() -> Path:
    path = get_settings().users_file
    assert path is not None
    return path


def _load() -> dict:
    path = _path()
    if not path.exists():
        return {"users": {}}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise BadInput(f"{path} is not valid JSON: fix or remove it") from None
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise BadInput(f"{path} must hold {{\"users\": {{...}}}}")
    return data


def _save(data: dict) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def login_required() -> bool:
    try:
        return bool(_load()["users"])
    except BadInput:
        return True  # a broken users file must not open the app


def add_user(name: str, password: str, role: str = "annotator") -> None:
    name = clean_name(name, "user name")
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"password must have at least {MIN_PASSWORD} characters")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    with _lock:
        data = _load()
        data["users"][name] = {"hash": hashed, "role": role}
        _save(data)


def remove_user(name: str) -> None:
    with _lock:
        data = _load()
        if name not in data["users"]:
            raise NotFound(f"no user {name!r}")
        del data["users"][name]
        _save(data)


def list_users() -> list[dict]:
    return [{"name": n, "role": u.get("role", "annotator")} for n, u in sorted(_load()["users"].items())]


def verify(name: str, password: str) -> str | None:
    """The user's role when the password matches, else None (same cost either way)."""
    users = _load()["users"]
    user = users.get((name or "").strip())
    # compare against a dummy hash for unknown users so timing does not reveal who exists
    hashed = (user or {}).get("hash") or _dummy_hash()
    try:
        ok = bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        ok = False
    return user.get("role", "annotator") if (ok and user) else None


_dummy: list[str] = []


def _dummy_hash() -> str:
    if not _dummy:
        _dummy.append(bcrypt.hashpw(b"not-a-user", bcrypt.gensalt()).decode())
    return _dummy[0]


def can(role: str | None, action: str) -> bool:
    """admin: everything; annotator: label, ingest, train, export — not delete or manage."""
    if role == "admin":
        return True
    return action not in ("delete", "manage")
