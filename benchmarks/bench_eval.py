"""Online-evaluation throughput: environment steps/s of a trivial (zero-action) agent.

Runs :func:`dcsbench.evaluation.evaluate_policy` for ``--episodes`` episodes of
``--steps`` steps with 1, 2 and 5 environments per wave, ``sync`` and ``async`` vector modes, and
prints a markdown table (steps/s including env construction and resets, and the implied time
of one protocol evaluation pool: 25 episodes x 1000 steps).

``--agent both`` (the default) times each configuration twice, interleaved: with the agent's
``act`` called in the harness's process (as before the process split) and through
:class:`dcsbench.isolation.AgentProcess` (the agent in its own worker process, observations
through shared memory: what ``dcsbench run`` does).

    MUJOCO_GL=egl python benchmarks/bench_eval.py [--task cheetah-run] [--episodes 4] [--steps 250]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np

from dcsbench.agent import Agent


class ZeroAgent(Agent):
    """Zero actions (the cheapest possible policy: the benchmark measures the harness)."""

    name = "zero"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):  # noqa: D102
        self.dim = spec.action_dim

    def act(self, obs):  # noqa: D102
        return np.zeros((len(obs), self.dim), np.float32)


def _worker(task: str, setting: str, dim: int):
    """A fitted ZeroAgent in its own process (tiny dummy views: the frames are not used)."""
    from dcsbench.agent import EnvSpec
    from dcsbench.data import make_views_from_arrays
    from dcsbench.isolation import AgentProcess

    frames = [np.zeros((4, 64, 64, 3), np.uint8)] * 2
    unl, lab = make_views_from_arrays(frames, [np.zeros((4, dim), np.float32)] * 2, [0])
    proc = AgentProcess(ZeroAgent(), unl, lab, torch_threads=1)
    proc.fit(EnvSpec(task, setting, (64, 64, 9), (64, 64, 3), 3, dim), 1, 0)
    return proc


def bench(task: str, setting: str, num_envs: int, mode: str, episodes: int, steps: int,
          act=None) -> dict:
    """Time one evaluation; returns steps/s and the extrapolated protocol-pool time.
    ``act``: the policy (default: zero actions in this process)."""
    from dcsbench import registry
    from dcsbench.envs import make_vector_env
    from dcsbench.evaluation import evaluate_policy

    dim = make_vector_env(task, setting, num_envs=1).single_action_space.shape[0]
    if act is None:
        act = lambda obs: np.zeros((len(obs), dim), np.float32)  # noqa: E731
    seeds = registry.EVAL_EPISODE_SEEDS[:episodes]
    t0 = time.perf_counter()
    evaluate_policy(act, task, setting, "procedural", "train", seeds=seeds, num_envs=num_envs,
                    episode_length=steps, mode=mode, progress=False)
    dt = time.perf_counter() - t0
    sps = episodes * steps / dt
    pool = registry.EVAL_EPISODES * registry.EPISODE_LENGTH / sps
    return {"num_envs": num_envs, "mode": mode, "seconds": dt, "steps_per_s": sps,
            "episodes_per_s_1000": sps / registry.EPISODE_LENGTH, "pool_minutes": pool / 60}


def main() -> None:
    """Run the grid and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="cheetah-run")
    p.add_argument("--setting", default="distractors")
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--envs", default="1,2,5", help="comma-separated envs per wave")
    p.add_argument("--modes", default="sync,async", help="comma-separated vector modes")
    p.add_argument("--agent", choices=("in-process", "worker", "both"), default="both",
                   help="where the agent runs (both: interleaved, for a fair comparison)")
    p.add_argument("--repeats", type=int, default=1, help="timings per cell (the best is kept)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"# bench_eval: {args.task} {args.setting}, {args.episodes} episodes x {args.steps} "
          f"steps, zero-action agent")
    print(f"# {datetime.date.today()} | {platform.platform()} | {os.cpu_count()} CPUs | "
          f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}\n")
    print("| envs/wave | mode | agent | wall s | steps/s | 1000-step episodes/s | "
          "one pool (25x1000) min |")
    print("|---|---|---|---|---|---|---|")
    from dcsbench.envs import make_vector_env

    dim = make_vector_env(args.task, args.setting, num_envs=1).single_action_space.shape[0]
    agents = ["in-process", "worker"] if args.agent == "both" else [args.agent]
    proc = _worker(args.task, args.setting, dim) if "worker" in agents else None
    bench(args.task, args.setting, 1, "sync", 1, 10)  # warm-up: imports, first render context
    try:
        for num_envs in [int(x) for x in args.envs.split(",")]:
            for mode in args.modes.split(","):
                best = {}
                for _ in range(max(1, args.repeats)):
                    for who in agents:
                        r = bench(args.task, args.setting, num_envs, mode, args.episodes,
                                  args.steps, act=proc.act if who == "worker" else None)
                        if who not in best or r["steps_per_s"] > best[who]["steps_per_s"]:
                            best[who] = r
                for who in agents:
                    r = best[who]
                    print(f"| {r['num_envs']} | {r['mode']} | {who} | {r['seconds']:.1f} | "
                          f"{r['steps_per_s']:.0f} | {r['episodes_per_s_1000']:.3f} | "
                          f"{r['pool_minutes']:.1f} |", flush=True)
    finally:
        if proc is not None:
            proc.close()


if __name__ == "__main__":
    main()
