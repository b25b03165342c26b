"""Trivial agents for the protocol tests (importable as ``trivial_agents:Class`` with tests/ on
the path, e.g. ``dcsbench run --agent trivial_agents:MeanAction``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dcsbench.agent import Agent


class MeanAction(Agent):
    """Ignores the video; replays the mean labeled action (the example of dcsbench/agent.py).
    Supports checkpoints; with ``fits_file=PATH`` it appends a line there at every fit (the
    agent runs in its own process, so resume tests count fits through a file)."""

    name = "mean-action"
    version = "1"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):
        if self.config.get("fits_file"):
            with open(self.config["fits_file"], "a") as f:
                f.write("fit\n")
        acts = np.concatenate([labeled.actions(i) for i in range(labeled.n_trajectories)])
        self.mean = acts.mean(0).astype(np.float32)
        for step in range(1, 4):
            logger.log({"loss": 1.0 / step}, step=step)

    def act(self, obs):
        return np.repeat(self.mean[None], len(obs), axis=0)

    def save(self, path):
        Path(path, "mean.json").write_text(json.dumps(self.mean.tolist()))

    def load(self, path):
        self.mean = np.asarray(json.loads(Path(path, "mean.json").read_text()), dtype=np.float32)


class ConstantAgent(Agent):
    """Always outputs ``value`` in every action dimension (default 0)."""

    name = "constant"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):
        self.dim = spec.action_dim
        self.value = float(self.config.get("value", 0.0))

    def act(self, obs):
        return np.full((len(obs), self.dim), self.value, dtype=np.float32)


class RandomAgent(Agent):
    """Uniform random actions from a generator seeded in ``fit`` (deterministic per run)."""

    name = "random"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):
        self.dim = spec.action_dim
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        return self.rng.uniform(-1, 1, size=(len(obs), self.dim)).astype(np.float32)


class PixelLatent(MeanAction):
    """MeanAction plus 'latent actions' = mean pixel change between o_t and o_{t+1}
    (per channel of the newest frame): gives the harness probe something to fit."""

    name = "pixel-latent"

    def latent_actions(self, obs, next_obs):
        diff = next_obs[..., -3:].astype(np.float32) - obs[..., -3:].astype(np.float32)
        return diff.mean(axis=(1, 2))
