#!/usr/bin/env bash
# Set up dcsbench on a fresh machine. Idempotent: re-running skips what is already there.
#
# * System libraries for headless MuJoCo rendering (EGL through Mesa's llvmpipe, OSMesa as a
#   fallback) and Debian's Chromium for the leaderboard page test, when apt-get is available.
# * Python: installs into the active virtualenv/conda env if one is active, else into ./.venv.
# * torch: if the environment already has torch (e.g. a CUDA build you installed yourself), it is
#   kept. Otherwise the pinned CPU build torch==2.13.0 is installed *before* the package, so pip
#   never resolves an unpinned torch to gigabytes of CUDA wheels.
#
# Prints the python to use as its last line ("DCSBENCH_PYTHON=...").
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 chromium; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_pkgs+=("$p")
  done
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install ${need_pkgs[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    echo "[setup] warning: missing system packages ${need_pkgs[*]} (install them for headless rendering / browser tests)" >&2
  fi
fi

if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
  PY="$(command -v python)"
else
  if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv"
    python3 -m venv .venv
  fi
  PY="$PWD/.venv/bin/python"
fi

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing torch==2.13.0 (CPU build)"
  "$PY" -m pip install -q "torch==2.13.0"
fi
echo "[setup] installing dcsbench (editable) with test extras"
"$PY" -m pip install -q -e ".[test]"
echo "DCSBENCH_PYTHON=$PY"
