#!/usr/bin/env bash
# Installs what BAMBO needs on a fresh Debian/Ubuntu machine, only where it is missing:
# the system libraries (libzmq, SQLite), pkg-config, Python with venv, Chromium (headless, for the report
# test), iproute2 and shellcheck (for the multi-host test and the script checks), and the cached Python environment
# for the CPU inference path (cluster/python-env.sh). Idempotent; safe to run every time.
# Swift itself (6.x) must already be on PATH: see README "Set-up".
set -euo pipefail

need_apt=()
# chromium: the tests render `bambo export --format html` headless and check the screenshot.
for pkg in libzmq3-dev libsqlite3-dev sqlite3 pkg-config python3 python3-venv chromium iproute2 shellcheck; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]} with apt-get" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "bootstrap: need root (or sudo) to install ${need_apt[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

command -v swift >/dev/null 2>&1 || { echo "bootstrap: swift is not on PATH (need Swift 6.x, see README)" >&2; exit 1; }

bash "$(dirname "$0")/python-env.sh" >/dev/null
