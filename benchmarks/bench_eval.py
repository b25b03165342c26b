"""Online-evaluation throughput: environment steps/s of a trivial (zero-action) agent.

Runs :func:`dcsbench.rollouts.run_episodes` for ``--episodes`` episodes of
``--steps`` steps with 1, 2 and 5 environments per wave, in the vector modes of ``--modes``
(``sync``, ``async``, ``workers``; see ``dcsbench/rollouts.py``), and prints a markdown table
(steps/s including env construction, worker start-up and resets, and the implied time of one
protocol evaluation pool: 25 episodes x 1000 steps). ``workers`` rows also give the workers'
start-up time and the steps/s of the stepping alone (wall minus start-up).

``--agent both`` (the default) times each configuration twice, interleaved: with the agent's
``act`` called in the harness's process (as before the process split) and through
:class:`dcsbench.isolation.AgentProcess` (the agent in its own worker process, observations
through shared memory: what ``dcsbench run`` does). The CPU column counts this process and its reaped children (env workers, async sub-envs; not
the agent process) per env step: a load-independent view of the work a mode adds. With
``--repeats N`` the whole grid of
modes and agents is run N times, interleaved (mode A, mode B, ..., then again), and the best
of each cell is kept: on a shared machine that compares modes under the same load.

``--scaling 1,2,4,8,16`` instead times ``workers`` mode with that many worker processes, one
wave of ``--scaling-envs`` sub-envs (default 25: one protocol pool), ``--steps`` steps each.

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
          act=None, workers: int | None = None) -> dict:
    """Time one evaluation; returns steps/s and the extrapolated protocol-pool time.
    ``act``: the policy (default: zero actions in this process); ``workers``: processes of
    ``mode="workers"`` (default: one per core)."""
    from dcsbench import catalogue
    from dcsbench.rollouts import run_episodes

    dim = _action_dim(task, setting)
    if act is None:
        act = lambda obs: np.zeros((len(obs), dim), np.float32)  # noqa: E731
    seeds = catalogue.EVAL_EPISODE_SEEDS[:episodes] if episodes <= catalogue.EVAL_EPISODES \
        else list(range(1000, 1000 + episodes))
    startup = None
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    if mode == "workers":
        from dcsbench.envs.workers import EnvWorkers

        with EnvWorkers(task, setting, "train", capacity=min(num_envs, episodes), workers=workers,
                        episode_length=steps, copy_obs=False) as pool:
            startup = time.perf_counter() - t0
            run_episodes(act, task, setting, "procedural", "train", seeds=seeds,
                            num_envs=num_envs, episode_length=steps, mode=mode, progress=False,
                            env_pool=pool)
            dt = time.perf_counter() - t0
    else:
        run_episodes(act, task, setting, "procedural", "train", seeds=seeds, num_envs=num_envs,
                        episode_length=steps, mode=mode, progress=False)
        dt = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    sps = episodes * steps / dt
    pool_s = catalogue.EVAL_EPISODES * catalogue.EPISODE_LENGTH / sps
    return {"num_envs": num_envs, "mode": mode, "seconds": dt, "steps_per_s": sps,
            "episodes_per_s_1000": sps / catalogue.EPISODE_LENGTH, "pool_minutes": pool_s / 60,
            "startup": startup, "cpu_ms_per_step": cpu / (episodes * steps) * 1e3,
            "stepping_per_s": None if startup is None else episodes * steps / (dt - startup)}


def _cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its finished children (the env workers
    and async sub-env processes, reaped when the vector env closes; not the agent process)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


_DIMS: dict = {}


def _action_dim(task: str, setting: str) -> int:
    if (task, setting) not in _DIMS:
        from dcsbench.envs import make_env

        env = make_env(task, setting)
        _DIMS[task, setting] = int(env.action_space.shape[0])
        env.close()
    return _DIMS[task, setting]


def _warm_clips(seeds, pool: str = "train") -> None:
    """Put the background clips these episode seeds play into the shared clip disk cache first,
    so that no timed run (and no worker count) pays for generating them."""
    from dcsbench.envs import backgrounds

    src = backgrounds.ProceduralSource(64)
    n = backgrounds.PROCEDURAL_POOL_SIZES[pool]
    for seed in seeds:   # the video index DCSEnv.reset(seed) draws (its "background" child)
        child = np.random.SeedSequence(int(seed)).spawn(4)[1]
        src.clip(pool, int(np.random.default_rng(child).integers(n)))


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def scaling(args, proc) -> None:
    """``workers`` mode with 1, 2, 4, ... processes: one wave of ``--scaling-envs`` sub-envs."""
    n = args.scaling_envs
    print(f"\n## workers scaling: one wave of {n} sub-envs x {args.steps} steps "
          f"(agent: {'worker process' if proc else 'in-process'})\n")
    print("| workers | wall s | start-up s | steps/s (wall) | steps/s (stepping) | "
          "50 episodes x 1000 steps, s (stepping + one start-up) |")
    print("|---|---|---|---|---|---|")
    base = None
    for w in [int(x) for x in args.scaling.split(",")]:
        best = None
        for _ in range(max(1, args.repeats)):
            r = bench(args.task, args.setting, n, "workers", n, args.steps,
                      act=proc.act if proc else None, workers=w)
            if best is None or r["stepping_per_s"] > best["stepping_per_s"]:
                best = r
        base = base or best["stepping_per_s"]
        fifty = 50 * 1000 / best["stepping_per_s"] + best["startup"]
        print(f"| {w} | {best['seconds']:.1f} | {best['startup']:.1f} | "
              f"{best['steps_per_s']:.0f} | {best['stepping_per_s']:.0f} "
              f"({best['stepping_per_s'] / base:.1f}x) | {fifty:.1f} |", flush=True)


def main() -> None:
    """Run the grid and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="cheetah-run")
    p.add_argument("--setting", default="distractors")
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--envs", default="1,2,5", help="comma-separated envs per wave")
    p.add_argument("--modes", default="sync,async,workers", help="comma-separated vector modes")
    p.add_argument("--workers", type=int, default=None,
                   help="processes of the workers mode (default: one per core)")
    p.add_argument("--agent", choices=("in-process", "worker", "both"), default="both",
                   help="where the agent runs (both: interleaved, for a fair comparison)")
    p.add_argument("--repeats", type=int, default=1, help="timings per cell (the best is kept)")
    p.add_argument("--scaling", default=None, metavar="W,W,...",
                   help="time the workers mode with these process counts instead of the grid")
    p.add_argument("--scaling-envs", type=int, default=25, help="sub-envs of the scaling wave")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    try:
        load = "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = "load average n/a"
    print(f"# bench_eval: {args.task} {args.setting}, {args.episodes} episodes x {args.steps} "
          f"steps, zero-action agent")
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} | {platform.platform()} | "
          f"{os.cpu_count()} CPUs | {load} | MUJOCO_GL={os.environ.get('MUJOCO_GL')}\n")
    dim = _action_dim(args.task, args.setting)
    agents = ["in-process", "worker"] if args.agent == "both" else [args.agent]
    proc = _worker(args.task, args.setting, dim) if "worker" in agents else None
    bench(args.task, args.setting, 1, "sync", 1, 10)  # warm-up: imports, first render context
    from dcsbench import catalogue

    n_seeds = max(args.episodes, args.scaling_envs if args.scaling else 0)
    _warm_clips(catalogue.EVAL_EPISODE_SEEDS[:n_seeds] if n_seeds <= catalogue.EVAL_EPISODES
                else range(1000, 1000 + n_seeds))
    try:
        if args.scaling:
            scaling(args, proc)
            return
        print("| envs/wave | mode | agent | wall s | steps/s | 1000-step episodes/s | "
              "one pool (25x1000) min | workers start-up s | steps/s after start-up | "
              "CPU ms/step (incl. start-up) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        modes = args.modes.split(",")
        for num_envs in [int(x) for x in args.envs.split(",")]:
            best: dict = {}
            for _ in range(max(1, args.repeats)):
                for mode in modes:
                    for who in agents:
                        r = bench(args.task, args.setting, num_envs, mode, args.episodes,
                                  args.steps, act=proc.act if who == "worker" else None,
                                  workers=args.workers)
                        key = (mode, who)
                        if key not in best or r["steps_per_s"] > best[key]["steps_per_s"]:
                            best[key] = r
            for mode in modes:
                for who in agents:
                    r = best[mode, who]
                    print(f"| {r['num_envs']} | {r['mode']} | {who} | {r['seconds']:.1f} | "
                          f"{r['steps_per_s']:.0f} | {r['episodes_per_s_1000']:.3f} | "
                          f"{r['pool_minutes']:.1f} | {_fmt(r['startup'], '.1f')} | "
                          f"{_fmt(r['stepping_per_s'], '.0f')} | "
                          f"{r['cpu_ms_per_step']:.2f} |", flush=True)
    finally:
        if proc is not None:
            proc.close()


if __name__ == "__main__":
    main()
