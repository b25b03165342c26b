"""A ``train-expert`` run folder as a whole: its identity (``run.json``, the command that
reproduces it), forks of it, and what leaves it: the policy of a checkpoint or snapshot, an
exported expert with its card (:func:`export_run`, :func:`select_run`), a packed copy without the
replay buffer (:func:`pack_run`) and the installed expert (:func:`install_export`).

``run.json`` keys: ``task``, ``algo``, ``seed``, ``n_envs``, ``config``, ``chunks`` (one per
``train-expert`` call: steps, reason, seconds, versions, a warm start), ``created``,
``total_steps``, ``route``, ``command``, ``train_seconds`` and, for a fork, ``forked_from``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dcsbench import catalogue
from dcsbench.experts.checkpoint import (REPLAY_FILE, _latest_checkpoint, _policy_file,
                                         _resolve_checkpoint, _snapshots)
from dcsbench.experts.config import (_ALGO_NAMES, _REPLAY_SAFE, _SPEED_ONLY, ALGOS, JAX_ALGOS,
                                     OFF_POLICY, algo_of, route_of)
from dcsbench.results import atomic_write_text

#: Episode seeds of the 20-episode evaluation on an expert's card (disjoint from data seeds).
EXPERT_EVAL_SEEDS: tuple[int, ...] = tuple(3_000_000 + i for i in range(100))
#: Episode seeds on which :func:`select_run` compares a run's snapshots: disjoint from the card's
#: seeds, so the card's evaluation of the chosen policy is not inflated by the choice.
SELECTION_SEEDS: tuple[int, ...] = tuple(4_000_000 + i for i in range(100))


def canonical_command(task: str, total_steps: int, n_envs: int, seed: int, algo: str = "ppo",
                      overrides: dict | None = None) -> str:
    """The command that reproduces a run (output folder and time limits do not change results);
    ``overrides`` (see :func:`config_overrides`) become ``--set KEY=VALUE`` options."""
    cmd = f"dcsbench train-expert {task} --total-steps {total_steps} --n-envs {n_envs} --seed {seed}"
    cmd += f" --algo {algo}" if algo != "ppo" else ""
    for key, value in sorted((overrides or {}).items()):
        cmd += f" --set {key}={json.dumps(value, separators=(',', ':'))}"
    return cmd


def _read_run(run_file: Path) -> dict:
    """A run's ``run.json`` with the defaults of older runs filled in: ``algo`` (PPO before SAC
    existed) and config fields added to the config class later (they take their default)."""
    run = json.loads(run_file.read_text())
    run.setdefault("algo", "ppo")
    run["config"] = {**dataclasses.asdict(ALGOS[run["algo"]]()), **run["config"]}
    return run


def fork_run(parent: str | os.PathLike, out: str | os.PathLike, config, task: str, seed: int,
             n_envs: int, log=print) -> dict:
    """Start run ``out`` from the last checkpoint of run ``parent`` with a changed ``config``.

    The way to change a hyper-parameter of a run mid-way (e.g. a training-only shaping term once
    the policy has learnt to move) without touching the parent, which stays resumable. ``out``
    gets the parent's last checkpoint. A SAC fork that changes only fields in ``_REPLAY_SAFE``
    (learning rate, batch size, tau, gamma, gradient steps, train frequency: how stored
    transitions are used, not what they hold) keeps the parent's replay buffer and continues
    without a warm start. Any other change drops the buffer, so the fork resumes by a warm
    start and learns only from transitions gathered under the new config (the stored rewards
    of a changed shaping term would otherwise stay in the buffer for up to ``buffer_size``
    steps). A PPO fork keeps its normalisation statistics. Task, algorithm, seed and envs must
    match the parent. ``run.json`` records the parent's command, step, config and chunks, the
    changed fields and whether the buffer was kept under ``forked_from``; exported cards carry
    it. Returns that record."""
    parent, out = Path(parent), Path(out)
    if not (parent / "run.json").is_file():
        raise FileNotFoundError(f"--fork-from {parent}: no run.json there (not a train-expert run)")
    prun = _read_run(parent / "run.json")
    ckpt = _latest_checkpoint(parent)
    if ckpt is None:
        raise FileNotFoundError(f"--fork-from {parent} has no checkpoint")
    algo = algo_of(config)
    for key, was, want in (("task", prun["task"], task), ("algo", prun["algo"], algo),
                           ("seed", prun["seed"], seed), ("n_envs", prun["n_envs"], n_envs)):
        if was != want:
            raise ValueError(f"--fork-from {parent} has {key}={was!r}, not {want!r}")
    old = prun["config"]
    new = dataclasses.asdict(config)
    changes = {k: [old.get(k), v] for k, v in new.items() if k not in _SPEED_ONLY and old.get(k) != v}
    steps = json.loads((ckpt / "state.json").read_text())["num_timesteps"]
    keep_replay = (algo in OFF_POLICY and set(changes) <= _REPLAY_SAFE
                   and (ckpt / REPLAY_FILE).is_file())
    record = {"run": str(parent), "command": prun["command"], "at_steps": steps,
              "config": {k: v for k, v in old.items() if k not in _SPEED_ONLY},
              "changes": changes, "chunks": prun.get("chunks", []),
              "train_seconds": prun.get("train_seconds")}
    if algo in OFF_POLICY:
        record["replay_kept"] = keep_replay
    tmp, dest = out / "checkpoints" / f".tmp-fork-{os.getpid()}", out / "checkpoints" / ckpt.name
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ckpt, tmp, ignore=None if keep_replay else shutil.ignore_patterns(REPLAY_FILE))
    shutil.rmtree(dest, ignore_errors=True)  # left by a fork killed before run.json was written
    os.replace(tmp, dest)
    if (parent / "progress.csv").is_file():
        shutil.copyfile(parent / "progress.csv", out / "progress.csv")
    log(f"forked {parent} at {steps} steps into {out}; changed: "
        + (", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items()) or "nothing")
        + ("; replay buffer kept" if keep_replay else ""))
    return record


def policy_from_checkpoint(out: str | os.PathLike, ckpt: str | os.PathLike | None = None):
    """The :class:`~dcsbench.experts.policy.ExpertPolicy` of run ``out``: of its last checkpoint,
    or of ``ckpt`` (a checkpoint or snapshot folder of that run)."""
    import torch

    from dcsbench.experts.policy import ExpertPolicy

    out = Path(out)
    run = json.loads((out / "run.json").read_text())
    ckpt = _resolve_checkpoint(out, ckpt)
    cfg = run["config"]
    if run.get("algo", "ppo") in JAX_ALGOS:  # policy.npz: plain arrays, tanh of the last layer
        from dcsbench.experts.jaxtrain import read_policy

        weights, biases = read_policy(ckpt)
        dim = weights[0].shape[1]
        return ExpertPolicy(run["task"], np.zeros(dim), np.ones(dim), weights, biases,
                            activation=cfg["activation"], obs_clip=float("inf"), obs_epsilon=0.0,
                            output="tanh")
    sd = torch.load(ckpt / "policy.pt", map_location="cpu", weights_only=True)
    n = len(run["config"]["net_arch"])
    if run.get("algo", "ppo") == "sac":  # squashed Gaussian: tanh(mean); no obs normalisation
        names = [f"actor.latent_pi.{2 * i}" for i in range(n)] + ["actor.mu"]
        dim = sd[f"{names[0]}.weight"].shape[1]
        return ExpertPolicy(run["task"], np.zeros(dim), np.ones(dim),
                            [sd[f"{k}.weight"].numpy() for k in names],
                            [sd[f"{k}.bias"].numpy() for k in names], activation=cfg["activation"],
                            obs_clip=float("inf"), obs_epsilon=0.0, output="tanh")
    names = [f"mlp_extractor.policy_net.{2 * i}" for i in range(n)] + ["action_net"]
    with np.load(ckpt / "vecnormalize.npz") as z:
        mean, var = z["obs_mean"].copy(), z["obs_var"].copy()
    return ExpertPolicy(run["task"], mean, var, [sd[f"{k}.weight"].numpy() for k in names],
                        [sd[f"{k}.bias"].numpy() for k in names], activation=cfg["activation"],
                        obs_clip=cfg["clip_obs"], obs_epsilon=1e-8)


def export_run(out: str | os.PathLike, eval_episodes: int = 20, log=print,
               ckpt: str | os.PathLike | None = None, selection: dict | None = None) -> Path:
    """Export the last checkpoint of run ``out`` (or the checkpoint/snapshot folder ``ckpt``) to
    ``out/export/{task}.{safetensors,json,md}`` after a deterministic ``eval_episodes``-episode
    evaluation on the state env (seeds :data:`EXPERT_EVAL_SEEDS`). ``selection`` (from
    :func:`select_run`) is stored on the card."""
    import hashlib

    import stable_baselines3

    from dcsbench.experts.cards import render_card
    from dcsbench.experts.stateenv import evaluate_state_policy

    out = Path(out)
    run = json.loads((out / "run.json").read_text())
    task = run["task"]
    algo = run.get("algo", "ppo")
    route = route_of(algo)
    trained_with = run.get("route")  # the versions the run was trained with, if recorded
    if trained_with and trained_with != route:
        route = {**route, "trained_with": trained_with}
    ckpt = _resolve_checkpoint(out, ckpt)
    policy = policy_from_checkpoint(out, ckpt)
    steps = json.loads((ckpt / "state.json").read_text())["num_timesteps"]
    seeds = list(EXPERT_EVAL_SEEDS[:eval_episodes])
    log(f"evaluating {task} expert on {len(seeds)} episodes ...")
    returns = evaluate_state_policy(policy, task, seeds)
    dest = out / "export"
    policy.metadata = {"steps": steps, "seed": run["seed"]}
    path = policy.save(dest / f"{task}.safetensors")
    card = {
        "task": task,
        "algorithm": (f"{_ALGO_NAMES.get(algo, algo.upper())} "
                      + (f"(sbx-rl {route['versions'].get('sbx-rl')}, jax {route['versions'].get('jax')})"
                         if algo in JAX_ALGOS else f"(stable-baselines3 {stable_baselines3.__version__})")),
        "route": route,
        "steps": steps, "seed": run["seed"], "n_envs": run["n_envs"],
        "command": run["command"] + (f" --stop-at {steps}" if steps < run["total_steps"] else ""),
        "total_steps_of_run": run["total_steps"], "hyperparameters": run["config"],
        "train_seconds": run.get("train_seconds"),
        "warm_starts": [{"at_steps": c["start_steps"], **c["warm_start"]}
                        for c in (run.get("forked_from") or {}).get("chunks", []) + run.get("chunks", [])
                        if c.get("warm_start")],
        **({"forked_from": {k: run["forked_from"][k] for k in ("run", "command", "at_steps", "changes",
                                                                 "replay_kept") if k in run["forked_from"]}}
           if run.get("forked_from") else {}),
        "state_dim": policy.state_dim, "action_dim": policy.action_dim, "output": policy.output,
        "eval": {"episodes": len(seeds), "seeds": seeds, "returns": [round(r, 3) for r in returns],
                 "mean": float(np.mean(returns)), "std": float(np.std(returns)),
                 "deterministic": True, "env": "state (dcsbench.experts.stateenv.StateEnv)"},
        **({"selection": selection} if selection else {}),
        "paper_expert_return": catalogue.PAPER_EXPERT_RETURNS.get(task),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "date": datetime.now(timezone.utc).date().isoformat(),
    }
    atomic_write_text(dest / f"{task}.json", json.dumps(card, indent=2) + "\n")
    atomic_write_text(dest / f"{task}.md", render_card(card))
    log(f"{task}: mean return {card['eval']['mean']:.1f} +- {card['eval']['std']:.1f} "
        f"over {len(seeds)} episodes -> {dest}")
    return dest


def select_run(out: str | os.PathLike, episodes: int = 10, eval_episodes: int = 20, log=print) -> Path:
    """Export the best policy of run ``out`` among its snapshots and its last checkpoint.

    Each candidate is evaluated (deterministic actions, state env) on the first ``episodes`` of
    :data:`SELECTION_SEEDS`; the one with the highest mean return (the later one on a tie) is
    exported by :func:`export_run`, whose card evaluation uses :data:`EXPERT_EVAL_SEEDS`. The
    two seed sets are disjoint, so the card's number is a fair estimate for the chosen policy,
    not the maximum of noisy scores. Scores are cached in ``out/selection.json`` (written
    atomically), so a re-run evaluates only new snapshots. The card's command stops at the
    chosen step (``--stop-at``) and its ``selection`` field lists every candidate's score."""
    import hashlib

    from dcsbench.experts.stateenv import evaluate_state_policy

    out = Path(out)
    if not 1 <= episodes <= len(SELECTION_SEEDS):
        raise ValueError(f"--select-episodes must be in 1..{len(SELECTION_SEEDS)}")
    task = json.loads((out / "run.json").read_text())["task"]
    folders = {json.loads((p / "state.json").read_text())["num_timesteps"]: p for p in _snapshots(out)}
    last = _latest_checkpoint(out)
    if last is not None:
        folders[json.loads((last / "state.json").read_text())["num_timesteps"]] = last
    if not folders:
        raise FileNotFoundError(f"{out} has no snapshot or checkpoint to select from")
    seeds = list(SELECTION_SEEDS[:episodes])
    cache_file = out / "selection.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    scores = {int(k): v for k, v in cache.get("scores", {}).items()} if cache.get("seeds") == seeds else {}
    digest = {k: hashlib.sha256((p / _policy_file(p)).read_bytes()).hexdigest() for k, p in folders.items()}
    for steps in sorted(k for k in folders if scores.get(k, {}).get("sha256") != digest[k]):
        returns = evaluate_state_policy(policy_from_checkpoint(out, folders[steps]), task, seeds)
        scores[steps] = {"mean": round(float(np.mean(returns)), 3), "std": round(float(np.std(returns)), 3),
                         "sha256": digest[steps]}  # a re-trained step is scored again
        log(f"{task} {steps:>10d} steps: {scores[steps]['mean']:7.1f} +- {scores[steps]['std']:5.1f}"
            f" over {episodes} selection episodes")
        atomic_write_text(cache_file, json.dumps({"seeds": seeds, "scores": {
            str(k): v for k, v in sorted(scores.items())}}, indent=1) + "\n")
    candidates = sorted(folders)
    best = max(candidates, key=lambda k: (scores[k]["mean"], k))
    log(f"best of {len(candidates)}: {best} steps ({scores[best]['mean']:.1f} on the selection seeds)")
    selection = {"episodes": episodes, "seeds": [seeds[0], seeds[-1]], "chosen_steps": best,
                 "chosen_mean": scores[best]["mean"],
                 "candidates": [[k, scores[k]["mean"]] for k in candidates]}
    return export_run(out, eval_episodes=eval_episodes, log=log, ckpt=folders[best], selection=selection)


def pack_run(out: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy run ``out`` into ``dest`` small enough to move between machines (or commit): run.json,
    progress.csv and the last checkpoint, without the SAC replay buffer (``replay.npz``, tens to
    hundreds of MB). Training resumes from ``dest`` (or a copy of it) as a PPO run exactly, and as
    a SAC run by a recorded warm start (the policy refills the buffer before updates resume).
    ``dest`` is replaced atomically; returns it."""
    out, dest = Path(out), Path(dest)
    ckpt = _latest_checkpoint(out)
    if ckpt is None:
        raise FileNotFoundError(f"{out} has no checkpoint to pack")
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints").mkdir(parents=True)
    for name in ("run.json", "progress.csv"):
        if (out / name).is_file():
            shutil.copyfile(out / name, tmp / name)
    shutil.copytree(ckpt, tmp / "checkpoints" / ckpt.name, ignore=shutil.ignore_patterns(REPLAY_FILE))
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def install_export(out: str | os.PathLike, experts_dir: str | os.PathLike | None = None) -> list[Path]:
    """Copy ``out/export/{task}.*`` into the package's experts folder (to be committed)."""
    from dcsbench.experts import EXPERTS_DIR

    out = Path(out)
    task = json.loads((out / "run.json").read_text())["task"]
    dest = Path(experts_dir or EXPERTS_DIR)
    copied = []
    for ext in ("safetensors", "json", "md"):
        src = out / "export" / f"{task}.{ext}"
        if not src.is_file():
            raise FileNotFoundError(f"{src} missing: finish training (or run export) first")
        tmp = dest / f".{task}.{ext}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest / f"{task}.{ext}")
        copied.append(dest / f"{task}.{ext}")
    return copied
