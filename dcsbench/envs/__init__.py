"""The Distracting Control Suite environments of dcsbench (Gymnasium API).

>>> import dcsbench.envs as envs
>>> env = envs.make_env("cheetah-run", "distractors", backgrounds="train", seed=0)
>>> obs, info = env.reset()          # obs: (64, 64, 9) uint8, 3 stacked frames, oldest first
>>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Importing this module registers the Gymnasium ids ``dcsbench/{task}-{setting}-v1`` (e.g.
``gym.make("dcsbench/cheetah-run-distractors-v1", backgrounds="novel")``). Rendering is headless
through EGL unless ``MUJOCO_GL`` is already set. For multiprocessing use the ``spawn`` start
method: an EGL context does not survive ``fork`` (a forked child that renders hangs - this holds
for plain dm_control too).
"""

from __future__ import annotations

import functools
import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")


class _QuietCompilerDeprecation(logging.Filter):
    """Drop MuJoCo's "compiler attribute 'settotalmass' is deprecated" warning, which dm_control's
    stock suite XMLs trigger on every model load (once per env and worker); nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return "settotalmass" not in record.getMessage()


logging.getLogger("absl").addFilter(_QuietCompilerDeprecation())

import gymnasium as gym  # noqa: E402

from dcsbench.catalogue import (EPISODE_LENGTH, FRAME_STACK, POOLS, SETTINGS,  # noqa: E402
                               SOURCES, TASKS, check_choice)

from .state import flatten_state  # noqa: E402,F401

__all__ = ["make_env", "make_vector_env", "env_id", "flatten_state", "DCSEnv", "FrameStack"]


def __getattr__(name):
    # DCSEnv/FrameStack import dm_control; keep `import dcsbench.envs` light.
    if name == "DCSEnv":
        from .dcs_env import DCSEnv
        return DCSEnv
    if name == "FrameStack":
        from .wrappers import FrameStack
        return FrameStack
    raise AttributeError(f"module 'dcsbench.envs' has no attribute {name!r}")


def make_env(task: str, setting: str = "distractors", backgrounds: str = "train",
             source: str = "procedural", seed: int | None = None, davis_dir=None,
             frame_stack: int = FRAME_STACK, episode_length: int = EPISODE_LENGTH,
             **kwargs) -> gym.Env:
    """Create one Distracting Control Suite environment.

    Args:
        task: one of ``dcsbench.catalogue.TASKS`` (``cheetah-run``, ``walker-run``, ``hopper-hop``,
            ``humanoid-walk``).
        setting: ``clean`` or ``distractors`` (background video + camera shake + colour change,
            dynamic, scale 0.1).
        backgrounds: ``train`` (data and primary score) or ``novel`` (generalization) pool.
        source: ``procedural`` (embedded default) or ``davis`` (needs ``davis_dir``).
        seed: seed of the first ``reset()`` called without a seed; ``reset(seed=s)`` always
            fully determines the episode.
        davis_dir: DAVIS-2017 folder (or env var ``DCSBENCH_DAVIS_DIR``) for ``source="davis"``.
        frame_stack: frames stacked along channels (1 = no stacking, obs (64,64,3)).
        episode_length: steps until ``truncated=True`` (episodes never terminate early).
        **kwargs: passed to :class:`dcsbench.envs.dcs_env.DCSEnv` (e.g. ``size``).

    Returns:
        A ``gymnasium.Env`` with observations uint8 ``(64, 64, 3*frame_stack)``, actions
        ``Box(-1, 1, (A,), float32)`` and ``info["state"]`` = proprioceptive state (float32,
        for data collection only).
    """
    from .dcs_env import DCSEnv
    from .wrappers import FrameStack

    env = DCSEnv(task, setting, backgrounds=backgrounds, source=source, seed=seed,
                 davis_dir=davis_dir, episode_length=episode_length, **kwargs)
    if int(frame_stack) != 1:
        env = FrameStack(env, frame_stack)
    return env


def make_vector_env(task: str, setting: str = "distractors", backgrounds: str = "train",
                    source: str = "procedural", num_envs: int = 1, davis_dir=None,
                    frame_stack: int = FRAME_STACK, mode: str = "sync",
                    episode_length: int = EPISODE_LENGTH) -> gym.vector.VectorEnv:
    """``num_envs`` copies of :func:`make_env` as a Gymnasium vector env.

    ``mode="sync"`` steps them in this process, ``"async"`` in one subprocess each. Reset with an
    explicit list of seeds (``vec.reset(seed=[s0, s1, ...])``) to make every sub-episode exact;
    sub-env ``i`` then behaves bit-identically to ``make_env(...).reset(seed=s_i)``. Sub-envs
    auto-reset on the step after truncation (Gymnasium's default next-step mode).

    ``async`` (one process per sub-env) measured slower than ``sync`` on 2 cores; for several
    cores use :class:`dcsbench.envs.workers.EnvWorkers` (a few processes, each stepping a group
    of sub-envs, observations in shared memory: ``run_episodes(mode="workers")``).
    """
    check_choice("task", task, TASKS)
    check_choice("setting", setting, SETTINGS)
    check_choice("background pool", backgrounds, POOLS)
    check_choice("background source", source, SOURCES)
    check_choice("vector mode", mode, ("sync", "async"))
    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    fn = functools.partial(make_env, task, setting, backgrounds=backgrounds, source=source,
                           davis_dir=None if davis_dir is None else str(davis_dir),
                           frame_stack=frame_stack, episode_length=episode_length)
    fns = [fn] * int(num_envs)
    if mode == "async":
        return gym.vector.AsyncVectorEnv(fns, context="spawn")
    return gym.vector.SyncVectorEnv(fns)


def env_id(task: str, setting: str) -> str:
    """Gymnasium id of a task and setting, e.g. ``dcsbench/cheetah-run-distractors-v1``."""
    return f"dcsbench/{task}-{setting}-v1"


def _register_all() -> None:
    for task in TASKS:
        for setting in SETTINGS:
            if env_id(task, setting) not in gym.registry:
                gym.register(id=env_id(task, setting), entry_point="dcsbench.envs:make_env",
                             kwargs={"task": task, "setting": setting},
                             disable_env_checker=True, order_enforce=False)


_register_all()
