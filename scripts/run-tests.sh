#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs (idempotent), then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
