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

**Checked when opened.** ``COMPLETE`` (version 2) records, besides the split content hash, each
array file's byte size, shape, dtype, sha256 and a *sampled* sha256 (see :func:`sampled_sha256`).
:func:`check_split` (used by :func:`read_split_arrays`, hence by ``load_dataset`` and
``prepare``) checks every file's size and ``.npy`` header against it, then:

* **full** check, when the split's array files total at most :data:`FULL_CHECK_MAX_BYTES`
  (1 GiB): the split content hash (:class:`~dcsbench.data.format.ContentHasher`, the hash the
  manifest and result records cite) is recomputed from the memory-mapped arrays and must equal
  the recorded one (and the manifest's, when the caller passes it). It runs at the speed of
  sha256: measured on the 2-core CPU sandbox (benchmarks/RESULTS-data.md), 0.79 s for the
  198 MB train split of ``cheetah-run-distractors-tiny`` (0.25 s for eval) while the shared
  machine was loaded 4x over (plain sha256 then ran at 286 MB/s; 1.66 GB/s on a quiet core, i.e.
  ~0.15 s). So the 1 GiB threshold costs between ~0.7 s (quiet) and ~4 s (loaded) once per
  process, against runs that last minutes; it covers every ``tiny`` split, where a byte flip
  anywhere is caught, while the 6 GB train split of ``small`` (4-25 s per open) is sampled.
* **sampled** check above it (``small``: 6 GB of train frames, ``full``: 61 GB): the small
  arrays (actions, rewards, states; 48 MB for ``small``) are hashed in full (sha256 of the file
  against ``COMPLETE``), the frame file by :func:`sampled_sha256` (header, 256 blocks of 16 KiB at
  fixed, evenly spaced offsets, the last block). This catches truncation, a replaced or zeroed
  file and damaged regions, but a single flipped frame byte outside the sampled blocks is not
  detected: run ``dcsbench verify NAME`` for the full check. The content hash returned is then
  the recorded one, verified equal to the manifest's.

A successful check is remembered for the rest of the process, keyed by each file's (inode,
size, mtime, ctime), so one run that opens a split several times hashes it once.

**Old caches.** A ``COMPLETE`` written before version 2 (no per-file records) is given the full
check once, whatever the size; when it passes, the per-file records are computed and added to
``COMPLETE`` (atomically; skipped silently on a read-only cache). When it fails the split counts
as corrupt.

**Corrupt caches** raise :class:`CacheCorruptError` naming the file and what is wrong; the caller
(:mod:`dcsbench.data.store`) re-decodes the split from its verified shards, or refuses.

**Files and folders.** The array files are read by :mod:`dcsbench.data.npyfile` (headers, exact
sizes, read-only maps, sampled sha256, :class:`CacheCorruptError`); a split is written in a
temporary folder owned by its writer (:mod:`dcsbench.data.tempdirs`: ``.{split}.tmp-*``, removed
by :func:`clean_stale_temp` once the writer is dead). Both are re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dcsbench.data.format import FRAME_SHAPE, ContentHasher, sha256_file
from dcsbench.data.npyfile import (SAMPLE_BLOCK_BYTES, SAMPLE_BLOCKS, CacheCorruptError,  # noqa: F401
                                   _check_npy_size, _file_record, npy_header, open_npy_readonly,
                                   sampled_sha256)
from dcsbench.data.tempdirs import (OWNER_FILE, STALE_TEMP_AGE_S, _lock, clean_stale_temp,  # noqa: F401
                                    owned_tempdir, release_owner)

COMPLETE = "COMPLETE"
ARRAYS = ("frames", "actions", "rewards", "states")

#: Version of the ``COMPLETE`` record (2: per-file sizes, shapes, sha256 and sampled sha256).
COMPLETE_VERSION = 2

#: A split whose array files total at most this many bytes gets the full content-hash check at
#: every open (see the module docstring for the measurement behind it).
FULL_CHECK_MAX_BYTES = 1 << 30

_CHECKED: dict[tuple, str] = {}


# --------------------------------------------------------------------------- writing


def split_dir(dataset_dir: Path, split: str) -> Path:
    """Folder of one split's cache."""
    return Path(dataset_dir) / "cache" / split


def split_complete(dataset_dir: Path, split: str) -> dict | None:
    """The COMPLETE record of a split cache (``{"content_hash", ...}``), or None if absent."""
    p = split_dir(dataset_dir, split) / COMPLETE
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _write_complete(folder: Path, record: dict) -> None:
    """Write ``COMPLETE`` atomically (temp file, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".COMPLETE.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / COMPLETE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
        The split content hash of what was written. ``COMPLETE`` (written last) records it with
        each file's size, shape, dtype, sha256 and sampled sha256 (checked by :func:`check_split`).
    """
    final = split_dir(dataset_dir, split)
    clean_stale_temp(final.parent)
    with owned_tempdir(final.parent, f".{split}.tmp-") as tmp:
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
        files = {f"{k}.npy": _file_record(tmp / f"{k}.npy") for k in ARRAYS}
        _write_complete(tmp, {"version": COMPLETE_VERSION, "content_hash": digest,
                              "n_trajectories": len(lengths), "n_frames": n,
                              "lengths": [int(t) for t in lengths], "files": files})
        release_owner(tmp)
        with _swap_lock(final.parent / f".{split}.lock"):  # two re-decodes at once: one at a time
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        _forget(final)
        return digest


@contextlib.contextmanager
def _swap_lock(path: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``path`` (created if needed) while the block runs."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _lock(fd, blocking=True)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- checking


def _forget(folder: Path) -> None:
    key = str(Path(folder).resolve())
    for k in [k for k in _CHECKED if k[0] == key]:
        del _CHECKED[k]


def _stat_key(folder: Path) -> tuple:
    out = [str(folder.resolve())]
    for name in (COMPLETE, *(f"{k}.npy" for k in ARRAYS)):
        try:
            st = (folder / name).stat()
            out.append((name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        except FileNotFoundError:
            out.append((name, None))
    return tuple(out)


def check_split(dataset_dir: Path, split: str, lengths: list[int] | None = None,
                expected_hash: str | None = None, full: bool | None = None) -> str:
    """Check one split cache against its ``COMPLETE`` record; returns its content hash.

    Args:
        dataset_dir: the dataset folder.
        split: ``"train"`` or ``"eval"``.
        lengths: the manifest's trajectory lengths: they must equal the recorded ones and the
            arrays' row count (default: the lengths ``COMPLETE`` recorded).
        expected_hash: the manifest's split content hash, which ``COMPLETE`` must equal.
        full: force (True) or skip (False) the full content-hash check; default: full when the
            files total at most :data:`FULL_CHECK_MAX_BYTES`, or when ``COMPLETE`` predates
            per-file records (it is then upgraded, see the module docstring).

    Returns:
        The content hash: recomputed from the arrays (full check) or the recorded one after the
        sampled check (see the module docstring).

    Raises:
        FileNotFoundError: the split is not in the cache (no ``COMPLETE``).
        CacheCorruptError: naming the file and the problem (size, header, hash).
    """
    d = split_dir(dataset_dir, split)
    rec = split_complete(dataset_dir, split)
    if rec is None:
        if (d / COMPLETE).is_file():
            raise CacheCorruptError(d / COMPLETE, "unreadable (not a JSON object)")
        raise FileNotFoundError(f"split {split!r} is not in the local cache of {Path(dataset_dir).name}")
    if not isinstance(rec.get("content_hash"), str):
        raise CacheCorruptError(d / COMPLETE, "has no content_hash")
    if expected_hash is not None and rec["content_hash"] != expected_hash:
        raise CacheCorruptError(d / COMPLETE, f"content hash {rec['content_hash'][:12]}... is not "
                                               f"the manifest's {expected_hash[:12]}...")
    recorded = rec.get("lengths")
    if lengths is not None:
        lengths = [int(t) for t in lengths]
        if recorded is not None and [int(t) for t in recorded] != lengths:
            raise CacheCorruptError(d / COMPLETE, "trajectory lengths differ from the manifest's")
    else:
        lengths = recorded
        if lengths is None and rec.get("n_trajectories") == 1 and isinstance(rec.get("n_frames"), int):
            lengths = [rec["n_frames"]]
    if lengths is not None and (rec.get("n_trajectories") != len(lengths)
                                or rec.get("n_frames") != int(sum(lengths))):
        raise CacheCorruptError(d / COMPLETE, f"records {rec.get('n_trajectories')} trajectories / "
                                              f"{rec.get('n_frames')} frames, the lengths say "
                                              f"{len(lengths)} / {int(sum(lengths))}")
    n = int(sum(lengths)) if lengths is not None else rec.get("n_frames")
    if not isinstance(n, int):
        raise CacheCorruptError(d / COMPLETE, "records no frame count")
    key = (*_stat_key(d), expected_hash, None if lengths is None else tuple(lengths), full)
    if key in _CHECKED:
        return _CHECKED[key]
    files = rec.get("files") if isinstance(rec.get("files"), dict) else None
    total = 0
    for k in ARRAYS:
        p = d / f"{k}.npy"
        shape, dtype, offset = npy_header(p)
        size = _check_npy_size(p, shape, dtype, offset)
        total += size
        want_dt = np.dtype(np.uint8 if k == "frames" else np.float32)
        if dtype != want_dt:
            raise CacheCorruptError(p, f"dtype {dtype}, expected {want_dt}")
        ok = (shape == (n, *FRAME_SHAPE) if k == "frames" else shape == (n,) if k == "rewards"
              else len(shape) == 2 and shape[0] == n)
        if not ok:
            raise CacheCorruptError(p, f"holds an array of shape {shape}, expected {n} rows"
                                       + (f" of {FRAME_SHAPE}" if k == "frames" else ""))
        if files is not None:
            r = files.get(f"{k}.npy") or {}
            if r.get("bytes") != size or tuple(r.get("shape") or ()) != shape:
                raise CacheCorruptError(p, f"{size} bytes, shape {shape}; COMPLETE recorded "
                                           f"{r.get('bytes')} bytes, shape {r.get('shape')}")
    legacy = files is None
    do_full = legacy or (full if full is not None else total <= FULL_CHECK_MAX_BYTES)
    if do_full and lengths is None:
        # an old COMPLETE without lengths, opened without the manifest's: sizes checked only
        return rec["content_hash"]
    if do_full:
        digest = _content_hash(d, lengths)
        if digest != rec["content_hash"]:
            raise CacheCorruptError(*_locate_damage(d, files, digest, rec["content_hash"]))
        if legacy:
            _upgrade_complete(d, rec, lengths)
    else:
        for k in ARRAYS:
            p = d / f"{k}.npy"
            r = files[f"{k}.npy"]
            if k == "frames":
                if sampled_sha256(p) != r.get("sampled_sha256"):
                    raise CacheCorruptError(p, "differs from COMPLETE's sampled sha256 (damaged "
                                               "or replaced since it was written)")
            elif sha256_file(p) != r.get("sha256"):
                raise CacheCorruptError(p, "differs from COMPLETE's sha256 (damaged since it was "
                                           "written)")
        digest = rec["content_hash"]
    _CHECKED[(*_stat_key(d), expected_hash, None if lengths is None else tuple(lengths), full)] = digest
    return digest


def _content_hash(d: Path, lengths: list[int]) -> str:
    arr = {k: open_npy_readonly(d / f"{k}.npy") for k in ARRAYS}
    h = ContentHasher()
    pos = 0
    for t in lengths:
        t = int(t)
        h.add(arr["frames"][pos:pos + t], arr["actions"][pos:pos + t], arr["rewards"][pos:pos + t],
              arr["states"][pos:pos + t])
        pos += t
    return h.hexdigest()


def _locate_damage(d: Path, files: dict | None, got: str, recorded: str) -> tuple[Path, str]:
    """``(path, problem)`` for a content-hash mismatch: the first file whose sha256 differs from
    ``COMPLETE``'s per-file record, else the split as a whole."""
    what = f"content hash {got[:12]}... != recorded {recorded[:12]}..."
    if files is not None:
        for k in ARRAYS:
            p = d / f"{k}.npy"
            if sha256_file(p) != (files.get(f"{k}.npy") or {}).get("sha256"):
                return p, f"contents differ from what was written ({what}: damaged or edited)"
        return d / COMPLETE, f"does not match the arrays ({what}) although every file matches its sha256"
    return d, (f"decoded arrays differ from the recorded content hash ({what}); COMPLETE predates "
               "per-file hashes, so which of frames/actions/rewards/states.npy is damaged is unknown")


def _upgrade_complete(d: Path, rec: dict, lengths: list[int]) -> None:
    """Add the per-file records to an old ``COMPLETE`` that just passed the full check."""
    try:
        files = {f"{k}.npy": _file_record(d / f"{k}.npy") for k in ARRAYS}
        _write_complete(d, {**rec, "version": COMPLETE_VERSION, "lengths": list(lengths),
                            "files": files})
    except OSError as err:  # read-only cache: keep checking in full next time
        print(f"[dcsbench] {d / COMPLETE}: could not add per-file records ({err})", file=sys.stderr)


def read_split_arrays(dataset_dir: Path, split: str, names=ARRAYS, lengths: list[int] | None = None,
                      expected_hash: str | None = None, check: bool = True) -> dict[str, np.ndarray]:
    """Open the requested arrays of a complete split cache (read-only memory maps).

    With ``check`` (default) the split is first checked by :func:`check_split` (``lengths`` and
    ``expected_hash``, the manifest's, are passed on); a damaged file raises
    :class:`CacheCorruptError` naming it. Every file is checked, not only ``names``: the content
    hash covers them together.
    """
    if check:
        check_split(dataset_dir, split, lengths, expected_hash)
    elif split_complete(dataset_dir, split) is None:
        raise FileNotFoundError(f"split {split!r} is not in the local cache of {Path(dataset_dir).name}")
    d = split_dir(dataset_dir, split)
    return {k: open_npy_readonly(d / f"{k}.npy") for k in names}


def hash_split_cache(dataset_dir: Path, split: str, lengths: list[int]) -> str:
    """Recompute the content hash of a split cache from its arrays (for ``verify``); a missing or
    truncated file raises :class:`CacheCorruptError` naming it."""
    d = split_dir(dataset_dir, split)
    for k in ARRAYS:
        p = d / f"{k}.npy"
        _check_npy_size(p, *npy_header(p))
    return _content_hash(d, lengths)
