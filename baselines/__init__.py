"""Reference baselines behind the :class:`dcsbench.agent.Agent` interface (docs/baselines.md).

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

import importlib
from pathlib import Path
from typing import Any

import yaml

from dcsbench.overrides import deep_merge, nested_overrides, set_dotted
from dcsbench.catalogue import check_choice

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
    """Deep merge ``over`` into a copy of ``base`` (:func:`dcsbench.overrides.deep_merge`)."""
    return deep_merge(base, over)


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

    from baselines.config import from_dict
    return asdict(from_dict(cls.Config, cfg))


#: Slowest stage's samples/s of each method at the ``paper`` preset on the 2-core CPU sandbox
#: (benchmarks/RESULTS-baselines.md, batch 16): the basis of :func:`choose_preset`'s estimate.
CPU_PAPER_SAMPLES_PER_S: dict[str, float] = {"bc": 0.3, "idm": 0.2, "lapo": 0.3, "laom": 0.2,
                                             "laom-sup": 0.2}

#: Updates of one ``paper`` stage on the full tier (10 epochs of 5M transitions at batch 512).
PAPER_STAGE_UPDATES = 97_700


def choose_preset(method: str, preset: str | None = None, cuda: bool | None = None
                  ) -> tuple[str, str, str | None]:
    """The preset a run uses: ``(preset, reason, warning or None)``.

    An explicit ``preset`` is kept (with a warning and an estimate from the measured CPU update
    rates when it is ``paper`` or ``small`` on a machine without CUDA). Without one: ``paper``
    when CUDA is available, else ``tiny`` (the paper's networks, ~100-200M parameters, cannot
    finish on a CPU).
    """
    if cuda is None:
        import torch

        cuda = bool(torch.cuda.is_available())
    if preset is not None:
        check_choice("preset", preset, PRESETS)
        warning = None
        if not cuda and preset == "paper":
            rate = CPU_PAPER_SAMPLES_PER_S.get(method, 0.2)
            per_update_min = 512 / rate / 60
            years = PAPER_STAGE_UPDATES * 512 / rate / (3600 * 24 * 365)
            warning = (f"preset paper on a machine without CUDA: {method}'s slowest stage ran at "
                       f"{rate} samples/s on a 2-core CPU (benchmarks/RESULTS-baselines.md), "
                       f"i.e. ~{per_update_min:.0f} min per update of batch 512 and ~{years:.0f} "
                       f"years for one stage's {PAPER_STAGE_UPDATES:,} updates on the full tier; "
                       f"it will not finish. Use --preset tiny (CPU minutes) or a GPU")
        elif not cuda and preset == "small":
            warning = ("preset small on a machine without CUDA: sized for one GPU (~2000 updates "
                       "of batch 256 per stage with scale-4/8 encoders); expect hours per run on "
                       "a CPU. --preset tiny is the CPU size")
        return preset, "given explicitly", warning
    if cuda:
        return "paper", "CUDA is available (the paper's configuration)", None
    return "tiny", ("no CUDA device: the paper preset's networks (~100-200M parameters) cannot "
                    "finish on a CPU; pass --preset paper or small to override"), None


def make_agent(method: str, preset: str = "tiny", **overrides: Any):
    """An agent of ``method`` at ``preset``; keyword overrides may be dotted (``**{"lam.lr": 3e-4}``)
    or nested (``lam={"lr": 3e-4}``)."""
    cfg = load_config(method, preset, overrides)
    agent = agent_class(method)(**cfg)
    return agent


__all__ = ["BASELINES", "PRESETS", "agent_class", "choose_preset", "load_config", "make_agent",
           "parse_overrides"]
