#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine (Python 3.11, root, no GPU):
# Debian packages (see install_system_deps.sh for the list and why), then a venv in .venv
# with the project installed editable with the [cpu,ui,train,dev] extras.
# Set EMSYNC_EXTRAS to change the extras (e.g. "gpu,ui" on a CUDA machine; never cpu and gpu together).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_system_deps.sh
EXTRAS="${EMSYNC_EXTRAS:-cpu,ui,train,dev}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.emsync-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch first and pinned: a CPU wheel of 2.13.0 is on this kind of machine; an open range would
  # otherwise pull the newest CUDA build (several GB).
  .venv/bin/pip install -q "torch==2.13.0" 2>/dev/null || .venv/bin/pip install -q torch
  .venv/bin/pip install -q -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi
echo "environment ready: .venv"
