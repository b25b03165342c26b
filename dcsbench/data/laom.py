"""The LAOM paper's released datasets by name: ``dcsbench download laom/cheetah-run-distractors``.

The authors publish their data as HDF5 files over plain HTTPS (their repository's
``data-links.txt``): per task, for the distractor setting (``scale-easy-video-hard``) a 5,000
trajectory train file (~62 GB), a 50-trajectory eval file with novel backgrounds and labeled
files of 2..128 trajectories; the same for the clean setting (``vanilla``), which has no eval file.
What dcsbench knows about them (file names, base URL, sizes and sha256 when known, the paper's
Table 3 references) is data, in ``dcsbench/registry_data/laom_datasets.json``; this module only
reads it.

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
  ``verify=True``); known hashes can be added to the registry data file later;
* mirrors: ``$DCSBENCH_LAOM_BASE_URL`` (one base URL, or several separated by commas, tried in
  order) replaces the authors' host.

Then :func:`convert` turns the files into a regular local dcsbench dataset named
``laom-{task}-{setting}`` (:func:`local_name`) with :func:`dcsbench.data.hdf5.import_hdf5`
(streaming, disk use stated and checked before it starts): the authors' labeled files become the
``labeled-{B}`` subsets through their ``original_traj_idx`` attributes. Online evaluation renders
DAVIS backgrounds, which dcsbench never downloads: point ``DCSBENCH_DAVIS_DIR`` (or
``--davis-dir``) at a DAVIS-2017 folder.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dcsbench import registry
from dcsbench.data.build import dataset_dir, default_root
from dcsbench.data.http import (DownloadError, InsufficientSpaceError, TransferError, _session,
                                download_file, remote_size, sha256_of)

#: The registry data file (one place for names, URLs, sizes, hashes, references).
DATA_FILE = Path(__file__).resolve().parents[1] / "registry_data" / "laom_datasets.json"

#: Environment variable overriding the authors' base URL (comma-separated mirrors allowed).
BASE_URL_ENV = "DCSBENCH_LAOM_BASE_URL"

#: Prefix of the registry names.
PREFIX = "laom/"

#: Bytes kept free on the target disk on top of what a download or conversion needs.
DISK_RESERVE_BYTES = 256 * 1024 * 1024

#: The kinds of file a dataset can have; ``labeled`` stands for every ``labeled-{B}``.
SPLIT_CHOICES = ("train", "eval", "labeled")


@dataclass(frozen=True)
class LaomFile:
    """One released file.

    Attributes:
        kind: ``train``, ``eval`` or ``labeled-{B}``.
        file: file name on the authors' host.
        trajectories: trajectories the file holds.
        bytes: exact size when known (else None).
        approx_bytes: estimated size (for the disk-space check when the size is unknown).
        sha256: known sha256 (else None: recorded locally on first download).
    """

    kind: str
    file: str
    trajectories: int
    bytes: int | None
    approx_bytes: int
    sha256: str | None

    @property
    def budget(self) -> int | None:
        """The label budget of a ``labeled-{B}`` file, else None."""
        return int(self.kind.split("-", 1)[1]) if self.kind.startswith("labeled-") else None


@dataclass(frozen=True)
class LaomDataset:
    """One registry entry ``laom/{task}-{setting}``.

    Attributes:
        name: registry name, e.g. ``laom/cheetah-run-distractors``.
        task, setting: dcsbench task and setting (``distractors`` = the paper's
            ``scale_easy_video_hard``, ``clean`` = ``vanilla``).
        difficulty: the authors' DCS difficulty name.
        reference: the paper's Table 3 reference return (BC on the full data), the normalizer.
        reference_provenance: where the reference comes from.
        files: kind -> :class:`LaomFile`.
        source: who publishes the files; background_source: ``davis``.
    """

    name: str
    task: str
    setting: str
    difficulty: str
    reference: float
    reference_provenance: str
    files: dict
    source: str
    background_source: str

    @property
    def budgets(self) -> list[int]:
        """Label budgets of the authors' labeled files."""
        return sorted(f.budget for f in self.files.values() if f.budget is not None)

    @property
    def approx_bytes(self) -> int:
        """Approximate size of all files (exact sizes where known)."""
        return sum(f.bytes or f.approx_bytes for f in self.files.values())


def _load_catalogue(path: Path = DATA_FILE) -> dict:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("format") != 1 or not isinstance(doc.get("datasets"), dict):
        raise ValueError(f"{path}: not a format-1 LAOM dataset catalogue")
    return doc


_CATALOGUE: dict | None = None


def catalogue() -> dict:
    """The parsed registry data file (cached)."""
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = _load_catalogue()
    return _CATALOGUE


def names() -> list[str]:
    """The registry names of the paper's datasets, e.g. ``laom/cheetah-run-distractors``."""
    return list(catalogue()["datasets"])


def is_laom_name(name: str) -> bool:
    """Whether ``name`` is in the ``laom/`` namespace (known or not)."""
    return str(name).startswith(PREFIX)


def get(name: str) -> LaomDataset:
    """The entry of ``name``; unknown names raise :class:`registry.UnknownNameError` with close
    matches."""
    doc = catalogue()
    e = doc["datasets"].get(name)
    if e is None:
        valid = names()
        close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise registry.UnknownNameError(f"unknown paper dataset {name!r}.{hint} Known: {', '.join(valid)}")
    files = {k: LaomFile(k, v["file"], int(v["trajectories"]), v.get("bytes"), int(v["approx_bytes"]),
                         v.get("sha256")) for k, v in e["files"].items()}
    return LaomDataset(name, e["task"], e["setting"], e["difficulty"], float(e["reference"]["return"]),
                       e["reference"]["provenance"], files, doc["source"], doc["background_source"])


def local_name(name: str) -> str:
    """The local dataset name a converted paper dataset gets: ``laom/x`` -> ``laom-x``."""
    get(name)
    return name.replace("/", "-")


def base_urls() -> list[str]:
    """Base URLs to try in order: ``$DCSBENCH_LAOM_BASE_URL`` (comma-separated) or the authors'."""
    env = os.environ.get(BASE_URL_ENV, "").strip()
    urls = [u.strip() for u in env.split(",") if u.strip()] if env else [catalogue()["base_url"]]
    return [u if u.endswith("/") else u + "/" for u in urls]


def raw_dir(root=None) -> Path:
    """Where the downloaded HDF5 files live: ``{cache root}/raw/laom``."""
    return default_root(root) / "raw" / "laom"


def select_files(ds: LaomDataset, splits=None, budget: int | None = None) -> list[LaomFile]:
    """The files a request needs: ``splits`` among train/eval/labeled (default all), labeled
    restricted to ``budget`` when given. Asking for ``eval`` of a clean dataset (none released)
    is an error; so is a budget the release does not have."""
    splits = list(SPLIT_CHOICES if splits is None else splits)
    for s in splits:
        registry.check_choice("split", s, SPLIT_CHOICES)
    if budget is not None and int(budget) not in ds.budgets:
        raise ValueError(f"{ds.name}: no labeled file for budget {budget} (released: "
                         f"{', '.join(map(str, ds.budgets))})")
    out = []
    for s in splits:
        if s == "labeled":
            out += [f for f in ds.files.values() if f.budget is not None
                    and (budget is None or f.budget == int(budget))]
        elif s in ds.files:
            out.append(ds.files[s])
        elif s == "eval":
            raise ValueError(f"{ds.name}: the authors released no eval (novel-background) file for "
                             "the clean setting; use --splits train,labeled")
    return out


# ---------------------------------------------------------------------------------------------
# Local hash record


def _hash_record_path(root=None) -> Path:
    return raw_dir(root) / "hashes.json"


def read_hash_record(root=None) -> dict:
    """``{file name: {"sha256", "bytes", "mtime_ns", "url", "recorded"}}`` of complete downloads."""
    p = _hash_record_path(root)
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError:
        raise DownloadError(f"{p} is not valid JSON; delete it to re-hash the downloaded files") from None


def _write_hash_record(root, record: dict) -> None:
    from dcsbench.fileio import atomic_write_text

    p = _hash_record_path(root)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, json.dumps(record, indent=1, sort_keys=True) + "\n")


def _record(root, path: Path, sha: str, url: str | None) -> None:
    rec = read_hash_record(root)
    st = path.stat()
    old = rec.get(path.name, {})
    rec[path.name] = {"sha256": sha, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                      "url": url or old.get("url"),
                      "recorded": old.get("recorded") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_hash_record(root, rec)


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
            raise DownloadError(f"{f.file}: {len(keys)} trajectories, the registry expects {f.trajectories}")
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


def _gb(n: int | float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


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


def davis_notice(name: str, log=None) -> str | None:
    """Say that online evaluation of the paper's datasets needs DAVIS, if no DAVIS folder is set
    (``DCSBENCH_DAVIS_DIR``) or it does not exist. Returns the message (None when DAVIS is set)."""
    log = log or (lambda m: print(m, file=sys.stderr))
    davis = os.environ.get("DCSBENCH_DAVIS_DIR")
    if davis and Path(davis).expanduser().is_dir():
        return None
    why = "is not set" if not davis else f"points at {davis}, which does not exist"
    msg = (f"[dcsbench] note: online evaluation of {name} renders DAVIS-2017 backgrounds, as the paper "
           f"did, and DCSBENCH_DAVIS_DIR {why}. dcsbench does not download DAVIS: get "
           "DAVIS-2017-trainval-480p.zip from davischallenge.org, unpack it, and set "
           "DCSBENCH_DAVIS_DIR (or pass --davis-dir). Offline training and probes need no DAVIS.")
    log(msg)
    return msg


# ---------------------------------------------------------------------------------------------
# Status (list / info)


def status(name: str, root=None) -> dict:
    """What of ``name`` is local: ``{"raw": {kind: bool}, "converted": folder or None,
    "local_name"}``."""
    from dcsbench.data import cache as cache_mod

    ds = get(name)
    rdir = raw_dir(root)
    raw = {k: (rdir / f.file).is_file() for k, f in ds.files.items()}
    d = dataset_dir(local_name(name), root)
    conv = d if cache_mod.split_complete(d, "train") else None
    return {"raw": raw, "converted": conv, "local_name": local_name(name)}


def list_rows(root=None) -> list[tuple[str, str, str]]:
    """``(name, local, where)`` rows for ``dcsbench list``."""
    rows = []
    for n in names():
        st = status(n, root)
        got = sum(st["raw"].values())
        local = "yes" if st["converted"] else (f"{got}/{len(st['raw'])}" if got else "-")
        ds = get(n)
        rows.append((n, local, f"authors' HTTPS release, ~{ds.approx_bytes / 1e9:.0f} GB, DAVIS"))
    return rows


def info_text(name: str, root=None) -> str:
    """The ``dcsbench info laom/...`` text: size, source, background source, what is local."""
    ds = get(name)
    st = status(name, root)
    rec = read_hash_record(root)
    lines = [f"{name}  (the LAOM paper's released data)",
             f"  task {ds.task}, setting {ds.setting} (authors' DCS difficulty {ds.difficulty}), "
             f"background source {ds.background_source} (DAVIS-2017)",
             f"  source: {ds.source}; base URL {', '.join(base_urls())}",
             f"  reference (normalizer): {ds.reference:g} ({ds.reference_provenance})",
             f"  labeled budgets: {', '.join(map(str, ds.budgets))}; eval file: "
             f"{'yes' if 'eval' in ds.files else 'none released'}",
             f"  size: ~{ds.approx_bytes / 1e9:.1f} GB in {len(ds.files)} files"]
    for k, f in ds.files.items():
        size = f"{f.bytes:,} B" if f.bytes else f"~{_gb(f.approx_bytes)}"
        r = rec.get(f.file)
        here = f"local, sha256 {r['sha256'][:12]}..." if st["raw"][k] and r else \
            ("local (not yet hashed)" if st["raw"][k] else "-")
        lines.append(f"    {k:11s} {f.file:58s} {size:>14s}  {here}")
    conv = st["converted"]
    lines.append(f"  converted: {'yes, ' + str(conv) + ' (load as ' + repr(st['local_name']) + ')' if conv else 'no'}")
    davis = os.environ.get("DCSBENCH_DAVIS_DIR")
    lines.append(f"  DAVIS for online evaluation: "
                 f"{davis if davis and Path(davis).is_dir() else 'not set (DCSBENCH_DAVIS_DIR)'}")
    return "\n".join(lines)
