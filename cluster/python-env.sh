#!/usr/bin/env bash
# Creates (only if missing) the Python virtual environment that BAMBO's CPU inference path uses
# (`transformers serve`, the tiny demo models) and prints the path of its python on stdout.
#
# The venv lives OUTSIDE the clone, in ${BAMBO_CACHE:-$HOME/.cache/bambo}/venv-<hash>, keyed by a hash
# of cluster/requirements-cpu.txt: editing the requirements builds a fresh venv, an unchanged file reuses
# the cached one. torch's CPU wheel is installed FIRST and alone (its pinned version resolves from the
# local wheel folder in PIP_FIND_LINKS when set, else from PyTorch's CPU index), then the rest.
#
# Idempotent and safe if interrupted: the venv is built under a lock and marked complete only at the
# end; a directory without the marker (an interrupted build) is deleted and rebuilt. (A venv cannot be
# built elsewhere and renamed: its console scripts record their absolute path.)
#
# Usage: python=$(bash cluster/python-env.sh)       # progress goes to stderr
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/requirements-cpu.txt"
[ -f "$req" ] || { echo "python-env: $req is missing" >&2; exit 1; }
base_python="${BAMBO_BASE_PYTHON:-python3}"
command -v "$base_python" >/dev/null 2>&1 || { echo "python-env: $base_python is not on PATH (need Python >= 3.10 with venv)" >&2; exit 1; }

cache="${BAMBO_CACHE:-$HOME/.cache/bambo}"
sha="$(sha256sum "$req" | cut -c1-16)"
venv="$cache/venv-$sha"
marker="$venv/.bambo-complete"
mkdir -p "$cache"

if [ ! -f "$marker" ]; then
  exec 9>"$cache/venv-$sha.lock"
  flock 9                                   # another process may be building the same venv
  if [ ! -f "$marker" ]; then
    rm -rf "$venv"
    echo "python-env: building $venv (one time; about a minute)" >&2
    "$base_python" -m venv "$venv"
    pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
    "${pip[@]}" install --upgrade pip >&2
    torch_line="$(grep -E '^torch==' "$req" | head -n1)"
    [ -n "$torch_line" ] || { echo "python-env: $req must pin torch (torch==X) on its own line" >&2; exit 1; }
    torch_source=()
    # With a local wheel folder (PIP_FIND_LINKS) pip finds the CPU wheel there; otherwise ask PyTorch's
    # CPU index, since PyPI's torch is the CUDA build.
    [ -n "${PIP_FIND_LINKS:-}" ] || torch_source=(--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple)
    "${pip[@]}" install "$torch_line" "${torch_source[@]}" >&2
    "${pip[@]}" install -r "$req" >&2
    "$venv/bin/python" -c 'import torch, transformers; assert "+cpu" in torch.__version__ or not torch.cuda.is_available()' >&2 \
      || { echo "python-env: the venv at $venv does not import torch (CPU) and transformers" >&2; exit 1; }
    touch "$marker"
  fi
  flock -u 9
fi
echo "$venv/bin/python"
