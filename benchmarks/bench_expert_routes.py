"""Compare expert-training routes on one task at an equal budget of environment steps.

Each route trains from scratch on the state env (:class:`dcsbench.experts.stateenv.StateEnv`,
the env ``dcsbench train-expert`` uses), seed 0, one env, for ``--steps`` env steps or until
``--minutes`` of wall time, whichever comes first, then reports:

* ``sps_learn``: env steps per second once gradient updates run, timed from the end of the
  first 1000-step episode with updates (so jit compilation is left out);
* ``sps_cpu``: the same steps per second of this process's CPU time (what the route would do
  on a core of its own; the sandbox's cores are shared, so wall-clock rates vary with load);
* ``train_return``: mean task return of the last (up to) 10 training episodes;
* ``eval_return``: deterministic return over ``--eval-episodes`` episodes (card seeds).

Routes (``--routes``, comma-separated; all by default):

* ``sb3-sac``: today's stable-baselines3 SAC (torch), the ``--algo sac`` defaults plus n_step=3;
* ``sbx-sac``: SAC in sbx (JAX, jit-compiled updates), same sizes;
* ``sbx-crossq``: CrossQ in sbx with a 256x256 critic (CPU-sized), batch renorm, no target net;
* ``sbx-crossq1024``: CrossQ with sbx's default 1024x1024 critic;
* ``sbx-tqc``: TQC in sbx (distributional critics, 5 x 25 quantiles);
* ``sbx-sac-utd4``: sbx SAC with 4 gradient steps per env step;
* ``env-only``: the physics alone (random actions), the ceiling for any learner here.

Usage (one core, niced, as the numbers in benchmarks/RESULTS-experts.md were taken)::

    OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        nice -n 19 taskset -c 1 python benchmarks/bench_expert_routes.py --steps 30000 --minutes 10

Writes one JSON line per route to stdout and to ``--out`` (appending).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

ROUTES = ("env-only", "sb3-sac", "sbx-sac", "sbx-crossq", "sbx-crossq1024", "sbx-tqc", "sbx-sac-utd4")


def _env(task: str, seed: int):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from dcsbench.experts.stateenv import StateEnv
    return VecMonitor(DummyVecEnv([lambda: StateEnv(task, seed=seed)]), info_keywords=("task_return",))


def _model(route: str, env, seed: int, learning_starts: int):
    """The learner of ``route`` on ``env`` (a VecEnv with one env)."""
    common = dict(buffer_size=1_000_000, batch_size=256, learning_starts=learning_starts,
                  gamma=0.99, verbose=0, seed=seed)
    if route == "sb3-sac":
        import torch
        from stable_baselines3 import SAC
        torch.set_num_threads(1)
        return SAC("MlpPolicy", env, learning_rate=3e-4, tau=0.005, n_steps=3, device="cpu",
                   policy_kwargs=dict(net_arch=[256, 256]), **common)
    import sbx
    if route in ("sbx-sac", "sbx-sac-utd4"):
        return sbx.SAC("MlpPolicy", env, learning_rate=3e-4, tau=0.005, n_steps=3,
                       gradient_steps=4 if route.endswith("utd4") else 1,
                       policy_kwargs=dict(net_arch=[256, 256]), **common)
    if route == "sbx-tqc":
        return sbx.TQC("MlpPolicy", env, learning_rate=3e-4, tau=0.005, n_steps=3,
                       policy_kwargs=dict(net_arch=[256, 256]), **common)
    if route in ("sbx-crossq", "sbx-crossq1024"):
        qf = [1024, 1024] if route.endswith("1024") else [256, 256]
        return sbx.CrossQ("MlpPolicy", env, learning_rate=1e-3,
                          policy_kwargs=dict(net_arch=dict(pi=[256, 256], qf=qf)), **common)
    raise ValueError(f"unknown route {route!r}; valid: {', '.join(ROUTES)}")


def _deterministic_eval(model, task: str, episodes: int) -> list[float]:
    from dcsbench.experts.stateenv import evaluate_state_policy
    from dcsbench.experts.runs import EXPERT_EVAL_SEEDS

    def act(state):
        return model.predict(state[None].astype(np.float32), deterministic=True)[0][0]

    return evaluate_state_policy(act, task, EXPERT_EVAL_SEEDS[:episodes])


def run_route(route: str, task: str, steps: int, minutes: float, learning_starts: int,
              eval_episodes: int, seed: int = 0) -> dict:
    """Train ``route`` for ``steps`` env steps (or ``minutes``) and return its measurements."""
    env = _env(task, seed)
    t0, cpu0 = time.monotonic(), time.process_time()
    if route == "env-only":
        env.reset()
        rng = np.random.default_rng(seed)
        n = min(steps, 20_000)
        for _ in range(n):
            env.step(rng.uniform(-1, 1, (1, env.action_space.shape[0])).astype(np.float32))
        dt, cpu = time.monotonic() - t0, time.process_time() - cpu0
        env.close()
        return {"route": route, "task": task, "steps": n, "sps_learn": round(n / dt, 1),
                "sps_cpu": round(n / cpu, 1), "wall_s": round(dt, 1)}
    model = _model(route, env, seed, learning_starts)
    returns: list[float] = []
    curve = []
    t_learn = None
    chunk = 1000  # one episode per learn() call
    model.learn(chunk, reset_num_timesteps=True, log_interval=None)
    while True:
        for info in model.ep_info_buffer:
            returns.append(float(info.get("task_return", info["r"])))
        model.ep_info_buffer.clear()
        curve.append([int(model.num_timesteps), round(float(np.mean(returns[-10:])), 2)])
        # timed from the end of the first episode with updates: jit compilation left out
        if t_learn is None and model.num_timesteps >= learning_starts + chunk:
            t_learn, s_learn, cpu_learn = time.monotonic(), model.num_timesteps, time.process_time()
        if model.num_timesteps >= steps or time.monotonic() - t0 > 60 * minutes:
            break
        model.learn(chunk, reset_num_timesteps=False, log_interval=None)
    t_end, cpu_end = time.monotonic(), time.process_time()
    sps = (model.num_timesteps - s_learn) / (t_end - t_learn) if t_learn and t_end > t_learn else float("nan")
    sps_cpu = ((model.num_timesteps - s_learn) / (cpu_end - cpu_learn)
               if t_learn and cpu_end > cpu_learn else float("nan"))
    evals = _deterministic_eval(model, task, eval_episodes) if eval_episodes else []
    env.close()
    return {"route": route, "task": task, "steps": int(model.num_timesteps),
            "sps_learn": round(sps, 1), "sps_cpu": round(sps_cpu, 1), "wall_s": round(t_end - t0, 1),
            "train_return": round(float(np.mean(returns[-10:])), 2) if returns else None,
            "eval_return": round(float(np.mean(evals)), 2) if evals else None,
            "eval_std": round(float(np.std(evals)), 2) if evals else None, "curve": curve}


def main() -> None:
    """Run the selected routes one after another and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="humanoid-walk")
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--learning-starts", type=int, default=5000)
    ap.add_argument("--eval-episodes", type=int, default=5)
    ap.add_argument("--out", default=None, help="append the JSON lines to this file too")
    args = ap.parse_args()
    for route in args.routes.split(","):
        rec = run_route(route, args.task, args.steps, args.minutes, args.learning_starts,
                        args.eval_episodes)
        line = json.dumps(rec)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
