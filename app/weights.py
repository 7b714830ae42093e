"""Which YOLO models tpod offers, where their weights come from, and keeping Ultralytics offline.

The model list lives here and nowhere else. `resolve_model` says, before anything heavy runs,
what a training job will load: a local `<data_dir>/weights/<name>.pt`, a one-time download
(only when this machine can reach the release host), or a model YAML trained from scratch.
It never lets Ultralytics discover offline-ness by stalling on a download (ultralytics #7645).

`prepare_offline` must run in the worker before `import ultralytics`: Ultralytics reads its
environment variables and its config dir once, at import.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from app.errors import BadInput
from app.settings import get_settings

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("yolo26n", "yolo26s", "yolo26m", "yolo11n", "yolo11s", "yolo11m")

# Where Ultralytics publishes its weights (downloads.attempt_download_asset).
RELEASE_HOST = "github.com"
RELEASE_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0/{name}.pt"
ONLINE_TIMEOUT_S = 2.0
# A page re-runs its script on every click: remember the answer instead of paying 2 s each time.
ONLINE_CACHE_S = 60.0

_online_cache: tuple[float, bool] | None = None
_online_lock = threading.Lock()


def weights_dir(data_dir: Path | None = None) -> Path:
    return (data_dir or get_settings().data_dir) / "weights"


def yolo_config_dir(data_dir: Path | None = None) -> Path:
    """What YOLO_CONFIG_DIR points at; Ultralytics keeps its files in <this>/Ultralytics."""
    return (data_dir or get_settings().data_dir) / "ultralytics"


def _offline_forced() -> bool:
    return get_settings().offline


def is_online(timeout_s: float = ONLINE_TIMEOUT_S) -> bool:
    """Whether the weights release host answers a TCP connect within `timeout_s` (cached 60 s)."""
    global _online_cache
    if _offline_forced():
        return False
    with _online_lock:
        if _online_cache is not None and time.monotonic() - _online_cache[0] < ONLINE_CACHE_S:
            return _online_cache[1]
    try:
        with socket.create_connection((RELEASE_HOST, 443), timeout=timeout_s):
            online = True
    except OSError:
        online = False
    with _online_lock:
        _online_cache = (time.monotonic(), online)
    return online


def _name_of(spec: str) -> str:
    stem = Path(spec).name
    for suffix in (".pt", ".yaml", ".yml"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def resolve_model(spec: str, pretrained: bool = True, data_dir: Path | None = None,
                  check_online: bool = True) -> dict[str, Any]:
    """What training `spec` will load, without loading anything.

    `spec` is a name from MODELS ("yolo26n"), a model YAML ("yolo26n.yaml": from scratch), or a
    path to a .pt file. Returns {"name", "source", "load", "ok", "message", "scratch"}:
    source is "local" | "file" | "download" | "scratch" | "unavailable"; `load` is what to hand
    to ultralytics.YOLO (a path or a YAML name); `scratch` is the YAML to offer instead when
    `ok` is False; `message` is one sentence for a person.
    """
    spec = (spec or "").strip()
    if not spec:
        raise BadInput("no model given: pick one of " + ", ".join(MODELS))
    name = _name_of(spec)
    scratch = f"{name}.yaml"
    is_path = ("/" in spec or os.sep in spec) and spec.endswith(".pt")
    if is_path:
        path = Path(spec).expanduser()
        if path.is_file():
            return _answer(name, "file", str(path.resolve()), True, f"Fine-tunes the weights in {path}.", scratch)
        raise BadInput(f"weights file {path} does not exist")
    if name not in MODELS:
        raise BadInput(f"unknown model {spec!r}: pick one of {', '.join(MODELS)}")
    if spec.endswith((".yaml", ".yml")) or not pretrained:
        return _answer(name, "scratch", scratch, True,
                       f"Trains {name} from scratch ({scratch}): random initial weights, needs more epochs.",
                       scratch)
    local = weights_dir(data_dir) / f"{name}.pt"
    if local.is_file():
        return _answer(name, "local", str(local), True, f"Starts from the pretrained weights in {local}.", scratch)
    if check_online and is_online():
        return _answer(name, "download", str(local), True,
                       f"Downloads pretrained {name}.pt once into {local.parent}, then starts from it.", scratch)
    return _answer(
        name, "unavailable", str(local), False,
        f"Pretrained {name}.pt is not in {local.parent} and this machine cannot reach {RELEASE_HOST}: "
        f"copy {name}.pt there, or train from scratch ({scratch}).",
        scratch,
    )


def _answer(name: str, source: str, load: str, ok: bool, message: str, scratch: str) -> dict[str, Any]:
    return {"name": name, "source": source, "load": load, "ok": ok, "message": message, "scratch": scratch}


def download_weights(name: str, data_dir: Path | None = None) -> Path:
    """Fetch `<name>.pt` into the weights dir (worker side; call after prepare_offline)."""
    if name not in MODELS:
        raise BadInput(f"unknown model {name!r}: pick one of {', '.join(MODELS)}")
    target = weights_dir(data_dir) / f"{name}.pt"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    from ultralytics.utils.downloads import attempt_download_asset

    try:
        attempt_download_asset(target)
    except (ConnectionError, OSError) as exc:
        raise BadInput(f"could not download {name}.pt ({exc}); copy it into {target.parent} "
                       f"or train from scratch ({name}.yaml)") from exc
    if not target.is_file():
        raise BadInput(f"download of {name}.pt did not produce {target}; copy it there or train from scratch")
    return target


def ultralytics_env(data_dir: Path | None = None) -> dict[str, str]:
    """The environment Ultralytics must see at import so it never reaches for the network."""
    return {
        "YOLO_CONFIG_DIR": str(yolo_config_dir(data_dir)),
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
    }


def ultralytics_settings(data_dir: Path | None = None) -> dict[str, Any]:
    """Ultralytics settings tpod pins: no telemetry, its weights/runs/datasets under the data dir."""
    root = data_dir or get_settings().data_dir
    return {
        "sync": False,
        "weights_dir": str(weights_dir(root)),
        "runs_dir": str(root / "runs"),
        "datasets_dir": str(root / "datasets"),
    }


def _find_ttf() -> Path | None:
    try:
        import matplotlib

        candidate = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        if candidate.is_file():
            return candidate
    except ImportError:
        pass
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    return next(iter(sorted(site.rglob("*.ttf"))), None)


def install_fonts(config_dir: Path) -> bool:
    """Put a local TTF where Ultralytics' check_font looks first, so it never downloads Arial.

    `config_dir` is Ultralytics' USER_CONFIG_DIR ($YOLO_CONFIG_DIR/Ultralytics). Returns False
    (and logs) when no TTF exists on this machine.
    """
    wanted = [config_dir / "Arial.ttf", config_dir / "Arial.Unicode.ttf"]
    if all(p.is_file() for p in wanted):
        return True
    ttf = _find_ttf()
    if ttf is None:
        log.warning("no .ttf font found in site-packages; Ultralytics may try to download Arial.ttf")
        return False
    config_dir.mkdir(parents=True, exist_ok=True)
    for p in wanted:
        if not p.is_file():
            tmp = p.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(ttf, tmp)
            tmp.replace(p)  # atomic: two workers may do this at once
    return True


def prepare_offline(data_dir: Path | None = None) -> None:
    """Set Ultralytics' environment and fonts for this process, then import and configure it.

    If ultralytics was already imported (a long-lived worker, a test session), its config dir is
    fixed: the fonts also go there and its settings are updated in place.
    """
    import sys

    env = ultralytics_env(data_dir)
    for key, value in env.items():
        os.environ[key] = value  # Ultralytics reads these at import: the one sanctioned write
    config_dir = Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics"
    install_fonts(config_dir)
    _write_settings(config_dir / "settings.json", ultralytics_settings(data_dir))
    if "ultralytics" not in sys.modules:
        import ultralytics  # noqa: F401 - now, with the environment above in force
    configure_ultralytics(data_dir)


def configure_ultralytics(data_dir: Path | None = None) -> None:
    """After import: sync off, weights looked up in tpod's weights dir, fonts in Ultralytics' dir."""
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR, patches

    # Ultralytics wraps PIL.Image.open so that any unreadable image triggers a pip install of
    # pi-heif; tpod validates uploads with PIL in the same process and must get PIL's own
    # UnidentifiedImageError, never an install attempt.
    patches._pil_plugins_registered = True
    install_fonts(Path(USER_CONFIG_DIR))
    wanted = ultralytics_settings(data_dir)
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)


def _write_settings(path: Path, wanted: dict[str, Any]) -> None:
    """Merge `wanted` into Ultralytics' settings.json before import (it keeps valid keys it finds),
    so values it freezes at import, such as WEIGHTS_DIR, point into the data dir."""
    import json

    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = {}
    if not isinstance(current, dict):
        current = {}
    if all(current.get(k) == v for k, v in wanted.items()):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**current, **wanted}, indent=2))
    tmp.replace(path)
