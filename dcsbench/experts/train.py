"""Train a state-based expert with PPO or SAC (stable-baselines3), resumably, and export it.

:func:`train_expert` runs PPO's rollout/update loop itself (the same calls as ``PPO.learn``) so
that it can stop between two updates, write a checkpoint and pick up again *exactly*:

* a rollout is ``n_steps`` (a multiple of the 1000-step episode) per env, so every rollout ends
  at an episode boundary of every env;
* per-episode physics seeds are derived from (run seed, env index, episode counter), and the
  counter is restored on resume;
* a checkpoint holds the policy and optimizer state dicts, the VecNormalize statistics, the step
  count and the python/numpy/torch RNG states (no pickled code: ``torch.load(weights_only=True)``,
  ``.npz`` and JSON).

Running the same command again on the same output folder therefore continues the same run, and
``N`` steps in several chunks give the same weights as ``N`` steps in one go (tested).

SAC (``--algo sac``, :class:`SACConfig`) uses the same machinery with one env, one episode per
unit and the replay buffer in the checkpoint; it is far more sample-efficient on walker/hopper
but does ~10x fewer steps/s on a CPU. The JAX learners of :mod:`dcsbench.experts.jaxtrain`
(``--algo crossq``, ``--algo sac-jax``; sbx-rl, an optional extra) run in the same loop as SAC.

This module holds the training loop; the rest of ``train-expert`` lives beside it and is
re-exported here (``from dcsbench.experts.train import ...`` keeps working):
:mod:`~dcsbench.experts.config` (hyper-parameters, ``--set`` overrides),
:mod:`~dcsbench.experts.build` (envs and learners), :mod:`~dcsbench.experts.checkpoint`
(checkpoints, snapshots, resuming) and :mod:`~dcsbench.experts.runs` (``run.json``, forks,
export, selection, packing, installing).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dcsbench import catalogue
from dcsbench.experts.build import _build
from dcsbench.experts.checkpoint import (CKPT_PREFIX, REPLAY_FILE, SNAPSHOT_DIR, _latest_checkpoint,
                                         _load_checkpoint, _save_checkpoint, _save_snapshot)
from dcsbench.experts.checkpoint import _snapshots  # noqa: F401 - re-exported for the tests
from dcsbench.experts.config import (_SPEED_ONLY, ALGOS, JAX_ALGOS, OFF_POLICY, PPOConfig,
                                     SACConfig, algo_of, config_overrides, parse_overrides,
                                     route_of)
from dcsbench.experts.runs import (EXPERT_EVAL_SEEDS, SELECTION_SEEDS, _read_run,
                                   canonical_command, export_run, fork_run, install_export,
                                   pack_run, policy_from_checkpoint, select_run)
from dcsbench.results import atomic_write_text

#: The public names of ``train-expert`` (defined in the modules above but for
#: :func:`train_expert`), importable from here.
__all__ = ["ALGOS", "CKPT_PREFIX", "EXPERT_EVAL_SEEDS", "OFF_POLICY", "PPOConfig", "REPLAY_FILE",
           "SACConfig", "SELECTION_SEEDS", "SNAPSHOT_DIR", "algo_of", "canonical_command",
           "config_overrides", "export_run", "fork_run", "install_export", "pack_run",
           "parse_overrides", "policy_from_checkpoint", "route_of", "select_run", "train_expert"]


def train_expert(task: str, out: str | os.PathLike, total_steps: int = 10_000_000, n_envs: int = 8,
                 seed: int = 0, max_minutes: float | None = None, checkpoint_minutes: float = 3.0,
                 config: PPOConfig | None = None, log=print, export: bool = True,
                 eval_episodes: int = 20, vec_env: str = "subproc", device: str = "cpu",
                 stop_at: int | None = None, fork_from: str | os.PathLike | None = None,
                 snapshot_every: int = 50_000, refill_steps: int | None = None) -> dict:
    """Train (or resume) a PPO expert for ``task`` in folder ``out``.

    Re-running with the same folder resumes from its last checkpoint and continues to
    ``total_steps`` (rounded up to whole rollouts of ``n_envs * n_steps``). Stops early, after
    writing a checkpoint, when ``max_minutes`` would be exceeded by the next update or on
    SIGTERM/SIGINT. When finished (and ``export``), writes ``out/export/{task}.safetensors``,
    ``.json`` and ``.md`` with a deterministic ``eval_episodes``-episode evaluation.
    ``vec_env`` (``subproc`` or ``dummy``) changes speed only, never results; ``device``
    (``cpu``/``cuda``) runs the learner on a GPU (results then differ in the last bits).
    ``stop_at`` pauses (and exports) at that many steps, mid-schedule: the way to reproduce an
    expert that was exported from an intermediate checkpoint. ``fork_from`` starts a new
    ``out`` from another run's last checkpoint with this ``config`` (see :func:`fork_run`); once
    ``out`` exists it is ignored, so the same command resumes the fork. Every time the step
    count crosses a multiple of ``snapshot_every`` (0: never) the policy is kept under
    ``out/snapshots/`` for :func:`select_run`; that changes nothing in training.
    ``refill_steps`` sets how long an off-policy warm start refills the empty buffer before
    updates resume (default: the config's ``learning_starts``; see :func:`_warm_start`).

    Returns a status dict: ``num_timesteps``, ``total_steps``, ``finished``, ``checkpoint``.
    """
    import torch
    from stable_baselines3.common.utils import set_random_seed

    t_start = time.monotonic()
    catalogue.check_choice("task", task, catalogue.TASKS)
    cfg = config or PPOConfig()
    algo = algo_of(cfg)
    total = _round_total(cfg, algo, n_envs, total_steps, snapshot_every)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "run.json"
    run = _open_run(out, task, algo, seed, n_envs, cfg, total, fork_from, log)
    atomic_write_text(run_file, json.dumps(run, indent=2) + "\n")  # a killed run stays resumable
    torch.set_num_threads(cfg.torch_threads)
    for stale in (out / "checkpoints").glob(".tmp-*"):  # left by a run killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    ckpt = _latest_checkpoint(out)
    done_steps = json.loads((ckpt / "state.json").read_text())["num_timesteps"] if ckpt else 0
    set_random_seed(seed)
    model, env = _build(task, n_envs, seed, cfg, episodes_done=done_steps // (n_envs * cfg.episode_length),
                        vec_env=vec_env, device=device)
    recent = deque(maxlen=20)
    shaped = deque(maxlen=20)  # returns the learner saw (differ from `recent` with stand_bonus)
    train_seconds = 0.0
    refill_until = 0  # off-policy warm start: collect with the policy, no updates, until this step
    warm_start = None
    if ckpt:
        state = _load_checkpoint(ckpt, model, env)
        recent.extend(state.get("recent_returns", []))
        train_seconds = state.get("train_seconds", 0.0)
        log(f"resuming {task} from {ckpt.name}: {model.num_timesteps}/{total} steps")
        if algo in OFF_POLICY and not (ckpt / REPLAY_FILE).is_file():  # the buffer starts empty
            warm_start = _warm_start(ckpt, cfg, log, refill_steps)
            refill_until = model.num_timesteps + warm_start["refill_steps"]
    else:
        envs = f"{n_envs} envs ({vec_env})" if algo == "ppo" else "1 env"
        log(f"training {task} with {algo.upper()}: {total} steps, {envs}, learner on "
            f"{'jax' if algo in JAX_ALGOS else model.device}, "
            f"seed {seed} -> {out}")

    stop, old_handlers = _catch_stop_signals(log)
    chunk = {"start_steps": int(model.num_timesteps),
             "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "versions": route_of(algo)["versions"]}
    if warm_start:
        chunk["warm_start"] = warm_start
    last_ckpt_t, last_log_t, reason = time.monotonic(), 0.0, "finished"
    try:
        callback = None
        if algo == "ppo":
            total_arg, callback = model._setup_learn(total - model.num_timesteps, None,
                                                     reset_num_timesteps=False)
            assert total_arg == total
            callback.on_training_start(locals(), globals())
        limit = total if stop_at is None else min(total, int(stop_at))
        while model.num_timesteps < limit:
            t_iter = time.monotonic()
            steps0 = model.num_timesteps
            t_collect = _train_unit(model, cfg, algo, callback, total, refill_until)
            # The task's own return (the same as "r" unless a training-only shaping term is on).
            recent.extend(float(info.get("task_return", info["r"])) for info in model.ep_info_buffer)
            shaped.extend(float(info["r"]) for info in model.ep_info_buffer)
            model.ep_info_buffer.clear()
            now = time.monotonic()
            dt = now - t_iter
            train_seconds += dt
            sps = (model.num_timesteps - steps0) / dt
            ret = float(np.mean(recent)) if recent else float("nan")
            _append_progress(out / "progress.csv", model.num_timesteps, sps, ret, train_seconds,
                             t_collect / dt)
            if snapshot_every and model.num_timesteps // snapshot_every > steps0 // snapshot_every:
                _save_snapshot(out, model, env)
            if now - last_log_t > 30 or model.num_timesteps >= total:
                log(f"{task} {model.num_timesteps:>10d}/{total} steps  {sps:7.0f} steps/s  "
                    f"return(last {len(recent)}) {ret:7.1f}  "
                    + (f"shaped {np.mean(shaped):7.1f}  " if cfg.stand_bonus and shaped else "")
                    + (f"collect {t_collect / dt:4.0%}  " if algo == "ppo" else "")
                    + f"lr {model.lr_schedule(model._current_progress_remaining):.2e}")
                last_log_t = now
            extra = {"recent_returns": list(recent), "train_seconds": train_seconds}
            if stop["signal"]:
                reason = stop["signal"]
                break
            if max_minutes is not None and (now - t_start) + 1.5 * dt + 5 > 60 * max_minutes \
                    and model.num_timesteps < limit:
                reason = "time limit"
                break
            if now - last_ckpt_t > 60 * checkpoint_minutes:
                _save_checkpoint(out, model, env, extra)
                last_ckpt_t = time.monotonic()
        if reason == "finished" and model.num_timesteps < total:
            reason = "stop-at"
        extra = {"recent_returns": list(recent), "train_seconds": train_seconds}
        ckpt = _save_checkpoint(out, model, env, extra)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        env.close()
    finished = model.num_timesteps >= total
    stopped_at = stop_at is not None and model.num_timesteps >= min(total, int(stop_at))
    chunk.update(end_steps=int(model.num_timesteps), reason=reason,
                 seconds=round(time.monotonic() - t_start, 1))
    run["chunks"].append(chunk)
    run["train_seconds"] = round(train_seconds, 1)
    atomic_write_text(run_file, json.dumps(run, indent=2) + "\n")
    status = {"num_timesteps": int(model.num_timesteps), "total_steps": total,
              "finished": finished, "checkpoint": str(ckpt)}
    if finished or stopped_at:
        if export:
            status["export"] = str(export_run(out, eval_episodes=eval_episodes, log=log))
        log(f"{'finished' if finished else 'stopped'}: {model.num_timesteps} steps")
    else:
        log(f"paused ({reason}) at {model.num_timesteps}/{total} steps; "
            f"re-run the same command to resume")
    return status


# ------------------------------------------------------------------------------ steps of the loop
def _round_total(cfg, algo: str, n_envs: int, total_steps: int, snapshot_every: int) -> int:
    """Check the loop's arguments; returns ``total_steps`` rounded up to whole training units
    (``n_envs * n_steps`` env steps for PPO, one episode off-policy)."""
    n_steps = cfg.episode_length if algo in OFF_POLICY else cfg.n_steps  # env steps per env per unit
    if n_steps % cfg.episode_length:
        raise ValueError(f"n_steps ({cfg.n_steps}) must be a multiple of episode_length "
                         f"({cfg.episode_length}) for exact resumption")
    if n_envs < 1 or total_steps < 1:
        raise ValueError("--n-envs and --total-steps must be positive")
    if snapshot_every < 0:
        raise ValueError("--snapshot-every must be >= 0 (0: no snapshots)")
    per_iter = n_envs * n_steps
    return int(math.ceil(total_steps / per_iter) * per_iter)


def _open_run(out: Path, task: str, algo: str, seed: int, n_envs: int, cfg, total: int,
              fork_from, log) -> dict:
    """The ``run.json`` record of folder ``out`` for this call (not yet written): the existing
    one, checked to be the same run (task, algorithm, seed, envs and every config field but the
    speed-only ones; ValueError names the first that differs), or a new one, forked from
    ``fork_from`` when given (:func:`fork_run`); with this call's total steps and command."""
    run_file = out / "run.json"
    cfg_dict = dataclasses.asdict(cfg)
    if run_file.is_file():
        run = _read_run(run_file)
        checks = [("task", run["task"], task), ("algo", run["algo"], algo),
                  ("seed", run["seed"], seed), ("n_envs", run["n_envs"], n_envs)]
        checks += [(k, run["config"].get(k), v) for k, v in cfg_dict.items() if k not in _SPEED_ONLY]
        for key, old, new in checks:
            if old != new:
                raise ValueError(f"{out} holds a run with {key}={old!r}, not {new!r}; "
                                 f"use another --out folder")
        run["config"].update({k: cfg_dict[k] for k in _SPEED_ONLY if k in cfg_dict})
        if run["total_steps"] != total:
            log(f"note: total steps changed {run['total_steps']} -> {total} (the lr schedule follows)")
    else:
        run = {"task": task, "algo": algo, "seed": seed, "n_envs": n_envs, "config": cfg_dict,
               "chunks": [],
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if fork_from is not None:
            run["forked_from"] = fork_run(fork_from, out, cfg, task, seed, n_envs, log=log)
    run["total_steps"] = total
    run.setdefault("route", route_of(algo))
    run["command"] = canonical_command(task, total, n_envs, seed, algo, config_overrides(cfg))
    if run.get("forked_from"):
        run["command"] += f" --fork-from {run['forked_from']['run']}"
    return run


def _warm_start(ckpt: Path, cfg, log, refill_steps: int | None = None) -> dict:
    """The warm start of an off-policy run resumed from ``ckpt``, which has no replay buffer (a
    packed run, or a fork that changed what the buffer holds): the policy refills the buffer,
    without updates, for ``refill_steps`` (default ``learning_starts``) steps rounded up to
    whole episodes. Logged; the caller records it in the run's chunk (and so on the card).

    Measured on humanoid-walk CrossQ at 373k steps (benchmarks/RESULTS-experts.md): a 5,000-step
    refill collapsed the policy (training return 403 -> 45 within 60k steps: the critic overfits
    the tiny buffer); a 50,000-step refill kept it (403 -> 415 after 100k steps). Use
    ``--refill-steps 50000`` or more when continuing a packed run."""
    n = cfg.learning_starts if refill_steps is None else int(refill_steps)
    refill = int(math.ceil(max(1, n) / cfg.episode_length)) * cfg.episode_length
    warm_start = {"refill_steps": refill,
                  "reason": f"{ckpt.name} has no replay buffer ({REPLAY_FILE})"}
    log(f"warm start: {warm_start['reason']}; the policy refills the buffer for {refill} "
        f"steps before updates resume. Not an exact resume: recorded in run.json and the card")
    return warm_start


def _catch_stop_signals(log) -> tuple[dict, dict]:
    """Make SIGTERM and SIGINT ask the training loop to checkpoint and stop after the current
    update (a second SIGINT interrupts at once). Returns ``(stop, previous handlers)``:
    ``stop["signal"]`` becomes the signal's name; the caller restores the handlers."""
    stop = {"signal": None}

    def _on_signal(signum, frame):
        if stop["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop["signal"] = signal.Signals(signum).name
        log(f"{stop['signal']}: checkpointing after the current update")

    return stop, {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}


def _train_unit(model, cfg, algo: str, callback, total: int, refill_until: int) -> float:
    """One unit of training that ends at an episode boundary of every env; returns the seconds
    spent collecting the rollout (PPO) or NaN (off-policy, where steps and updates interleave).

    Off-policy: one episode, ``episode_length`` env steps with one update each (none before
    step ``refill_until``: a warm start). PPO: a rollout of ``n_steps`` per env, then the update."""
    if algo in OFF_POLICY:
        model.gradient_steps = 0 if model.num_timesteps < refill_until else cfg.gradient_steps
        steps = model.env.get_attr("episode_length")[0]
        model.learn(steps, callback=None, log_interval=None, reset_num_timesteps=False)
        return float("nan")
    t0 = time.monotonic()
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    t_collect = time.monotonic() - t0
    model._update_current_progress_remaining(model.num_timesteps, total)
    model.train()
    return t_collect


def _append_progress(path: Path, steps: int, sps: float, ret: float, train_seconds: float,
                     collect_fraction: float) -> None:
    """One row of the run's ``progress.csv`` (the header first, into an empty file)."""
    with open(path, "a", encoding="utf-8") as f:
        if f.tell() == 0:
            f.write("steps,steps_per_s,mean_return_last20,train_seconds,collect_fraction\n")
        f.write(f"{steps},{sps:.1f},{ret:.2f},{train_seconds:.1f},{collect_fraction:.3f}\n")
