"""Datasets: format, local cache, hub download/upload, labeled subsets, eval split, views.

Python API:

* :func:`load_dataset` (``dcsbench.load_dataset``) - open one split of a dataset by name
  (``"train"``, ``"labeled-{B}"``, ``"eval"``) with numpy access to frames/actions/rewards.
* :func:`prepare` - what the protocol runner needs: the unlabeled view, the labeled view of a
  budget, the eval split (harness only), the :class:`~dcsbench.agent.EnvSpec` and the identity.
* :func:`make_views_from_arrays` - in-memory views for tests.
* :class:`ArrayUnlabeledView`, :class:`ArrayLabeledView`, :class:`EvalSplit` - see :mod:`dcsbench.data.views`.
"""

from __future__ import annotations

import importlib

from dcsbench.data.views import ArrayLabeledView, ArrayUnlabeledView, EvalSplit, make_views_from_arrays

# Heavier parts are imported on first use (pyarrow, huggingface_hub).
_LAZY = {
    "prepare": "dcsbench.data.store",
    "load_dataset": "dcsbench.data.store",
    "ProtocolData": "dcsbench.data.store",
    "DatasetSplit": "dcsbench.data.store",
    "dataset_root": "dcsbench.data.store",
    "build_dataset": "dcsbench.data.build",
    "download": "dcsbench.data.hub",
    "publish": "dcsbench.data.hub",
    "verify": "dcsbench.data.verify",
}

__all__ = ["EvalSplit", "ArrayLabeledView", "ArrayUnlabeledView", "make_views_from_arrays", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dcsbench.data' has no attribute {name!r}")
