"""Local training cache: one memory-mapped uint8 frame array per split, built once from shards.

Layout of a dataset folder under the cache root (``$DCSBENCH_HOME/datasets/{name}``)::

    manifest.json  README.md  origin.json       identity (origin: local build, hub, or import)
    data/*.parquet                              shards (local builds/imports; downloads keep them
                                                in the Hugging Face cache instead)
    cache/train/frames.npy   (N, 64, 64, 3) uint8, trajectories back to back
    cache/train/actions.npy  rewards.npy  states.npy     (hidden data: separate files)
    cache/train/COMPLETE                        written last; a split without it does not exist
    cache/eval/...

A split cache is written into a temporary sibling folder and renamed into place, so a killed
build never leaves a split that counts as complete. Frames are opened with ``np.frombuffer`` over
a read-only ``mmap.mmap`` (no ``np.memmap``: its ``.filename`` would reveal the cache folder).
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from dcsbench.data.format import FRAME_SHAPE, ContentHasher

COMPLETE = "COMPLETE"
ARRAYS = ("frames", "actions", "rewards", "states")


def open_npy_readonly(path: str | Path) -> np.ndarray:
    """Map a ``.npy`` file read-only; the array's ``.base`` chain ends at an anonymous-looking
    ``mmap.mmap`` (no file name attribute)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
        if fortran or dtype.hasobject:
            raise ValueError(f"{Path(path).name}: unsupported array layout")
        count = int(np.prod(shape))
        if count == 0:
            return np.zeros(shape, dtype)
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mm, dtype=dtype, count=count, offset=offset).reshape(shape)


def split_dir(dataset_dir: Path, split: str) -> Path:
    """Folder of one split's cache."""
    return Path(dataset_dir) / "cache" / split


def split_complete(dataset_dir: Path, split: str) -> dict | None:
    """The COMPLETE record of a split cache (``{"content_hash", ...}``), or None if absent."""
    p = split_dir(dataset_dir, split) / COMPLETE
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def write_split_cache(dataset_dir: Path, split: str, trajectories: Iterable[dict], lengths: list[int],
                      action_dim: int, state_dim: int, expected_hash: str | None = None) -> str:
    """Write one split's memory-mapped arrays from decoded trajectories, atomically.

    Args:
        dataset_dir: the dataset folder.
        split: ``"train"`` or ``"eval"``.
        trajectories: dicts with ``obs``, ``actions``, ``rewards``, ``states`` in split order.
        lengths: expected length of each trajectory (sizes the arrays up front).
        expected_hash: if given, the split content hash the decoded data must have; a mismatch
            raises and leaves nothing behind.

    Returns:
        The split content hash of what was written.
    """
    final = split_dir(dataset_dir, split)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{split}.tmp-"))
    try:
        n = int(sum(lengths))
        specs = {"frames": ((n, *FRAME_SHAPE), np.uint8), "actions": ((n, action_dim), np.float32),
                 "rewards": ((n,), np.float32), "states": ((n, state_dim), np.float32)}
        out = {k: np.lib.format.open_memmap(tmp / f"{k}.npy", mode="w+", dtype=dt, shape=shape)
               for k, (shape, dt) in specs.items()}
        hasher = ContentHasher()
        pos = 0
        for i, tr in enumerate(trajectories):
            if i >= len(lengths) or len(tr["obs"]) != lengths[i]:
                raise ValueError(f"{split}: trajectory {i} does not match the manifest's lengths")
            t = len(tr["obs"])
            out["frames"][pos:pos + t] = tr["obs"]
            out["actions"][pos:pos + t] = tr["actions"]
            out["rewards"][pos:pos + t] = tr["rewards"]
            out["states"][pos:pos + t] = tr["states"]
            hasher.add(tr["obs"], tr["actions"], tr["rewards"], tr["states"])
            pos += t
        if hasher.n != len(lengths):
            raise ValueError(f"{split}: {hasher.n} trajectories decoded, manifest lists {len(lengths)}")
        for a in out.values():
            a.flush()
        del out
        digest = hasher.hexdigest()
        if expected_hash is not None and digest != expected_hash:
            raise ValueError(f"{split}: decoded content hash {digest[:12]} != manifest "
                             f"{expected_hash[:12]} (corrupt or mismatched shards)")
        with open(tmp / COMPLETE, "w") as f:
            json.dump({"content_hash": digest, "n_trajectories": len(lengths), "n_frames": n}, f)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return digest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_split_arrays(dataset_dir: Path, split: str, names=ARRAYS) -> dict[str, np.ndarray]:
    """Open the requested arrays of a complete split cache (read-only memory maps)."""
    if split_complete(dataset_dir, split) is None:
        raise FileNotFoundError(f"split {split!r} is not in the local cache of {Path(dataset_dir).name}")
    d = split_dir(dataset_dir, split)
    return {k: open_npy_readonly(d / f"{k}.npy") for k in names}


def hash_split_cache(dataset_dir: Path, split: str, lengths: list[int]) -> str:
    """Recompute the content hash of a split cache from its arrays (for ``verify``)."""
    arr = read_split_arrays(dataset_dir, split)
    h = ContentHasher()
    pos = 0
    for t in lengths:
        h.add(arr["frames"][pos:pos + t], arr["actions"][pos:pos + t], arr["rewards"][pos:pos + t],
              arr["states"][pos:pos + t])
        pos += t
    return h.hexdigest()
