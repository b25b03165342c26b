"""Rollouts of the online evaluation (PROTOCOL.md section 4): fixed-seed episodes in vectorized
environments (the whole protocol is :func:`dcsbench.protocol.evaluate`).

:func:`run_episodes` runs the episodes of a list of seeds in *waves* of ``num_envs``
environments: each wave resets the vector env with an explicit list of seeds (one per sub-env)
and steps it exactly ``episode_length`` times (DMC episodes never terminate early), so episode
``i`` of every method sees exactly the same physics initialisation and distractors. Actions
come from ``act_fn`` (the agent's deterministic :meth:`~dcsbench.agent.Agent.act`), are checked
(shape, finite) and clipped to ``[-1, 1]``. Return = undiscounted sum of rewards.

A final wave smaller than ``num_envs`` gets its own, smaller vector env instead of padding
with wasted episodes (``mode="workers"`` keeps its processes and leaves the spare sub-envs idle).

Vector modes (:data:`VECTOR_MODES`): ``sync`` steps the sub-envs in this process; ``async`` is
Gymnasium's ``AsyncVectorEnv`` (one process per sub-env; per-sub-env pickling made it slower
than ``sync`` on 2 cores); ``workers`` is :class:`dcsbench.envs.workers.EnvWorkers` (a few
processes, each stepping a group of sub-envs, observations in shared memory; one batched
``act`` per step); ``auto`` (the default) picks ``workers`` on a machine with more than one core
for evaluations long enough to repay the workers' start-up, else ``sync``
(:func:`resolve_mode`; ``benchmarks/RESULTS-protocol.md`` has the measurements). All modes give
bit-identical returns for the same seeds and wave size (tested).
"""

from __future__ import annotations

import contextlib
import inspect
import os
from typing import Callable, Sequence

import numpy as np

from dcsbench import catalogue

ActFn = Callable[[np.ndarray], np.ndarray]

#: Accepted values of ``run_episodes(mode=...)`` (and ``dcsbench run --vector-mode``).
VECTOR_MODES = ("auto", "sync", "async", "workers")


#: ``auto`` uses ``workers`` only for evaluations of at least this many env steps: below it the
#: workers' start-up (spawn + imports, ~4.5 s on the loaded 2-core sandbox) outweighs the
#: faster stepping (break-even measured at ~2,000 steps there; a protocol pool is 25,000).
AUTO_WORKERS_MIN_STEPS = 5000


def resolve_mode(mode: str, num_envs: int, total_steps: int | None = None) -> str:
    """The concrete vector mode of ``mode``: ``auto`` -> ``workers`` when the machine has more
    than one core, the wave more than one sub-env and the evaluation at least
    :data:`AUTO_WORKERS_MIN_STEPS` env steps (``total_steps``; ``None``: long enough), else
    ``sync``."""
    catalogue.check_choice("vector mode", mode, VECTOR_MODES)
    if mode != "auto":
        return mode
    long_enough = total_steps is None or int(total_steps) >= AUTO_WORKERS_MIN_STEPS
    return "workers" if (os.cpu_count() or 1) > 1 and int(num_envs) > 1 and long_enough \
        else "sync"


def _make_vector_env(task: str, setting: str, backgrounds: str, source: str, num_envs: int,
                     davis_dir, frame_stack: int, mode: str, episode_length: int):
    from dcsbench.envs import make_vector_env

    kwargs = dict(davis_dir=davis_dir, frame_stack=frame_stack, mode=mode)
    # Pass the episode length when the env factory supports it (the evaluator steps exactly
    # `episode_length` times anyway, so a longer env limit is harmless).
    if "episode_length" in inspect.signature(make_vector_env).parameters:
        kwargs["episode_length"] = episode_length
    return make_vector_env(task, setting, backgrounds, source, num_envs, **kwargs)


def _no_grad():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return contextlib.nullcontext()
    return torch.inference_mode()


def run_wave(env, act_fn: ActFn, seeds: Sequence[int], episode_length: int,
             on_step: Callable[[int], None] | None = None) -> list[float]:
    """Play one episode per sub-env of ``env`` (seeded with ``seeds``) and return the returns.

    ``env`` must have exactly ``len(seeds)`` sub-envs. Raises ``ValueError`` if the agent
    returns actions of the wrong shape or non-finite values, and ``RuntimeError`` if an
    episode ends before ``episode_length`` steps (the env's limit is too short).
    """
    n = len(seeds)
    capacity = getattr(env, "capacity", None)   # EnvWorkers: any wave up to its capacity
    if (env.num_envs != n) if capacity is None else not 1 <= n <= capacity:
        raise ValueError(f"vector env has {capacity or env.num_envs} sub-envs for {n} seeds")
    action_dim = int(np.prod(env.single_action_space.shape))
    obs, _ = env.reset(seed=[int(s) for s in seeds])
    returns = np.zeros(n, dtype=np.float64)
    for t in range(episode_length):
        with _no_grad():
            action = act_fn(np.asarray(obs))
        action = np.asarray(action)
        if action.dtype.kind not in "biuf":
            raise ValueError(f"agent.act returned a {action.dtype} array; expected real numbers "
                             "(a complex action would silently lose its imaginary part)")
        action = action.astype(np.float32, copy=False)
        if action.shape != (n, action_dim):
            raise ValueError(f"agent.act returned shape {action.shape}, expected {(n, action_dim)}")
        if not np.all(np.isfinite(action)):
            raise ValueError("agent.act returned non-finite actions (NaN or inf)")
        obs, reward, terminated, truncated, _ = env.step(np.clip(action, -1.0, 1.0))
        returns += np.asarray(reward, dtype=np.float64)
        ended = np.logical_or(terminated, truncated)
        if t < episode_length - 1 and np.any(ended):
            raise RuntimeError(f"episode ended after {t + 1} steps (< episode_length="
                               f"{episode_length}); per-episode seeds would no longer be exact")
        if on_step is not None:
            on_step(n)
    return returns.tolist()


def run_episodes(act_fn: ActFn, task: str, setting: str, source: str, backgrounds: str,
                    seeds: Sequence[int] = catalogue.EVAL_EPISODE_SEEDS, num_envs: int = 5,
                    episode_length: int = catalogue.EPISODE_LENGTH, mode: str = "auto",
                    davis_dir=None, frame_stack: int = catalogue.FRAME_STACK,
                    progress: bool = True, desc: str | None = None,
                    on_wave: Callable[[list[int], list[float]], None] | None = None,
                    workers: int | None = None, env_pool=None) -> list[float]:
    """Returns of one episode per seed, in the order of ``seeds``.

    Args:
        act_fn: deterministic policy on stacked observations ``(B, 64, 64, 3*frame_stack)``
            uint8 -> ``(B, action_dim)`` float32 (e.g. ``agent.act``).
        task, setting, source: the environment (``catalogue.TASKS`` / ``SETTINGS`` / ``SOURCES``).
        backgrounds: ``"train"`` (primary score) or ``"novel"`` (generalization score).
        seeds: per-episode reset seeds (protocol: :data:`catalogue.EVAL_EPISODE_SEEDS`).
        num_envs: sub-environments per wave.
        episode_length: control steps per episode (protocol: 1000).
        mode: ``"auto"`` (default: ``"workers"`` on more than one core for evaluations of at
            least :data:`AUTO_WORKERS_MIN_STEPS` steps, else ``"sync"``),
            ``"sync"`` (one process), ``"async"`` (one process per sub-env) or ``"workers"``
            (``workers`` processes stepping groups of sub-envs; see the module docstring).
        davis_dir: DAVIS folder for ``source="davis"``.
        progress: show a tqdm bar (steps).
        on_wave: called after every wave with ``(wave_seeds, wave_returns)`` (checkpointing).
        workers: worker processes of ``mode="workers"`` (default: one per core or
            ``$DCSBENCH_EVAL_WORKERS``, at most ``num_envs``).
        env_pool: a running :class:`~dcsbench.envs.workers.EnvWorkers` to use (``workers``
            mode; it is reconfigured to this call's background pool, setting and source and
            left running: the caller closes it). Saves the workers' start-up when one run
            evaluates several pools. Its capacity must be at least the wave size.
    """
    from tqdm.auto import tqdm

    catalogue.check_choice("task", task, catalogue.TASKS)
    catalogue.check_choice("setting", setting, catalogue.SETTINGS)
    catalogue.check_choice("source", source, catalogue.SOURCES)
    catalogue.check_choice("background pool", backgrounds, catalogue.POOLS)
    if env_pool is not None and mode == "auto":
        mode = "workers"
    mode = resolve_mode(mode, min(num_envs, len(seeds)) if len(seeds) else num_envs,
                        len(seeds) * episode_length)
    if env_pool is not None and mode != "workers":
        raise ValueError(f"env_pool needs mode='workers', not {mode!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no episode seeds")
    if num_envs < 1 or episode_length < 1:
        raise ValueError(f"num_envs ({num_envs}) and episode_length ({episode_length}) must be >= 1")
    waves = [seeds[i:i + num_envs] for i in range(0, len(seeds), num_envs)]
    returns: list[float] = []
    bar = tqdm(total=len(seeds) * episode_length, unit="step", disable=not progress,
               desc=desc or f"eval {task} {backgrounds}", leave=False, dynamic_ncols=True)
    env, env_size = None, 0
    try:
        if mode == "workers":   # one set of worker processes for every wave
            env, env_size = _workers_env(env_pool, task, setting, backgrounds, source,
                                         len(waves[0]), workers, davis_dir, frame_stack,
                                         episode_length), None
        for wave in waves:
            if env_size is not None and (env is None or env_size != len(wave)):
                if env is not None:
                    env.close()
                env = _make_vector_env(task, setting, backgrounds, source, len(wave), davis_dir,
                                       frame_stack, mode, episode_length)
                env_size = len(wave)
            wave_returns = run_wave(env, act_fn, wave, episode_length, on_step=bar.update)
            returns += wave_returns
            if on_wave is not None:
                on_wave(wave, wave_returns)
    finally:
        if env is not None and env is not env_pool:
            env.close()
        bar.close()
    return returns


def _workers_env(env_pool, task, setting, backgrounds, source, wave_size, workers, davis_dir,
                 frame_stack, episode_length):
    """The :class:`EnvWorkers` of a ``workers``-mode evaluation: ``env_pool`` reconfigured, or
    a new one sized for the first (largest) wave."""
    from dcsbench.envs.workers import EnvWorkers

    if env_pool is None:
        return EnvWorkers(task, setting, backgrounds, source, capacity=wave_size, workers=workers,
                          davis_dir=davis_dir, frame_stack=frame_stack,
                          episode_length=episode_length, copy_obs=False)
    if env_pool.capacity < wave_size:
        raise ValueError(f"env_pool has {env_pool.capacity} sub-envs; the waves need {wave_size}")
    env_pool.configure(task=task, frame_stack=frame_stack, setting=setting,
                       backgrounds=backgrounds, source=source, davis_dir=davis_dir,
                       episode_length=episode_length)
    return env_pool
