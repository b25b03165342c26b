"""dcsbench: the Distracting Control Suite benchmark for latent action learning.

Public API (imported lazily, so ``import dcsbench`` is cheap):

* :func:`make_env` / :func:`make_vector_env` - DCS environments (Gymnasium API).
* :func:`load_dataset` - download (or build), verify and open a dataset by name.
* :class:`Agent`, :class:`EnvSpec` - the interface every method implements.
* :func:`evaluate` - run the protocol for one (method, dataset, budget, seed).
* :mod:`dcsbench.catalogue` - tasks, settings, tiers, budgets, seeds, dataset names.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "make_env": "dcsbench.envs",
    "make_vector_env": "dcsbench.envs",
    "load_dataset": "dcsbench.data",
    "Agent": "dcsbench.agent",
    "EnvSpec": "dcsbench.agent",
    "evaluate": "dcsbench.protocol",
    "ResultRecord": "dcsbench.results",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dcsbench' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
