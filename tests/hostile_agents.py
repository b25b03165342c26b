"""Agents that attack the harness, for tests/test_tamper.py (importable as a module so that the
agent worker process can unpickle them).

Each writes what it managed to reach to the JSON file ``config["report"]`` (an absolute path the
test chose), so the test can tell "the attack failed" from "the attack did not run".
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from dcsbench.agent import Agent

#: Objects an agent must never reach: the harness's data, environments and bookkeeping.
HIDDEN_TYPES = {"EvalSplit", "ProtocolData", "DCSEnv", "SyncVectorEnv", "AsyncVectorEnv",
                "Physics", "_Work", "ProgressLogger"}


def _report(agent: Agent, **found) -> None:
    path = Path(agent.config["report"])
    old = json.loads(path.read_text()) if path.exists() else {}
    for k, v in found.items():
        old.setdefault(k, [])
        old[k] = sorted(set(old[k]) | set(v))
    path.write_text(json.dumps(old))


def _walk_frames(rewrite_returns: bool) -> list[str]:
    """Walk the callers' frames; add 12345 in place to any ndarray called ``returns``."""
    found = []
    f = sys._getframe(2)
    while f is not None:
        for key, value in list(f.f_locals.items()):
            if key == "returns" and isinstance(value, np.ndarray) and value.dtype.kind == "f":
                if rewrite_returns:
                    value += 12345.0
                found.append(f"returns in {f.f_code.co_name}")
            if type(value).__name__ in HIDDEN_TYPES:
                found.append(f"{type(value).__name__} in {f.f_code.co_name}")
        f = f.f_back
    return found


def _scan_gc(budget: int | None) -> list[str]:
    """Every hidden object the garbage collector tracks (and a labeled view larger than the
    budget: the harness's all-train-actions view)."""
    found = []
    for o in gc.get_objects():
        name = type(o).__name__
        if name in HIDDEN_TYPES:
            found.append(name)
        elif name == "ArrayLabeledView" and budget is not None and o.n_trajectories > budget:
            found.append(f"ArrayLabeledView of {o.n_trajectories} trajectories")
    return found


class _Base(Agent):
    version = "1"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):
        self.dim, self.budget = spec.action_dim, budget
        self.calls = 0

    def act(self, obs):
        return np.zeros((len(obs), self.dim), np.float32)


class ReturnRewriter(_Base):
    """From ``act``: rewrite the evaluation loop's returns in place, look for envs and data."""

    name = "return-rewriter"

    def act(self, obs):
        self.calls += 1
        found = _walk_frames(rewrite_returns=True)
        if self.calls == 1:
            found += _scan_gc(self.budget)
        _report(self, act=found)
        return super().act(obs)


class LatentSnoop(_Base):
    """From ``latent_actions`` (the probe stage): look for the eval split and hidden actions."""

    name = "latent-snoop"

    def latent_actions(self, obs, next_obs):
        self.calls += 1
        found = _walk_frames(rewrite_returns=False)
        if self.calls == 1:
            found += _scan_gc(self.budget)
        _report(self, latents=found)
        return (next_obs.astype(np.float32) - obs.astype(np.float32)).mean(axis=(1, 2))


class EnvSnoop(_Base):
    """Looks for where the data lives: environment variables, the working folder."""

    name = "env-snoop"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):
        super().fit(unlabeled, labeled, spec, budget, seed, logger)
        root = self.config["root"]
        found = [k for k in ("DCSBENCH_HOME", "DCSBENCH_REFERENCES") if k in os.environ]
        try:
            environ = Path("/proc/self/environ").read_bytes()
            found += [f"/proc/self/environ: {k}" for k in ("DCSBENCH_HOME=",)
                      if k.encode() in environ]
        except OSError:
            pass
        if root in os.getcwd():
            found.append("cwd in the dataset root")
        _report(self, fit=found, ran=["fit"])


class Crasher(_Base):
    """Dies in ``act`` (the process exits)."""

    name = "crasher"

    def act(self, obs):
        os._exit(3)


class Hanger(_Base):
    """Never answers ``act``."""

    name = "hanger"

    def act(self, obs):
        time.sleep(600)


class Garbage(_Base):
    """Answers ``act`` with ``config["kind"]``: a string, a complex array or a wrong shape."""

    name = "garbage"

    def act(self, obs):
        kind = self.config["kind"]
        if kind == "string":
            return "full throttle"
        if kind == "complex":
            return np.full((len(obs), self.dim), 0.5 + 2j)
        return np.zeros((len(obs), self.dim + 1), np.float32)


class _Marker:
    """Unpickling this creates the marker file: proof that the harness ran agent-sent code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


class PickleSender(_Base):
    """Finds the worker's pipe and sends a pickle that would run code if the harness unpickled it."""

    name = "pickle-sender"

    def act(self, obs):
        f = sys._getframe(1)
        while f is not None:
            conn = f.f_locals.get("conn")
            if conn is not None and hasattr(conn, "send"):
                conn.send(_Marker(self.config["marker"]))
                _report(self, act=["sent"])
                break
            f = f.f_back
        return super().act(obs)


class Escaper(_Base):
    """A method name that is a path: ``../../escape``."""

    name = "../../escape"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):
        _report(self, ran=["fit"])
        super().fit(unlabeled, labeled, spec, budget, seed, logger)
