"""Gait of a state-based expert: why its return is what it is.

Usage: ``python benchmarks/expert_gait.py TASK [--path FILE.safetensors] [--episodes 5]``

Rolls the deterministic policy (the committed expert, or ``--path``, e.g. a run's
``export/TASK.safetensors``) on the state env with the expert-evaluation seeds and prints, per
episode, the task return, the fraction of steps upright (the task's stand height reached), the
mean forward speed overall and while upright, and the mean height. For hopper-hop the task
reward is ``upright * speed / 2`` (capped at speed 2), so these columns decompose the return.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np

from dcsbench.experts import load_expert
from dcsbench.experts.stateenv import STAND_HEIGHT, StateEnv
from dcsbench.experts.runs import EXPERT_EVAL_SEEDS

#: Forward-speed readout of each task's physics (dm_control names).
SPEED = {"hopper-hop": lambda p: p.speed(), "walker-run": lambda p: p.horizontal_velocity(),
         "humanoid-walk": lambda p: p.center_of_mass_velocity()[0]}


def gait(task: str, policy, seed: int) -> dict:
    """One deterministic episode: return and gait statistics."""
    readout, stand = STAND_HEIGHT[task]
    env = StateEnv(task)
    state, _ = env.reset(seed=seed)
    heights, speeds, ret, done = [], [], 0.0, False
    while not done:
        state, _, _, done, info = env.step(policy(state))
        physics = env._env.physics
        heights.append(float(getattr(physics, readout)()))
        speeds.append(float(SPEED[task](physics)))
        ret += info["task_reward"]
    env.close()
    h, v = np.array(heights), np.array(speeds)
    up = h >= stand
    return {"return": ret, "upright": up.mean(), "speed": v.mean(),
            "speed_upright": v[up].mean() if up.any() else float("nan"), "height": h.mean()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(STAND_HEIGHT))
    parser.add_argument("--path", default=None, help="a .safetensors expert (default: committed)")
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args()
    policy = load_expert(args.task, args.path)
    print(f"# {args.task} gait, {args.path or 'committed expert'}, steps "
          f"{policy.metadata.get('steps', '?')}\n")
    print("| episode seed | task return | upright fraction | mean speed | speed while upright | mean height |")
    print("|---|---|---|---|---|---|")
    rows = [gait(args.task, policy, s) for s in EXPERT_EVAL_SEEDS[:args.episodes]]
    for seed, r in zip(EXPERT_EVAL_SEEDS, rows):
        print(f"| {seed} | {r['return']:.1f} | {r['upright']:.2f} | {r['speed']:.2f} | "
              f"{r['speed_upright']:.2f} | {r['height']:.2f} |")
    mean = {k: np.mean([r[k] for r in rows]) for k in rows[0]}
    print(f"| mean | {mean['return']:.1f} | {mean['upright']:.2f} | {mean['speed']:.2f} | "
          f"{mean['speed_upright']:.2f} | {mean['height']:.2f} |")


if __name__ == "__main__":
    main()
