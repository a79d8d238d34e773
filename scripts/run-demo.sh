#!/usr/bin/env bash
# The main job on a built-in example: installs what it needs (idempotent), then scores the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/emsync-bridge generate --duration 30 --valence 0.6 --arousal 0.4 --boundaries 6,13,21 -o demo_out/generate.mid "$@"
