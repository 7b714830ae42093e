#!/usr/bin/env bash
# Install everything the tests need (system packages when run as root, the dev requirements in
# .venv) and run the whole suite: unit, real huey_consumer, real redis-server, real training,
# and Playwright driving Debian's Chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(chromium redis-server fonts-dejavu-core fonts-noto-color-emoji)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/install.sh dev

set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit $rc
