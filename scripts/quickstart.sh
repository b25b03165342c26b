#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the quickstart on the embedded tiny dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash scripts/setup.sh | tail -n 1 | sed 's/^DCSBENCH_PYTHON=//')"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec "$PY" -m dcsbench.cli quickstart "$@"
