#!/usr/bin/env bash
# Expert-training and collection speed on a many-core GPU machine, in one short script (~5 min).
#
# Usage: bash benchmarks/device_checks.sh OUTDIR [MINUTES] [PARTS]
#
# PARTS: which parts to run, a string of letters (default ABCD; e.g. CD for the pipeline
# scaling alone, ~4 min).
#
# Part A, SAC learner: 1-env SAC runs of `dcsbench train-expert` for hopper-hop and humanoid-walk,
# learner on the CPU (one torch thread) and on CUDA, all four at once (one core each, so they do
# not compete), each for MINUTES (default 2) with learning_starts=1000 so the timed part is
# gradient-bound like a real run. steps/s = the last rows of each run's progress.csv.
# Part B, collection: `benchmarks/bench_collect.py` (1 and 2 workers, 4 x 500-step episodes per
# cell, all tasks and settings) on an otherwise idle machine.
# Part C, evaluation scaling: `benchmarks/bench_eval.py --scaling 1,2,4,8,16`: workers mode, one
# wave of 25 sub-envs (a protocol pool) x 200 steps, the zero agent in its own process (one
# batched act per step), cheetah-run distractors; prints start-up and stepping steps/s and the
# implied time of 50 x 1000-step episodes (goal: >= 8,000 steps/s, <= 7 s).
# Part D, collection scaling: `benchmarks/bench_collect.py --detail`, cheetah-run distractors,
# 32 x 500-step episodes, 1/2/4/8/16 workers (two or more episodes per worker, so start-up is
# not the whole run): frames/s over the call, start-up, steady frames/s and where the workers'
# time went (env / policy / write). Goal: steady rate at 16 workers >= 12x one worker's.
# Everything is printed and copied to OUTDIR. Needs MUJOCO_GL set to a working backend.
# Run on the H200 machine of 2026-11-30 (figures: benchmarks/RESULTS-experts.md) with dcsbench's
# runtime dependencies installed from carried wheels, a `dcsbench` launcher on PATH, MUJOCO_GL=egl
# and __EGL_VENDOR_LIBRARY_FILENAMES pointing at NVIDIA's EGL vendor file.
set -uo pipefail
out=${1:?usage: bash benchmarks/device_checks.sh OUTDIR [MINUTES]}
minutes=${2:-2}
parts=${3:-ABCD}
mkdir -p "$out"
tmp=$(mktemp -d)
echo "# device checks $(date -u +%FT%TZ) on $(nproc) cores; $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no cuda")')"

if [[ $parts == *A* ]]; then
echo "## A: SAC learner speed (1 env, train-expert, ${minutes} min each, 4 runs at once)"
for task in hopper-hop humanoid-walk; do
  for dev in cpu cuda; do
    OMP_NUM_THREADS=1 dcsbench train-expert "$task" --algo sac --n-envs 1 --seed 0 \
      --set n_step=3 --set learning_starts=1000 --torch-threads 1 --device "$dev" \
      --total-steps 1000000 --max-minutes "$minutes" --checkpoint-minutes 60 \
      --out "$tmp/sac-$task-$dev" > "$tmp/sac-$task-$dev.log" 2>&1 &
  done
done
wait
echo "| task | learner | steps reached | steps/s (mean over progress rows past 2,000 steps) |"
echo "|---|---|---|---|"
for task in hopper-hop humanoid-walk; do
  for dev in cpu cuda; do
    csv="$tmp/sac-$task-$dev/progress.csv"
    if [ -s "$csv" ]; then
      python3 - "$csv" "$task" "$dev" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
# rows after the first 1000 learning steps: gradient-bound, like a long run
timed = [r for r in rows if int(r["steps"]) > 2000] or rows[-1:]
sps = sum(float(r["steps_per_s"]) for r in timed) / len(timed)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {rows[-1]['steps']} | {sps:.0f} |")
EOF
    else
      echo "| $task | $dev | failed | see log |"; tail -5 "$tmp/sac-$task-$dev.log"
    fi
    cp "$tmp/sac-$task-$dev.log" "$out/" 2>/dev/null
  done
done

fi

if [[ $parts == *B* ]]; then
echo "## B: collection frames/s"
python3 benchmarks/bench_collect.py --episodes 4 --length 500 --workers 1 2 2>&1 | tee "$out/collect.md"
fi

if [[ $parts == *C* ]]; then
echo "## C: evaluation scaling, workers mode (25 sub-envs x 200 steps, agent in its own process)"
PYTHONUNBUFFERED=1 timeout 300 python3 benchmarks/bench_eval.py --agent worker \
  --scaling 1,2,4,8,16 --scaling-envs 25 --steps 200 2>&1 | tee "$out/eval_scaling.md"
fi

if [[ $parts == *D* ]]; then
echo "## D: collection scaling (cheetah-run distractors, 32 x 500 steps)"
PYTHONUNBUFFERED=1 timeout 300 python3 benchmarks/bench_collect.py --tasks cheetah-run \
  --settings distractors --episodes 32 --length 500 --workers 1 2 4 8 16 --detail 2>&1 \
  | tee "$out/collect_scaling.md"
fi
rm -rf "$tmp"
