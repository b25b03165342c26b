"""Collection throughput: frames/s of ``collect_episodes`` per task, setting and worker count.

Usage: ``python benchmarks/bench_collect.py [--episodes 4] [--length 250] [--tasks ...]
[--workers 1 2] [--repeats 1] [--detail]``

Each cell collects ``episodes`` fresh episodes of ``length`` steps into a temporary folder and
reports frames/s over the whole call (process start-up, env construction and npz writing
included, as a user sees it). The policy is the committed expert where one exists, else the
seeded random policy (rendering dominates either way; the column says which).
With ``--repeats N`` the worker counts are run N times interleaved (1, 2, ..., 1, 2, ...) and
the best of each is kept (fair on a shared machine).

``--detail`` prints, per cell, what ``collect.json`` records of the run: the workers' start-up
(spawn, imports, env and expert construction, until the last worker was ready), frames/s
after start-up ("steady": what a long collection approaches), and where the workers' time went
(env = physics + rendering + distractors, policy, write = npz encoding + fsync), and the
speed-up of the steady rate over the first worker count. A short benchmark is dominated by
start-up: 8 workers with one 1,000-step episode each spend most of their time starting.
The background clips of the seeds are put into the shared clip disk cache before timing.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime

from dcsbench import catalogue
from dcsbench.data.collect import collect_episodes
from dcsbench.experts import available_experts


def bench(task: str, setting: str, workers: int, episodes: int, length: int) -> dict:
    """One collection run: frames/s over the call, the policy used and ``collect.json``'s
    ``last_run`` (start-up, steady frames/s, worker seconds per part)."""
    policy = "expert" if task in available_experts() else "random"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        collect_episodes(task, setting, "procedural", "train", list(range(episodes)), tmp,
                         workers=workers, policy=policy, episode_length=length, progress=False)
        fps = episodes * length / (time.perf_counter() - t0)
        with open(os.path.join(tmp, "collect.json"), encoding="utf-8") as f:
            last = json.load(f)["last_run"]
    return {"fps": fps, "policy": policy, **last}


def warm_clips(n_episodes: int, pool: str = "train") -> None:
    """Put the background clips of episode seeds ``0..n_episodes-1`` into the shared clip disk
    cache first, so that the first worker count timed does not pay for generating them."""
    import numpy as np

    from dcsbench.envs import backgrounds

    src = backgrounds.ProceduralSource(64)
    n = backgrounds.PROCEDURAL_POOL_SIZES[pool]
    for seed in range(n_episodes):   # the video index DCSEnv.reset(seed) draws
        child = np.random.SeedSequence(seed).spawn(4)[1]
        src.clip(pool, int(np.random.default_rng(child).integers(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--length", type=int, default=250)
    parser.add_argument("--tasks", nargs="+", default=list(catalogue.TASKS))
    parser.add_argument("--settings", nargs="+", default=list(catalogue.SETTINGS))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per cell, interleaved over worker counts; the best is kept")
    parser.add_argument("--detail", action="store_true",
                        help="also print start-up, steady frames/s and the workers' time split")
    args = parser.parse_args()
    try:
        load = "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = "load average n/a"
    print(f"# collect throughput, {datetime.now():%Y-%m-%d %H:%M}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {load}, "
          f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}, {args.episodes} episodes x {args.length} "
          f"steps per cell, best of {args.repeats}\n")
    print("| task | setting | policy | " + " | ".join(f"{w} worker(s) frames/s" for w in args.workers) + " |")
    print("|---|---|---|" + "---|" * len(args.workers))
    details = []
    warm_clips(args.episodes)
    for task in args.tasks:
        for setting in args.settings:
            best: dict[int, dict] = {}
            for _ in range(max(1, args.repeats)):
                for w in args.workers:
                    r = bench(task, setting, w, args.episodes, args.length)
                    if w not in best or r["fps"] > best[w]["fps"]:
                        best[w] = r
            policy = best[args.workers[0]]["policy"]
            print(f"| {task} | {setting} | {policy} | "
                  + " | ".join(f"{best[w]['fps']:.0f}" for w in args.workers) + " |", flush=True)
            details.append((task, setting, best))
    if args.detail:
        print("\n| task | setting | workers | frames/s | start-up s | steady frames/s | steady "
              "speed-up | worker time: env / policy / write |")
        print("|---|---|---|---|---|---|---|---|")
        for task, setting, best in details:
            base = best[args.workers[0]].get("steady_frames_per_second") or 0
            for w in args.workers:
                r = best[w]
                parts = r.get("worker_seconds") or {}
                total = sum(parts.values()) or 1.0
                split = " / ".join(f"{100 * parts.get(k, 0) / total:.0f}%"
                                   for k in ("env", "policy", "write"))
                steady = r.get("steady_frames_per_second") or 0
                speed = f"{steady / base:.2f}x" if base else "-"
                print(f"| {task} | {setting} | {w} | {r['fps']:.0f} | {r.get('startup_s', 0):.1f} | "
                      f"{steady:.0f} | {speed} | {split} |", flush=True)


if __name__ == "__main__":
    main()
