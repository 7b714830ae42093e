#!/usr/bin/env bash
# Install tpod's Python dependencies into .venv (idempotent). Usage: scripts/install.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "${1:-}" = "dev" ]; then
  .venv/bin/pip install -q -r requirements-dev.txt
else
  .venv/bin/pip install -q -r requirements.txt
fi
# ultralytics depends on opencv-python, which writes the same cv2/ folder as the contrib build:
# whichever installs last wins and CSRT/KCF/MedianFlow can vanish. Reinstall contrib last so the
# one cv2 on disk is the contrib build (tests/test_opencv.py checks TrackerCSRT_create exists).
if ! .venv/bin/python -c "import cv2, sys; sys.exit(0 if hasattr(cv2, 'TrackerCSRT_create') else 1)" 2>/dev/null; then
  .venv/bin/pip install -q --force-reinstall --no-deps "$(grep -E '^opencv-contrib-python-headless==' requirements.txt)"
fi
.venv/bin/python -c "import cv2; assert hasattr(cv2, 'TrackerCSRT_create'), 'OpenCV without contrib trackers'; print('opencv', cv2.__version__, 'with contrib trackers')"
