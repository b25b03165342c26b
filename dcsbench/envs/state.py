"""Proprioceptive state: the flat vector the experts act on (never given to agents)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def flatten_state(observation: Mapping[str, np.ndarray]) -> np.ndarray:
    """Concatenate a dm_control observation dict into one float32 vector.

    Keys are taken in **sorted** order (the order of a ``gymnasium.spaces.Dict``), so the same
    vector comes out of dm_control directly and out of a Gymnasium/shimmy wrapper.
    """
    return np.concatenate(
        [np.asarray(observation[k], dtype=np.float32).ravel() for k in sorted(observation)])
