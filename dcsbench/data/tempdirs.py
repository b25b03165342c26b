"""Temporary folders owned by a live process, and the cleaning of those left by dead ones.

Every temporary folder of a dataset (``.{split}.tmp-*`` of a split cache,
:mod:`dcsbench.data.cache`; ``.{name}.tmp-*`` of a dataset build) holds an ``.owner`` file on
which the writing process keeps an exclusive ``flock`` while it writes
(:func:`owned_tempdir`). :func:`clean_stale_temp` removes a temporary folder only when that lock
can be taken (its writer is dead: the kernel drops the lock of a killed process), or, for a
folder without ``.owner`` (left by an older dcsbench), when it is older than
:data:`STALE_TEMP_AGE_S`. Only names matching our patterns are touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

#: A temporary folder without an ``.owner`` lock file is removed when older than this.
STALE_TEMP_AGE_S = 15 * 60

OWNER_FILE = ".owner"


@contextlib.contextmanager
def owned_tempdir(parent: Path, prefix: str) -> Iterator[Path]:
    """A temporary folder ``parent/{prefix}XXXX`` holding an ``.owner`` file locked (``flock``)
    by this process while the block runs, so that :func:`clean_stale_temp` in another process
    leaves it alone. The caller renames the folder into place (call :func:`release_owner` first);
    whatever is still at the temporary path when the block ends (raised, or not renamed) is
    removed."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    fd = os.open(tmp / OWNER_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _lock(fd, blocking=True)
        os.write(fd, json.dumps({"pid": os.getpid(), "created": time.time()}).encode())
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)  # releases the lock


def release_owner(tmp: Path) -> None:
    """Remove the ``.owner`` file of a temporary folder about to be renamed into place (its lock
    stays held until :func:`owned_tempdir` exits)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(Path(tmp) / OWNER_FILE)


def _lock(fd: int, blocking: bool) -> bool:
    """Take an exclusive ``flock`` on ``fd`` (waiting for it when ``blocking``); returns whether
    it was taken (without ``fcntl``: ``not blocking``)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, age rule only
        return not blocking
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def _is_stale(folder: Path, now: float) -> bool:
    """Whether temporary folder ``folder`` was left by a dead writer (see the module docstring)."""
    owner = folder / OWNER_FILE
    try:
        fd = os.open(owner, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return now - folder.stat().st_mtime > STALE_TEMP_AGE_S
        except FileNotFoundError:
            return False
    except OSError:
        return False
    try:
        return _lock(fd, blocking=False) and owner.exists()
    finally:
        os.close(fd)


def clean_stale_temp(parent: Path, patterns: Iterable[str] = (".*.tmp-*", ".*.old-*")) -> list[Path]:
    """Remove the stale temporary folders directly under ``parent`` (see the module docstring:
    only our name patterns, only when the writer's lock is free or, lacking an ``.owner`` file,
    older than :data:`STALE_TEMP_AGE_S`). Returns the folders removed."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    removed, now = [], time.time()
    seen = set()
    for pat in patterns:
        for p in parent.glob(pat):
            if p in seen or p.is_symlink() or not p.is_dir():
                continue
            seen.add(p)
            if _is_stale(p, now):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed
