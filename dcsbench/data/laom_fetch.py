"""Fetching and converting the LAOM paper's released datasets (the catalogue:
:mod:`dcsbench.data.laom`, which re-exports :func:`download`, :func:`convert` and
:func:`check_structure`).

:func:`download` fetches the requested files into ``$DCSBENCH_HOME/raw/laom/``:

* resumable HTTP range requests (``requests``; ``Range: bytes=N-`` with ``If-Range`` on the
  ETag, so a changed file restarts from zero), a tqdm progress bar, a few retries of a dropped
  connection within one call, and a killed process resumes from its ``.part`` file next time;
* a disk-space check before the first byte, for everything still to fetch;
* atomic completion: bytes go to ``{file}.part``, which is checked (size against the
  ``Content-Range``/``Content-Length`` total and the known size, HDF5 structure with h5py, sha256
  against the known hash) and only then renamed into place;
* the sha256 of every complete file is recorded in ``raw/laom/hashes.json`` on first download and
  checked on every later call (re-hashed whenever the file's size or mtime changed, or with
  ``verify=True``); known hashes can be added to the catalogue data file later;
* mirrors: ``$DCSBENCH_LAOM_BASE_URL`` (one base URL, or several separated by commas, tried in
  order) replaces the authors' host.

Then :func:`convert` turns the files into a regular local dcsbench dataset named
``laom-{task}-{setting}`` (:func:`~dcsbench.data.laom.local_name`) with
:func:`dcsbench.data.hdf5.import_hdf5` (streaming, disk use stated and checked before it starts):
the authors' labeled files become the ``labeled-{B}`` subsets through their ``original_traj_idx``
attributes.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dcsbench.data.build import dataset_dir
from dcsbench.data.http import (DownloadError, InsufficientSpaceError, TransferError, _session,
                                download_file, remote_size, sha256_of)
from dcsbench.data.laom import (BASE_URL_ENV, SPLIT_CHOICES, LaomDataset, LaomFile, _gb, _record,
                                base_urls, catalogue, davis_notice, get, local_name, raw_dir,
                                read_hash_record, select_files)

#: Bytes kept free on the target disk on top of what a download or conversion needs.
DISK_RESERVE_BYTES = 256 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Checks


def check_structure(path: Path, f: LaomFile, ds: LaomDataset | None = None) -> None:
    """Check a file is HDF5 in the authors' layout: groups ``"0".."N-1"`` (N = the trajectories the
    registry expects), ``obs`` (T, 64, 64, 3) uint8 and ``actions`` (T, A) in the first and last
    group, ``original_traj_idx`` in labeled files. Raises :class:`DownloadError` naming the file."""
    import h5py

    from dcsbench.data.hdf5 import _group_keys

    try:
        h = h5py.File(path, "r")
    except OSError as err:
        raise DownloadError(f"{f.file}: not a readable HDF5 file ({err})") from None
    with h:
        try:
            keys = _group_keys(h)
        except ValueError as err:
            raise DownloadError(f"{f.file}: {err}") from None
        if len(keys) != f.trajectories:
            raise DownloadError(f"{f.file}: {len(keys)} trajectories, the catalogue expects {f.trajectories}")
        for k in {keys[0], keys[-1]}:
            g = h[k]
            for d in ("obs", "actions"):
                if d not in g:
                    raise DownloadError(f"{f.file}: group {k} has no {d!r} dataset")
            obs, act = g["obs"], g["actions"]
            if obs.dtype != "uint8" or obs.ndim != 4 or tuple(obs.shape[1:]) != (64, 64, 3):
                raise DownloadError(f"{f.file}: group {k}: obs is {obs.dtype} {obs.shape}, expected "
                                    "(T, 64, 64, 3) uint8")
            if act.ndim != 2 or obs.shape[0] not in (act.shape[0], act.shape[0] + 1):
                raise DownloadError(f"{f.file}: group {k}: actions {act.shape} do not match obs {obs.shape}")
            if ds is not None and act.shape[1] != catalogue()["datasets"][ds.name].get("action_dim", act.shape[1]):
                raise DownloadError(f"{f.file}: group {k}: action size {act.shape[1]}, {ds.task} has "
                                    f"{catalogue()['datasets'][ds.name]['action_dim']}")
            if f.budget is not None and "original_traj_idx" not in g.attrs:
                raise DownloadError(f"{f.file}: group {k} has no 'original_traj_idx' attribute")


def _free_bytes(path: Path) -> int:
    """Free bytes on the disk holding ``path`` (its nearest existing parent)."""
    p = Path(path)
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


# ---------------------------------------------------------------------------------------------
# Download of a dataset


def _cached_ok(path: Path, f: LaomFile, root, verify: bool, progress: bool, log) -> bool:
    """Whether a complete local file can be used as is (size, recorded and known sha256).
    A file of the wrong size becomes the ``.part`` of a resumed download; one whose hash is wrong
    is deleted."""
    if not path.is_file():
        return False
    rec = read_hash_record(root).get(path.name)
    st = path.stat()
    want_size = f.bytes or (rec or {}).get("bytes")
    if want_size is not None and st.st_size != want_size:
        log(f"[dcsbench] {path.name}: {st.st_size:,} bytes on disk, expected {want_size:,} "
            "(truncated?); resuming it")
        part = path.with_name(path.name + ".part")
        if st.st_size < want_size:
            os.replace(path, part)
        else:
            path.unlink()
        return False
    if rec is not None and not verify and st.st_mtime_ns == rec.get("mtime_ns") and \
            (f.sha256 is None or f.sha256 == rec["sha256"]):
        return True
    if rec is None:
        try:
            check_structure(path, f)
        except DownloadError as err:
            log(f"[dcsbench] {err}; treating it as a partial download")
            os.replace(path, path.with_name(path.name + ".part"))
            return False
    sha = sha256_of(path, progress=progress)
    want = f.sha256 or (rec or {}).get("sha256")
    if want is not None and sha != want:
        log(f"[dcsbench] {path.name}: sha256 {sha[:12]}... != {'known' if f.sha256 else 'recorded'} "
            f"{want[:12]}...; downloading it again")
        path.unlink()
        return False
    _record(root, path, sha, (rec or {}).get("url"))
    return True


def download(name: str, splits=None, budget: int | None = None, root=None, convert_after: bool = True,
             verify: bool = False, progress: bool = True, log=None, session=None) -> dict:
    """Download (and by default convert) a paper dataset; see the module docstring.

    Args:
        name: ``laom/{task}-{setting}``.
        splits: among ``train``, ``eval``, ``labeled`` (default: all the release has).
        budget: fetch only the labeled file of this budget.
        root: cache root (default ``$DCSBENCH_HOME``).
        convert_after: convert into the local dataset ``laom-{task}-{setting}`` when the train file
            is present.
        verify: re-hash complete local files even if unchanged since they were recorded.
        session: a ``requests.Session`` (tests, proxies).

    Returns:
        ``{"files": {file name: path}, "downloaded": [...], "cached": [...], "dataset": folder or
        None, "requests": n}``.
    """
    ds = get(name)
    log = log or (lambda m: print(m, file=sys.stderr))
    if splits is None:
        splits = [s for s in SPLIT_CHOICES if s != "eval" or "eval" in ds.files]
    files = select_files(ds, splits, budget)
    rdir = raw_dir(root)
    rdir.mkdir(parents=True, exist_ok=True)
    s = session or _session()
    todo, cached = [], []
    for f in files:
        (cached if _cached_ok(rdir / f.file, f, root, verify, progress, log) else todo).append(f)

    # disk-space check before the first byte: everything still to fetch
    need, unknown = 0, []
    for f in todo:
        part = rdir / (f.file + ".part")
        have = part.stat().st_size if part.is_file() else 0
        size = f.bytes
        if size is None:
            try:
                size = remote_size(base_urls()[0] + f.file, s)
            except Exception:  # noqa: BLE001 - fall back to the estimate
                size = None
        if size is None:
            unknown.append(f.file)
            size = f.approx_bytes
        need += max(0, size - have)
    free = _free_bytes(rdir)
    if todo:
        log(f"[dcsbench] {name}: {len(todo)} file(s) to fetch, {_gb(need)}"
            f"{' (estimated)' if unknown else ''}; {_gb(free)} free in {rdir}")
    if todo and need + DISK_RESERVE_BYTES > free:
        raise InsufficientSpaceError(
            f"{name}: need {_gb(need + DISK_RESERVE_BYTES)} free in {rdir} for {len(todo)} file(s), "
            f"{_gb(free)} available; free space, set DCSBENCH_HOME to a bigger disk, or fetch less "
            "(--splits eval,labeled / --budget B)")

    total_requests, downloaded = 0, []
    for f in todo:
        dest = rdir / f.file
        errors = []
        for base in base_urls():
            url = base + f.file
            try:
                info = download_file(url, dest, f.bytes, f.sha256, session=s, progress=progress,
                                     check=lambda p, f=f: check_structure(p, f, ds), log=log)
            except TransferError as err:
                errors.append(str(err))
                log(f"[dcsbench] {err}")
                continue  # try the next base URL
            total_requests += info["requests"]
            _record(root, dest, info["sha256"], url)
            downloaded.append(f.file)
            how = f" (resumed at {info['resumed_from']:,} bytes)" if info["resumed_from"] else ""
            log(f"[dcsbench] {f.file}: {info['bytes']:,} bytes, sha256 {info['sha256'][:16]}... "
                f"recorded{how}")
            break
        else:
            raise DownloadError(f"{f.file}: every base URL failed:\n  " + "\n  ".join(errors) +
                                f"\nThe authors' host may be down: set {BASE_URL_ENV} to a mirror.")
    out = {"files": {f.file: rdir / f.file for f in files}, "downloaded": downloaded,
           "cached": [f.file for f in cached], "dataset": None, "requests": total_requests}
    if convert_after and (rdir / ds.files["train"].file).is_file():
        out["dataset"] = convert(name, root=root, progress=progress, log=log)
    elif convert_after:
        log(f"[dcsbench] {name}: the train file is not here yet, so nothing was converted; "
            f"`dcsbench download {name} --splits train` fetches it")
    return out


# ---------------------------------------------------------------------------------------------
# Conversion


def convert(name: str, root=None, progress: bool = True, log=None) -> Path:
    """Convert the downloaded files of ``name`` into the local dataset :func:`local_name`.

    Uses the train file, the eval file when present and every labeled file present (as the
    ``labeled-{B}`` subsets). If the dataset was already converted from the same train/eval
    files (same sha256), only its labeled subsets are updated. Raises
    :class:`InsufficientSpaceError` before writing anything if the disk is too small.
    """
    from dcsbench.data import format as fmt
    from dcsbench.data.hdf5 import conversion_estimate, import_hdf5, labeled_subsets_from_files, \
        set_labeled_subsets

    ds = get(name)
    log = log or (lambda m: print(m, file=sys.stderr))
    rdir = raw_dir(root)
    rec = read_hash_record(root)
    split_files = {k: rdir / ds.files[k].file for k in ("train", "eval")
                   if k in ds.files and (rdir / ds.files[k].file).is_file()}
    if "train" not in split_files:
        raise FileNotFoundError(f"{name}: {ds.files['train'].file} is not in {rdir}; run "
                                f"`dcsbench download {name}` first")
    labeled = {f.budget: rdir / f.file for f in ds.files.values()
               if f.budget is not None and (rdir / f.file).is_file()}
    shas = {k: (rec.get(p.name) or {}).get("sha256") or sha256_of(p, progress) for k, p in split_files.items()}
    lname = local_name(name)
    d = dataset_dir(lname, root)
    if (d / fmt.MANIFEST).is_file():
        m = fmt.load_manifest(d / fmt.MANIFEST)
        imp = m.get("policy", {}).get("import", {})
        same = all(imp.get(k, {}).get("sha256") == shas[k] for k in split_files) and \
            set(m["splits"]) == set(split_files)
        if same:
            have = set(m["labeled_subsets"]["budgets"])
            if have == {str(b) for b in labeled}:
                log(f"[dcsbench] {lname}: already converted from these files ({d})")
            else:
                subsets = labeled_subsets_from_files(labeled, split_files["train"]) if labeled else \
                    {"kind": "laom-release", "permutation_seed": None, "nested": True, "budgets": {}}
                set_labeled_subsets(d, subsets)
                log(f"[dcsbench] {lname}: labeled subsets updated to budgets "
                    f"{', '.join(subsets['budgets']) or 'none'}")
            davis_notice(name, log)
            return d
    est = conversion_estimate(split_files)
    free = _free_bytes(d.parent)
    typical = est["cache_bytes"] + est["shards_max_bytes"] // 2
    log(f"[dcsbench] {lname}: conversion writes {_gb(est['cache_bytes'])} of memory-mapped cache + "
        f"up to {_gb(est['shards_max_bytes'])} of Parquet shards (typically 0.2-0.5x of that) into "
        f"{d.parent}; {_gb(free)} free. The HDF5 files are kept (delete them from {rdir} afterwards "
        "if you need the space).")
    if typical + DISK_RESERVE_BYTES > free:
        raise InsufficientSpaceError(f"{lname}: conversion needs about {_gb(typical + DISK_RESERVE_BYTES)}"
                                     f" free in {d.parent}, {_gb(free)} available")
    if not labeled:
        log(f"[dcsbench] {lname}: no labeled file downloaded; the dataset will have no labeled-B "
            f"subsets until `dcsbench download {name} --splits labeled`")
    import_hdf5(split_files["train"], lname, task=ds.task, setting=ds.setting, source="davis",
                eval_file=split_files.get("eval"), root=root, progress=progress,
                labeled_files=labeled, tier="laom", sha256s=shas,
                extra_policy={"release": name, "release_source": ds.source,
                              "reference": {"return": ds.reference, "provenance": ds.reference_provenance}},
                log=log)
    log(f"[dcsbench] {name}: converted into {d} (load it as {lname!r})")
    davis_notice(name, log)
    return d

