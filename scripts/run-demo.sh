#!/usr/bin/env bash
# The main job on a built-in example: installs what it needs (idempotent), then scores the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/emsync-bridge demo -o demo_out "$@"
