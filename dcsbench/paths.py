"""The one place that decides where dcsbench keeps files on this machine.

``$DCSBENCH_HOME`` if set, else ``~/.cache/dcsbench``; datasets live under ``datasets/``, the
procedural clip cache under ``clips/`` and the authors' raw files under ``raw/``. A bottom-level
module (no dcsbench imports) so that both :mod:`dcsbench.envs` and :mod:`dcsbench.data` use it
without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_root(root: str | os.PathLike | None = None) -> Path:
    """The cache root: ``root`` if given, else ``$DCSBENCH_HOME``, else ``~/.cache/dcsbench``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("DCSBENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dcsbench"
