"""The one interface every method implements: baselines and submissions alike.

A method is a subclass of :class:`Agent` with two required methods:

* :meth:`Agent.fit` receives the *unlabeled view* (observations of every ``train`` trajectory,
  nothing else) and the *labeled view* (observations **and actions** of the budget's labeled
  trajectories only), plus an :class:`EnvSpec` describing shapes. No rewards, no simulator states,
  no eval split, no simulator: the views do not contain them (PROTOCOL.md section 3).
* :meth:`Agent.act` maps a batch of stacked observations to a batch of actions, deterministically.

Observations everywhere are ``uint8`` arrays in HWC layout; a stacked observation is the last
:data:`~dcsbench.catalogue.FRAME_STACK` frames concatenated on the channel axis, oldest first:
shape ``(64, 64, 9)``; a batch is ``(B, 64, 64, 9)``. Actions are ``float32`` in ``[-1, 1]``.

Minimal complete example (a method that ignores the video and replays the labeled mean action)::

    import numpy as np
    from dcsbench import Agent

    class MeanAction(Agent):
        name = "mean-action"
        def fit(self, unlabeled, labeled, spec, budget, seed, logger):
            self.mean = np.concatenate([labeled.actions(i) for i in range(labeled.n_trajectories)]).mean(0)
        def act(self, obs):
            return np.repeat(self.mean[None], len(obs), axis=0).astype(np.float32)
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    """What a method may know about the task besides the data.

    Attributes:
        task: task name, e.g. ``"cheetah-run"``.
        setting: ``"clean"`` or ``"distractors"``.
        obs_shape: shape of one stacked observation, ``(64, 64, 9)`` (HWC, uint8).
        frame_shape: shape of one frame, ``(64, 64, 3)``.
        frame_stack: number of stacked frames (3).
        action_dim: dimension of the continuous action.
        action_low: lower bound of each action dimension (-1).
        action_high: upper bound of each action dimension (+1).
        episode_length: control steps per episode (1000).
    """

    task: str
    setting: str
    obs_shape: tuple[int, int, int]
    frame_shape: tuple[int, int, int]
    frame_stack: int
    action_dim: int
    action_low: float = -1.0
    action_high: float = 1.0
    episode_length: int = 1000


@runtime_checkable
class UnlabeledView(Protocol):
    """Observations of the ``train`` trajectories, and nothing else (no actions/rewards/states).

    Implemented by :mod:`dcsbench.data.views`. Arrays returned are read-only.
    """

    n_trajectories: int
    trajectory_length: int

    def frames(self, i: int) -> np.ndarray:
        """Frames of trajectory ``i``: ``(T, 64, 64, 3)`` uint8, read-only."""

    def sample(self, batch_size: int, rng: np.random.Generator, max_offset: int = 1,
               offset: int | None = None) -> dict[str, np.ndarray]:
        """A random batch ``{"obs", "next_obs", "offset"}``: stacked ``o_t`` and ``o_{t+k}``
        (``(B, 64, 64, 9)`` uint8) with ``k`` uniform in ``1..max_offset`` (or fixed ``offset``),
        never crossing an episode boundary."""

    def iter_stacks(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """All ``(o_t, o_{t+1})`` pairs in order, in batches (for relabelling / latent BC)."""


@runtime_checkable
class LabeledView(UnlabeledView, Protocol):
    """Observations **and actions** of the labeled trajectories of one budget only."""

    def actions(self, i: int) -> np.ndarray:
        """Actions of labeled trajectory ``i``: ``(T, action_dim)`` float32, read-only."""


class Logger(Protocol):
    """What :meth:`Agent.fit` may log to: scalars (shown in progress and saved with the record)."""

    def log(self, metrics: dict[str, float], step: int | None = None) -> None: ...


class NullLogger:
    """A :class:`Logger` that discards everything."""

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:  # noqa: D102
        return None


class Agent(abc.ABC):
    """Base class of every method evaluated by dcsbench.

    Subclasses set :attr:`name` and :attr:`version`, and implement :meth:`fit` and :meth:`act`.
    Optional hooks: :meth:`latent_actions` (for the latent-action probe metric),
    :meth:`save`/:meth:`load` (checkpoint/resume), :meth:`num_parameters`.

    The constructor receives the method's configuration as keyword arguments (from the YAML
    config given to ``dcsbench run --config``); keep it JSON-serialisable, it goes in the record.
    """

    name: str = "unnamed"
    version: str = "0"

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)

    @classmethod
    def from_config(cls, config: dict[str, Any], preset: str | None = None) -> "Agent":
        """Build an agent from a configuration mapping (``--config`` / ``--set``) and a preset.

        The default passes the mapping as keyword arguments and has no presets; a method with
        presets (the baselines) overrides this.
        """
        if preset is not None:
            raise ValueError(f"{cls.__name__} has no presets (--preset {preset}); use --config "
                             "or --set for its options")
        return cls(**config)

    @abc.abstractmethod
    def fit(self, unlabeled: UnlabeledView, labeled: LabeledView, spec: EnvSpec, budget: int,
            seed: int, logger: Logger) -> None:
        """Learn from the two views. Must be deterministic given ``seed`` (up to GPU nondeterminism)."""

    @abc.abstractmethod
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for a batch of stacked observations ``(B, 64, 64, 9)`` uint8.

        Returns ``(B, action_dim)`` float32; the harness clips to ``[-1, 1]``.
        """

    def latent_actions(self, obs: np.ndarray, next_obs: np.ndarray) -> np.ndarray | None:
        """Latent actions for ``(o_t, o_{t+1})`` batches, or ``None`` if the method has none.

        Used by the harness for the offline probe metrics (:mod:`dcsbench.probe`: a linear probe
        latent -> true action fitted by the harness on train trajectories, never by the agent,
        and scored on held-out train trajectories and on the novel-background eval split).
        """
        return None

    def init_untrained(self, spec: EnvSpec, seed: int) -> bool:
        """Build the model with random, untrained weights so that :meth:`latent_actions` works.

        Optional. The harness calls it on a separate, fresh copy of the agent to measure the
        probe of random features (``probe_mse_train_random``): a probe means something only
        against it. Return ``True`` if supported (the default returns ``False``).
        """
        return False

    def save(self, path: str) -> None:
        """Write a checkpoint to directory ``path`` (optional; enables resume after a kill)."""
        raise NotImplementedError(f"{type(self).__name__} does not support checkpoints")

    def load(self, path: str) -> None:
        """Restore a checkpoint written by :meth:`save`."""
        raise NotImplementedError(f"{type(self).__name__} does not support checkpoints")

    def num_parameters(self) -> int | None:
        """Number of trainable parameters, for the record (``None`` if not applicable)."""
        return None

