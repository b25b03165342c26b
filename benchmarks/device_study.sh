#!/usr/bin/env bash
# The one prepared command of a lent device session (docs/device.md): install the carried
# wheels offline, build the plan's datasets, run the next shard of the committed plan within
# one command's limit, and leave its records packed in <= 8 files under $OUT.
#
#   benchmarks/device_study.sh [PLAN]        (default studies/plans/first-shard.yaml)
#
# Environment (all optional):
#   OUT            where the packed files go (the device sets it; default ./device-out)
#   WHEELS         folder of carried wheels (default .whl; skipped when it holds none)
#   RESUME         folder of packed files from the previous session (default studies/carry)
#   TOTAL_MINUTES  wall-clock budget of this whole script (default 9: the device's 10-min
#                  command limit minus a margin); the study gets what the build leaves
#   STUDY_DIR      study folder (default runs/study-<plan name>)
#   PY             python (default python3: the device image's, which holds torch)
#   DCSBENCH_HOME  dataset cache (default /tmp/dcsbench-home: a lent machine starts bare)
#   BUILD_WORKERS  collection workers (default: the plan's build.workers, else 16)
#   BUILD_ARGS     extra `dcsbench build` arguments (default: the plan's build.args)
set -uo pipefail
T0=$(date +%s)
cd "$(dirname "$0")/.."
PLAN=${1:-studies/plans/first-shard.yaml}
OUT=${OUT:-$PWD/device-out}
WHEELS=${WHEELS:-.whl}
RESUME=${RESUME:-studies/carry}
TOTAL_MINUTES=${TOTAL_MINUTES:-9}
PY=${PY:-python3}
export DCSBENCH_HOME=${DCSBENCH_HOME:-/tmp/dcsbench-home}
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p "$OUT"
LOG="$OUT/device_study.log"
exec > >(tee "$LOG") 2>&1

stamp() { echo "[device_study +$(( $(date +%s) - T0 ))s] $*"; }

# 1. carried wheels, offline (no registry on a lent machine)
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    SITE=/tmp/site
    stamp "installing $(ls "$WHEELS"/*.whl | wc -l) carried wheel(s) from $WHEELS"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl || { stamp "wheel install failed"; exit 3; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    stamp "no wheels in $WHEELS: using the installed packages"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DCS=("$PY" -m dcsbench.cli)
"$PY" -c "import dcsbench, torch, dm_control; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    || { stamp "dcsbench / torch / dm_control cannot be imported"; exit 3; }
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# 2. the plan's datasets
NAME=$("$PY" -c "import sys; from dcsbench.study import load_plan; print(load_plan(sys.argv[1]).name)" "$PLAN") \
    || { stamp "cannot read plan $PLAN"; exit 2; }
STUDY_DIR=${STUDY_DIR:-runs/study-$NAME}
read -r PLAN_WORKERS PLAN_ARGS < <("$PY" -c "
import sys; from dcsbench.study import load_plan
b = load_plan(sys.argv[1]).build; print(b.get('workers', 16), b.get('args', ''))" "$PLAN")
BUILD_WORKERS=${BUILD_WORKERS:-$PLAN_WORKERS}
BUILD_ARGS=${BUILD_ARGS:-$PLAN_ARGS}
for DS in $("${DCS[@]}" study "$PLAN" --list-datasets); do
    if [ -f "$DCSBENCH_HOME/datasets/$DS/manifest.json" ]; then
        stamp "dataset $DS already built"
        continue
    fi
    stamp "building $DS (--workers $BUILD_WORKERS $BUILD_ARGS)"
    # shellcheck disable=SC2086
    "${DCS[@]}" build "$DS" --workers "$BUILD_WORKERS" $BUILD_ARGS 2>&1 | tr '\r' '\n' | grep -v '%|' \
        || { stamp "build of $DS failed"; exit 4; }
    stamp "built $DS"
done

# 3. the next shard, within what is left (the study keeps its own margin for stopping + packing)
LEFT=$("$PY" -c "print(max(0.0, $TOTAL_MINUTES - ($(date +%s) - $T0) / 60 - 0.25))")
RESUME_ARGS=()
if compgen -G "$RESUME/*.tar.gz*" > /dev/null; then
    RESUME_ARGS=(--resume-from "$RESUME")
    stamp "resuming from $(ls "$RESUME" | tr '\n' ' ')"
fi
stamp "study $PLAN -> $STUDY_DIR for at most $LEFT min"
"${DCS[@]}" study "$PLAN" --out "$STUDY_DIR" --max-minutes "$LEFT" --pack "$OUT" \
    --pack-max-files 7 "${RESUME_ARGS[@]}"
RC=$?
stamp "study exit code $RC; returned files:"
ls -l "$OUT"
stamp "total $(( $(date +%s) - T0 )) s"
exit $RC
