#!/usr/bin/env bash
# Install tpod (into .venv) and start the web app + a worker on the embedded defaults:
# DuckDB and a SQLite-backed queue under ./data (TPOD_DATA_DIR). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m app serve "$@"
