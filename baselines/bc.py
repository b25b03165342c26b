"""Behaviour cloning from the labeled view only (the "labels only" reference).

A scale-32 ResNet actor (mean-pooled embedding -> ReLU6 -> Linear) regresses the true action
``a_t`` from ``o_t`` with MSE, for a fixed number of updates (10000 at batch 512, lr 1e-4,
linear decay to 0) on random labeled batches. With the *full* train set labeled, the same agent
gives the normalization reference of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from baselines.common import ActorStage, BaselineAgent, RuntimeConfig, TransitionSampler, fit_actor
from baselines.nets import Actor


@dataclass
class BCConfig:
    """BC configuration: ``bc`` (the actor stage; ``updates`` fixes its length) and ``runtime``."""

    bc: ActorStage = field(default_factory=lambda: ActorStage(updates=10000))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


class BCAgent(BaselineAgent):
    """Behaviour cloning on the labeled trajectories."""

    name = "bc"
    version = "1"
    Config = BCConfig

    def build(self, spec) -> None:  # noqa: D102
        self.nets = {"actor": self.runtime.place(Actor(spec.obs_shape[-1], self.cfg.bc.encoder_scale,
                                                       spec.action_dim))}

    def fit(self, unlabeled, labeled, spec, budget, seed, logger) -> None:  # noqa: D102
        rng, logger = self._start(spec, seed, logger)
        lab = TransitionSampler(labeled, self.runtime, labeled=True)
        fit_actor("bc", self.nets["actor"], lab, ("obs", "action"), lambda b: b["action"],
                  self.cfg.bc, rng, self.runtime, logger)

    def policy(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.nets["actor"](x)
