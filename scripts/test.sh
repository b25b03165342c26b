#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the default test suite. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m slow        # the slow tests
#   bash scripts/test.sh -m gpu         # the GPU tests (needs CUDA)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash scripts/setup.sh | tail -n 1 | sed 's/^DCSBENCH_PYTHON=//')"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"   # tests never touch the internet
exec "$PY" -m pytest "$@"
