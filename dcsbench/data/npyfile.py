""".npy array files of a split cache, read without trusting them: headers, exact sizes,
read-only maps, a sampled sha256, and the per-file record ``COMPLETE`` keeps
(:mod:`dcsbench.data.cache`). A missing, truncated or unreadable file raises
:class:`CacheCorruptError` naming it.
"""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

import numpy as np

from dcsbench.data.format import sha256_file

#: Sampled check: number and size of the blocks of a file hashed by :func:`sampled_sha256`.
SAMPLE_BLOCKS = 256
SAMPLE_BLOCK_BYTES = 16 * 1024


class CacheCorruptError(ValueError):
    """A split cache file is missing, truncated or differs from what ``COMPLETE`` recorded.

    Attributes:
        path: the file concerned.
        problem: what is wrong with it (the message is ``"{path}: {problem}"``).
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


def npy_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of a ``.npy`` file; :class:`CacheCorruptError` if the
    file is missing or its header is unreadable, or the layout is unsupported."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except FileNotFoundError:
        raise CacheCorruptError(path, "missing") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise CacheCorruptError(path, f"not a readable .npy file ({err})") from None
    if fortran or dtype.hasobject:
        raise CacheCorruptError(path, "unsupported array layout (Fortran order or objects)")
    return tuple(int(s) for s in shape), dtype, offset


def _check_npy_size(path: Path, shape, dtype, offset: int) -> int:
    """The file size, after checking it holds exactly the data its header declares."""
    size = path.stat().st_size
    want = offset + int(np.prod(shape)) * dtype.itemsize
    if size < want:
        raise CacheCorruptError(path, f"truncated: {size} bytes, but its header declares "
                                      f"{shape} {dtype} = {want} bytes")
    if size > want:
        raise CacheCorruptError(path, f"{size - want} bytes beyond the {shape} {dtype} array "
                                      "its header declares")
    return size


def open_npy_readonly(path: str | Path) -> np.ndarray:
    """Map a ``.npy`` file read-only; the array's ``.base`` chain ends at an anonymous-looking
    ``mmap.mmap`` (no file name attribute). A truncated file raises :class:`CacheCorruptError`
    naming it."""
    path = Path(path)
    shape, dtype, offset = npy_header(path)
    _check_npy_size(path, shape, dtype, offset)
    count = int(np.prod(shape))
    if count == 0:
        return np.zeros(shape, dtype)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mm, dtype=dtype, count=count, offset=offset).reshape(shape)


def sampled_sha256(path: str | Path, blocks: int = SAMPLE_BLOCKS,
                   block_bytes: int = SAMPLE_BLOCK_BYTES) -> str:
    """sha256 of a sample of a file: its size, the first block (the ``.npy`` header), ``blocks``
    blocks at evenly spaced offsets ``k * (size - block) // (blocks - 1)`` and the last block.
    Reads at most ``(blocks + 2) * block_bytes`` bytes (4 MiB by default)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(np.int64(size).tobytes())
    span = max(0, size - block_bytes)
    offsets = [0, *(k * span // max(1, blocks - 1) for k in range(blocks)), span]
    with open(path, "rb") as f:
        for off in offsets:
            f.seek(off)
            h.update(f.read(block_bytes))
    return h.hexdigest()


def _file_record(path: Path) -> dict:
    """The record ``COMPLETE`` keeps of one array file: size, shape, dtype, sha256, sampled sha256."""
    shape, dtype, _ = npy_header(path)
    return {"bytes": path.stat().st_size, "shape": list(shape), "dtype": dtype.str,
            "sha256": sha256_file(path), "sampled_sha256": sampled_sha256(path)}
