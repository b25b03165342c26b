"""Collection throughput: frames/s of ``collect_episodes`` per task, setting and worker count.

Usage: ``python benchmarks/bench_collect.py [--episodes 4] [--length 250] [--tasks ...]``

Each cell collects ``episodes`` fresh episodes of ``length`` steps into a temporary folder and
reports frames/s over the whole call (process start-up, env construction and npz writing
included, as a user sees it). The policy is the committed expert where one exists, else the
seeded random policy (rendering dominates either way; the column says which).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import date

from dcsbench import registry
from dcsbench.data.collect import collect_episodes
from dcsbench.experts import available_experts


def bench(task: str, setting: str, workers: int, episodes: int, length: int) -> tuple[float, str]:
    """Frames/s of one collection run, and the policy used."""
    policy = "expert" if task in available_experts() else "random"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        collect_episodes(task, setting, "procedural", "train", list(range(episodes)), tmp,
                         workers=workers, policy=policy, episode_length=length, progress=False)
        return episodes * length / (time.perf_counter() - t0), policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--length", type=int, default=250)
    parser.add_argument("--tasks", nargs="+", default=list(registry.TASKS))
    parser.add_argument("--settings", nargs="+", default=list(registry.SETTINGS))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"# collect throughput, {date.today()}, {platform.processor() or platform.machine()}, "
          f"{args.episodes} episodes x {args.length} steps per cell\n")
    print("| task | setting | policy | " + " | ".join(f"{w} worker(s) frames/s" for w in args.workers) + " |")
    print("|---|---|---|" + "---|" * len(args.workers))
    for task in args.tasks:
        for setting in args.settings:
            rates = []
            for w in args.workers:
                fps, policy = bench(task, setting, w, args.episodes, args.length)
                rates.append(f"{fps:.0f}")
            print(f"| {task} | {setting} | {policy} | " + " | ".join(rates) + " |", flush=True)


if __name__ == "__main__":
    main()
