#!/usr/bin/env bash
# Expert-training and collection speed on a many-core GPU machine, in one short script (~5 min).
#
# Usage: bash benchmarks/device_checks.sh OUTDIR [MINUTES]
#
# Part A, SAC learner: 1-env SAC runs of `dcsbench train-expert` for hopper-hop and humanoid-walk,
# learner on the CPU (one torch thread) and on CUDA, all four at once (one core each, so they do
# not compete), each for MINUTES (default 2) with learning_starts=1000 so the timed part is
# gradient-bound like a real run. steps/s = the last rows of each run's progress.csv.
# Part B, collection: `benchmarks/bench_collect.py` (1 and 2 workers, 4 x 500-step episodes per
# cell, all tasks and settings) on an otherwise idle machine.
# Everything is printed and copied to OUTDIR. Needs MUJOCO_GL set to a working backend.
# Run on the H200 machine of 2026-11-30 (figures: benchmarks/RESULTS-experts.md) with dcsbench's
# runtime dependencies installed from carried wheels, a `dcsbench` launcher on PATH, MUJOCO_GL=egl
# and __EGL_VENDOR_LIBRARY_FILENAMES pointing at NVIDIA's EGL vendor file.
set -uo pipefail
out=${1:?usage: bash benchmarks/device_checks.sh OUTDIR [MINUTES]}
minutes=${2:-2}
mkdir -p "$out"
tmp=$(mktemp -d)
echo "# device checks $(date -u +%FT%TZ) on $(nproc) cores; $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no cuda")')"

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

echo "## B: collection frames/s"
python3 benchmarks/bench_collect.py --episodes 4 --length 500 --workers 1 2 2>&1 | tee "$out/collect.md"
rm -rf "$tmp"
