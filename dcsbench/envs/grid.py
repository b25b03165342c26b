"""Frame grids for looking at the environments (``dcsbench show-env``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def frame_grid(task: str, setting: str, source: str = "procedural",
               pools=("train", "novel"), seeds=(0, 1, 2), steps=(0, 10, 20, 40, 80, 160),
               davis_dir=None, pad: int = 2) -> np.ndarray:
    """Roll out a seeded random policy and tile frames: rows = (pool, seed), columns = steps.

    A ``pad``-pixel white gap separates frames and a wider one separates pools. Returns an
    (H, W, 3) uint8 image.
    """
    from dcsbench.envs import make_env

    steps = sorted(int(s) for s in steps)
    if not steps or steps[0] < 0:
        raise ValueError("steps must be non-negative integers")
    blocks = []
    for pool in pools:
        env = make_env(task, setting, backgrounds=pool, source=source, davis_dir=davis_dir,
                       frame_stack=1, episode_length=steps[-1] + 1)
        rows = []
        for seed in seeds:
            act_rng = np.random.default_rng(10_000 + int(seed))
            frame, _ = env.reset(seed=int(seed))
            shots = {}
            for t in range(steps[-1] + 1):
                if t in steps:
                    shots[t] = frame
                if t < steps[-1]:
                    action = act_rng.uniform(-1, 1, size=env.action_space.shape)
                    frame, *_ = env.step(action.astype(np.float32))
            rows.append(_hcat([shots[t] for t in steps], pad))
        env.close()
        blocks.append(_vcat(rows, pad))
    return _vcat(blocks, 4 * pad)


def _cat(images, pad, axis):
    """Concatenate equally sized images along ``axis`` (1: side by side, 0: stacked) with white gaps."""
    gap_shape = list(images[0].shape)
    gap_shape[axis] = pad
    gap = np.full(gap_shape, 255, np.uint8)
    parts = [images[0]]
    for im in images[1:]:
        parts += [gap, im]
    return np.concatenate(parts, axis=axis)


def _hcat(images, pad):
    return _cat(images, pad, axis=1)


def _vcat(images, pad):
    return _cat(images, pad, axis=0)


def save_png(image: np.ndarray, path, scale: int = 1) -> Path:
    """Write ``image`` (H,W,3 uint8) as PNG, upscaled by ``scale`` (nearest), atomically."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.asarray(image, np.uint8))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        im.save(tmp, format="PNG")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
