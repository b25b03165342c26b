#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the quickstart on the embedded tiny dataset.
# tiny is a smoke tier: its BC reference reaches < 50% of the demonstrators' return, so the
# quickstart reports the return and its fraction of the demonstrators' return, not a
# normalized score (dcsbench/scoring.py, reference validity).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash scripts/setup.sh | tail -n 1 | sed 's/^DCSBENCH_PYTHON=//')"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec "$PY" -m dcsbench.cli quickstart "$@"
