"""Reference baselines behind the :class:`dcsbench.agent.Agent` interface (REFERENCE.md).

* :data:`BASELINES` - method name -> ``"module:Class"``: ``bc``, ``idm``, ``lapo``, ``laom``,
  ``laom-sup``.
* :func:`load_config` - a method's configuration (``paper`` or ``tiny`` preset from
  ``baselines/configs/{method}.yaml``) with overrides such as ``["lam.lr=3e-4"]``, validated.
* :func:`make_agent` - an agent ready to ``fit``.

Example::

    from baselines import make_agent
    agent = make_agent("laom-sup", preset="tiny", **{"lam.epochs": 1})
    agent.fit(unlabeled, labeled, spec, budget=4, seed=0, logger=None)
    actions = agent.act(obs_batch)
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import yaml

from dcsbench.overrides import nested_overrides, set_dotted
from dcsbench.registry import check_choice

#: Method name -> ``"module:Class"`` of its Agent.
BASELINES: dict[str, str] = {
    "bc": "baselines.bc:BCAgent",
    "idm": "baselines.idm:IDMAgent",
    "lapo": "baselines.lapo:LAPOAgent",
    "laom": "baselines.laom:LAOMAgent",
    "laom-sup": "baselines.laom:LAOMSupAgent",
}

#: Presets every method's YAML offers (``small`` and ``tiny`` are merged over ``paper``):
#: ``paper`` the paper's values, ``small`` the tiny tier on one GPU, ``tiny`` a 2-core CPU smoke size.
PRESETS: tuple[str, ...] = ("paper", "small", "tiny")

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def agent_class(method: str) -> type:
    """The Agent class of ``method`` (unknown names raise, listing the valid ones)."""
    module, _, cls = BASELINES[check_choice("method", method, BASELINES)].partition(":")
    return getattr(importlib.import_module(module), cls)


def _merge(base: dict, over: dict) -> dict:
    """Deep merge ``over`` into a copy of ``base``."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def parse_overrides(overrides: list[str] | dict | None) -> dict:
    """``["lam.lr=3e-4", "bc.epochs=2"]`` or ``{"lam.lr": 3e-4}`` -> nested dict.

    String values are read by :func:`dcsbench.overrides.parse_value` (JSON, then YAML, then the
    string; never executed).
    """
    out: dict = {}
    if overrides is None:
        return out
    if isinstance(overrides, dict):
        for k, v in overrides.items():
            if isinstance(v, dict):
                nested: dict = {}
                set_dotted(nested, k, parse_overrides(v))
                out = _merge(out, nested)
            else:
                set_dotted(out, k, v)
        return out
    return nested_overrides(overrides)


def load_config(method: str, preset: str = "paper", overrides: list[str] | dict | None = None) -> dict:
    """The validated configuration dict of ``method`` at ``preset`` with ``overrides`` applied.

    Unknown methods, presets and config keys raise ``ValueError`` listing the valid ones. The dict
    holds every field (defaults filled in) and is what the agent's constructor takes.
    """
    cls = agent_class(method)
    check_choice("preset", preset, PRESETS)
    raw = yaml.safe_load((CONFIG_DIR / f"{method}.yaml").read_text()) or {}
    cfg = raw.get("paper", {}) or {}
    if preset != "paper":
        cfg = _merge(cfg, raw.get(preset, {}) or {})
    cfg = _merge(cfg, parse_overrides(overrides))
    from dataclasses import asdict

    from baselines.common import from_dict
    return asdict(from_dict(cls.Config, cfg))


def make_agent(method: str, preset: str = "tiny", **overrides: Any):
    """An agent of ``method`` at ``preset``; keyword overrides may be dotted (``**{"lam.lr": 3e-4}``)
    or nested (``lam={"lr": 3e-4}``)."""
    cfg = load_config(method, preset, overrides)
    agent = agent_class(method)(**cfg)
    return agent


__all__ = ["BASELINES", "PRESETS", "agent_class", "load_config", "make_agent", "parse_overrides"]
