"""The LAOM paper's released datasets by name: ``dcsbench download laom/cheetah-run-distractors``.

The authors publish their data as HDF5 files over plain HTTPS (their repository's
``data-links.txt``): per task, for the distractor setting (``scale-easy-video-hard``) a 5,000
trajectory train file (~62 GB), a 50-trajectory eval file with novel backgrounds and labeled
files of 2..128 trajectories; the same for the clean setting (``vanilla``), which has no eval file.
What dcsbench knows about them (file names, base URL, sizes and sha256 when known, the paper's
Table 3 references) is data, in ``dcsbench/registry_data/laom_datasets.json``; this module only
reads it.

This module is the catalogue: the entries (:func:`get`, :func:`names`), the files a request needs
(:func:`select_files`), where they live (:func:`raw_dir`, :func:`base_urls`), the local record of
their sha256 (``raw/laom/hashes.json``) and what is local (:func:`status`, :func:`list_rows`,
:func:`info_text`). Fetching and converting (:func:`download`, :func:`convert`,
:func:`check_structure`) live in :mod:`dcsbench.data.laom_fetch` and are re-exported here. A
converted dataset is named ``laom-{task}-{setting}`` (:func:`local_name`). Online evaluation
renders DAVIS backgrounds, which dcsbench never downloads: point ``DCSBENCH_DAVIS_DIR`` (or
``--davis-dir``) at a DAVIS-2017 folder (:func:`davis_notice`).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dcsbench import catalogue as cat  # `catalogue()` below is this module's own
from dcsbench.data.build import dataset_dir, default_root
from dcsbench.data.http import DownloadError, InsufficientSpaceError  # noqa: F401 - re-exported

#: The catalogue data file (one place for names, URLs, sizes, hashes, references).
DATA_FILE = Path(__file__).resolve().parents[1] / "registry_data" / "laom_datasets.json"

#: Environment variable overriding the authors' base URL (comma-separated mirrors allowed).
BASE_URL_ENV = "DCSBENCH_LAOM_BASE_URL"

#: Prefix of the catalogue names.
PREFIX = "laom/"

#: The kinds of file a dataset can have; ``labeled`` stands for every ``labeled-{B}``.
SPLIT_CHOICES = ("train", "eval", "labeled")

#: What :mod:`dcsbench.data.laom_fetch` defines and this module re-exports (on first use, so that
#: either module can be imported first).
_FETCH_NAMES = ("DISK_RESERVE_BYTES", "check_structure", "convert", "download", "_cached_ok",
                "_free_bytes")


def __getattr__(name: str):
    """The names of :data:`_FETCH_NAMES`, from :mod:`dcsbench.data.laom_fetch`."""
    if name in _FETCH_NAMES:
        from dcsbench.data import laom_fetch
        return getattr(laom_fetch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """One catalogue entry ``laom/{task}-{setting}``.

    Attributes:
        name: catalogue name, e.g. ``laom/cheetah-run-distractors``.
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
    """The catalogue names of the paper's datasets, e.g. ``laom/cheetah-run-distractors``."""
    return list(catalogue()["datasets"])


def is_laom_name(name: str) -> bool:
    """Whether ``name`` is in the ``laom/`` namespace (known or not)."""
    return str(name).startswith(PREFIX)


def get(name: str) -> LaomDataset:
    """The entry of ``name``; unknown names raise :class:`dcsbench.catalogue.UnknownNameError` with close
    matches."""
    doc = catalogue()
    e = doc["datasets"].get(name)
    if e is None:
        valid = names()
        close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise cat.UnknownNameError(f"unknown paper dataset {name!r}.{hint} Known: {', '.join(valid)}")
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
        cat.check_choice("split", s, SPLIT_CHOICES)
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


def _gb(n: int | float) -> str:
    """A byte count for messages: GB from 0.1 GB up, else MB."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


# ---------------------------------------------------------------------------------------------
# DAVIS and status (list / info)


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
