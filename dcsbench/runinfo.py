"""Provenance of a run: seeding, the source commit, the machine, JSON-safe configs.

Small pure helpers the runner (:mod:`dcsbench.protocol`) and the agent worker
(:mod:`dcsbench.isolation`) share.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global RNG and torch (CPU and CUDA) from ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def git_commit() -> str | None:
    """Commit of the dcsbench source tree (``-dirty`` if modified), or ``None`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "dcsbench", "baselines"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


def hardware_info() -> dict[str, str]:
    """Machine description for the record: OS, Python, CPU count, torch, accelerator."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": str(os.cpu_count())}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = str(torch.get_num_threads())
        if torch.cuda.is_available():
            info["accelerator"] = torch.cuda.get_device_name(0)
            info["cuda"] = str(torch.version.cuda)
        else:
            info["accelerator"] = "cpu"
    except ImportError:  # pragma: no cover
        pass
    return info


def json_safe(obj: Any) -> Any:
    """A JSON-serialisable copy of a config (unknown objects become their ``repr``)."""
    return json.loads(json.dumps(obj, default=repr))
