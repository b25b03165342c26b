"""Hugging Face Hub hosting: publish a dataset folder, download one by name (pinned, verified).

* :func:`download` fetches ``manifest.json`` then the shards of the requested splits with
  ``huggingface_hub.hf_hub_download`` at the catalogue's **pinned commit** (never a branch), into
  the standard Hugging Face cache. Resumable per file: files already downloaded are reused by
  the next call, and within one call huggingface_hub retries a dropped connection with a Range
  request (from its last full 10 MB chunk); a file cut by a killed process restarts from zero
  (huggingface_hub 2.x downloads into a process-unique temp file).
  Every file is checked against the sha256 in the manifest (and the manifest against the sha256
  pinned in the catalogue); a mismatch is re-fetched once with ``force_download=True`` and then
  reported with the file name. The shards are then decoded into the local memory-mapped cache,
  whose content hash must equal the manifest's. Only then does the split count as present.
* Offline (``HF_HUB_OFFLINE=1``): only the Hugging Face cache is used, and a missing file is
  reported by name.
* :func:`publish` uploads ``README.md``, ``manifest.json``, ``data/*.parquet`` and the preview
  ``preview/*.parquet`` in one commit (``HfApi.create_commit``) and returns the commit sha to pin
  in ``catalogue.HUB_DATASETS``.
* :func:`build_preview` writes the small ``preview`` config: the dataset viewer and ``datasets``
  show the lossless ``obs`` column as 12,288 raw bytes, so a few evenly spaced frames per
  trajectory are also stored as PNG images with an ``Image`` feature (``datasets`` decodes them to
  PIL images; the Hub's viewer shows them). It is derived from the data, not part of the manifest
  or the content hash, and the card gains its config and a loading snippet.

The endpoint is ``$HF_ENDPOINT`` (default huggingface.co) and the token the usual
``huggingface_hub`` one (``HF_TOKEN`` or ``hf auth login``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from dcsbench import catalogue
from dcsbench.data import cache as cache_mod
from dcsbench.data import format as fmt
from dcsbench.data.build import dataset_dir, missing_manifest_error
from dcsbench.fileio import atomic_write_text

REPO_TYPE = "dataset"

#: Folder of the preview config inside a dataset folder / Hub repo.
PREVIEW_DIR = "preview"

#: Preview size: trajectories per split (evenly spaced ids) and frames per trajectory.
PREVIEW_TRAJECTORIES = 32
PREVIEW_FRAMES = 4


class IntegrityError(ValueError):
    """A downloaded or cached file does not match its pinned sha256 (the message names it)."""


def _truthy(v: str | None) -> bool:
    return (v or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def is_offline() -> bool:
    """Offline mode: ``HF_HUB_OFFLINE`` in the environment now, or as ``huggingface_hub`` read it."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE")
    return _truthy(env) if env is not None else bool(constants.HF_HUB_OFFLINE)


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def resolve_location(name: str, repo_id: str | None = None, revision: str | None = None):
    """``(repo_id, revision, manifest_sha256 or None)`` of a dataset: the catalogue entry unless
    both ``repo_id`` and ``revision`` are given explicitly."""
    entry = catalogue.HUB_DATASETS.get(name)
    if repo_id is None or revision is None:
        if entry is None:
            catalogue.parse_dataset_name(name)  # unknown names raise with close matches
            published = ", ".join(sorted(catalogue.HUB_DATASETS)) or "none yet"
            raise FileNotFoundError(
                f"dataset {name!r} is not published on the Hub (published: {published}); build it "
                f"locally with `dcsbench build {name}`, or pass --repo and --revision")
        return (repo_id or entry.repo_id, revision or entry.revision,
                entry.manifest_sha256 if revision is None else None)
    return repo_id, revision, None


def _hf_download(repo_id: str, filename: str, revision: str, offline: bool, force: bool = False) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, filename, repo_type=REPO_TYPE, revision=revision,
                                endpoint=_endpoint(), local_files_only=offline,
                                force_download=force))


def _fetch_verified(repo_id: str, filename: str, revision: str, sha256: str | None, offline: bool,
                    log=print) -> Path:
    """Download (or find in the HF cache) one file and check its sha256; re-fetch once on mismatch."""
    path = _hf_download(repo_id, filename, revision, offline)
    if sha256 is None or fmt.sha256_file(path) == sha256:
        return path
    if offline:
        raise IntegrityError(f"{filename}: cached copy in {path.parent} does not match its sha256 "
                             f"{sha256[:12]}... and offline mode forbids re-fetching it")
    log(f"[dcsbench] {filename}: sha256 mismatch (truncated or corrupted); downloading it again")
    path = _hf_download(repo_id, filename, revision, offline, force=True)
    got = fmt.sha256_file(path)
    if got != sha256:
        raise IntegrityError(f"{filename} from {repo_id}@{revision[:12]}: sha256 {got[:12]}... != "
                             f"pinned {sha256[:12]}... even after re-downloading")
    return path


def _missing_error(name, repo_id, revision, missing: list[str]) -> FileNotFoundError:
    from huggingface_hub import constants

    shown = "\n  ".join(missing[:20]) + (f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else "")
    return FileNotFoundError(
        f"offline mode (HF_HUB_OFFLINE=1): {len(missing)} file(s) of {name} "
        f"({repo_id}@{revision[:12]}) are not in the Hugging Face cache {constants.HF_HUB_CACHE}:\n"
        f"  {shown}\nRun `dcsbench download {name}` with network access (HF_HUB_OFFLINE unset).")


def fetch_manifest(name: str, repo_id=None, revision=None) -> tuple[dict, str, str, Path]:
    """Download (or read from the HF cache) and check a dataset's manifest.

    Returns ``(manifest, repo_id, revision, path)``.
    """
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id, revision, pinned = resolve_location(name, repo_id, revision)
    offline = is_offline()
    try:
        path = _fetch_verified(repo_id, fmt.MANIFEST, revision, pinned, offline)
    except LocalEntryNotFoundError:
        if offline:
            raise _missing_error(name, repo_id, revision, [fmt.MANIFEST]) from None
        raise
    return fmt.load_manifest(path), repo_id, revision, path


def download(name: str, splits=None, root=None, repo_id: str | None = None,
             revision: str | None = None, log=None) -> Path:
    """Download, verify and cache dataset ``name``; returns the local dataset folder.

    Args:
        name: dataset name (catalogue entry gives repo and pinned revision).
        splits: splits to fetch (default: all of ``train`` and ``eval``).
        root: cache root for the memory-mapped arrays (default ``$DCSBENCH_HOME``).
        repo_id, revision: explicit Hub location (for unregistered repos; revision should be a
            commit sha).
        log: callable for progress messages (default: print to stderr).
    """
    from huggingface_hub.errors import LocalEntryNotFoundError

    log = log or (lambda msg: print(msg, file=sys.stderr))
    splits = list(fmt.SPLITS if splits is None else splits)
    for s in splits:
        catalogue.check_choice("split", s, fmt.SPLITS)
    manifest, repo_id, revision, mpath = fetch_manifest(name, repo_id, revision)
    if manifest["name"] != name and name in catalogue.HUB_DATASETS:
        raise IntegrityError(f"{repo_id}@{revision[:12]} holds {manifest['name']!r}, not {name!r}")
    offline = is_offline()
    d = dataset_dir(name, root)
    mtext = Path(mpath).read_text(encoding="utf-8")
    msha = hashlib.sha256(mtext.encode()).hexdigest()
    origin = {"kind": "hub", "repo_id": repo_id, "revision": revision, "manifest_sha256": msha}
    old = d / "origin.json"
    if old.is_file() and json.loads(old.read_text()).get("manifest_sha256") != msha:
        for s in fmt.SPLITS:  # a different version was cached here: drop its arrays first
            shutil.rmtree(cache_mod.split_dir(d, s), ignore_errors=True)

    # 1. all files of the requested splits, verified (collect every missing one when offline)
    files = {s: [sh for sh in manifest["splits"][s]["shards"]] for s in splits}
    local, missing = {}, []
    for s in splits:
        for sh in files[s]:
            try:
                local[sh["path"]] = _fetch_verified(repo_id, sh["path"], revision, sh["sha256"],
                                                    offline, log)
            except LocalEntryNotFoundError:
                if not offline:
                    raise
                missing.append(sh["path"])
    if missing:
        raise _missing_error(name, repo_id, revision, missing)
    try:
        card = _fetch_verified(repo_id, fmt.CARD, revision, None, offline, log).read_text("utf-8")
    except LocalEntryNotFoundError:
        card = fmt.card_text(manifest)

    # 2. identity files, then each split's cache (atomic; only COMPLETE makes it count)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_text(d / fmt.MANIFEST, mtext)
    atomic_write_text(d / fmt.CARD, card)
    atomic_write_text(d / "origin.json", json.dumps(origin, indent=1) + "\n")
    for s in splits:
        done = cache_mod.split_complete(d, s)
        entry = manifest["splits"][s]
        if done and done.get("content_hash") == entry["content_hash"]:
            continue
        log(f"[dcsbench] decoding {s} ({entry['n_trajectories']} trajectories) into {d}")
        trajectories = (tr for sh in files[s] for tr in fmt.read_shard(local[sh["path"]]))
        cache_mod.write_split_cache(d, s, trajectories, entry["lengths"], manifest["action_dim"],
                                    manifest["state_dim"], expected_hash=entry["content_hash"])
    return d


def shard_paths(name: str, root=None, offline: bool | None = None) -> dict[str, Path | None]:
    """Where each shard of a local dataset is: ``data/`` of a local build, else the HF cache
    (``None`` if it is not there)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    d = dataset_dir(name, root)
    m = fmt.load_manifest(d / fmt.MANIFEST)
    origin = json.loads((d / "origin.json").read_text()) if (d / "origin.json").is_file() else {}
    out = {}
    for s, e in m["splits"].items():
        for sh in e["shards"]:
            p = d / sh["path"]
            if p.is_file():
                out[sh["path"]] = p
            elif origin.get("kind") == "hub":
                try:
                    out[sh["path"]] = _hf_download(origin["repo_id"], sh["path"], origin["revision"],
                                                   offline=True)
                except LocalEntryNotFoundError:
                    out[sh["path"]] = None
            else:
                out[sh["path"]] = None
    return out


def _preview_features(action_dim: int):
    import datasets

    return datasets.Features({
        "episode": datasets.Value("int32"), "step": datasets.Value("int32"),
        "seed": datasets.Value("int64"), "image": datasets.Image(),
        "action": datasets.List(datasets.Value("float32"), length=action_dim),
        "reward": datasets.Value("float32")})


def build_preview(name: str, root=None, trajectories: int = PREVIEW_TRAJECTORIES,
                  frames: int = PREVIEW_FRAMES, repo_id: str | None = None) -> dict:
    """Write the ``preview`` config of a local dataset and add it to its card.

    For every split in the local cache: ``frames`` evenly spaced steps of up to ``trajectories``
    evenly spaced trajectories, one row each (``episode``, ``step``, ``seed``, ``image`` as a
    lossless PNG with the ``datasets`` ``Image`` feature, ``action``, ``reward``), in
    ``preview/{split}-00000-of-00001.parquet`` (atomic writes). The card (README.md) is rewritten
    with the ``preview`` config and a loading snippet (``repo_id`` names the repo in it).

    Returns:
        ``{"dir", "splits": {split: {"trajectories", "frames_per_trajectory", "rows", "bytes"}}}``.
    """
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    d = dataset_dir(name, root)
    if not (d / fmt.MANIFEST).is_file():
        raise FileNotFoundError(f"dataset {name!r} is not in the local cache {d.parent}")
    m = fmt.load_manifest(d / fmt.MANIFEST)
    feats = _preview_features(int(m["action_dim"]))
    meta = {"huggingface": json.dumps({"info": {"features": feats.to_dict()}})}
    schema = pa.schema([
        ("episode", pa.int32()), ("step", pa.int32()), ("seed", pa.int64()),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("action", pa.list_(pa.float32(), int(m["action_dim"]))), ("reward", pa.float32())],
        metadata=meta)
    out = {"dir": PREVIEW_DIR, "splits": {}}
    (d / PREVIEW_DIR).mkdir(exist_ok=True)
    for split, e in m["splits"].items():
        if cache_mod.split_complete(d, split) is None:
            continue
        arr = cache_mod.read_split_arrays(d, split, names=("frames", "actions", "rewards"))
        lengths = np.asarray(e["lengths"], np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        n = len(lengths)
        ids = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(trajectories, n))})
        rows = {k: [] for k in ("episode", "step", "seed", "image", "action", "reward")}
        for i in ids:
            t = int(lengths[i])
            for step in sorted({int(round(x)) for x in np.linspace(0, t - 1, min(frames, t))}):
                j = int(starts[i]) + step
                buf = io.BytesIO()
                Image.fromarray(np.asarray(arr["frames"][j])).save(buf, format="PNG")
                rows["episode"].append(i)
                rows["step"].append(step)
                rows["seed"].append(int(e["seeds"][i]))
                rows["image"].append({"bytes": buf.getvalue(), "path": None})
                rows["action"].append(np.asarray(arr["actions"][j], np.float32).tolist())
                rows["reward"].append(float(arr["rewards"][j]))
        table = pa.table(rows, schema=schema)
        rel = f"{PREVIEW_DIR}/{split}-00000-of-00001.parquet"
        tmp = d / f"{rel}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, d / rel)
        out["splits"][split] = {"trajectories": len(ids), "frames_per_trajectory": frames,
                                "rows": len(table), "bytes": (d / rel).stat().st_size}
    atomic_write_text(d / fmt.CARD, fmt.card_text(m, preview=out, repo_id=repo_id))
    return out


def _preview_files(d: Path) -> list[Path]:
    return sorted((d / PREVIEW_DIR).glob("*.parquet")) if (d / PREVIEW_DIR).is_dir() else []


def publish(name: str, repo_id: str, root=None, private: bool = False, token: str | None = None,
            message: str | None = None) -> str:
    """Upload a local dataset (card, manifest, shards) to ``repo_id`` in one commit.

    Shards are checked against the manifest before anything is sent. The preview config
    (:func:`build_preview`) is built first when the local cache allows it, and the card uploaded
    names ``repo_id`` in its loading snippet. Returns the commit sha: pin it (with the manifest
    sha256) in :data:`dcsbench.catalogue.HUB_DATASETS`.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    d = dataset_dir(name, root)
    if not (d / fmt.MANIFEST).is_file():
        raise missing_manifest_error(name, root)   # the one missing-manifest message
    m = fmt.load_manifest(d / fmt.MANIFEST)
    paths = shard_paths(name, root)
    card = fmt.card_text(m, repo_id=repo_id)
    if any(cache_mod.split_complete(d, s) for s in m["splits"]):
        card = fmt.card_text(m, preview=build_preview(name, root, repo_id=repo_id), repo_id=repo_id)
    ops = [CommitOperationAdd(path_in_repo=fmt.CARD, path_or_fileobj=card.encode("utf-8")),
           CommitOperationAdd(path_in_repo=fmt.MANIFEST, path_or_fileobj=str(d / fmt.MANIFEST))]
    ops += [CommitOperationAdd(path_in_repo=f"{PREVIEW_DIR}/{p.name}", path_or_fileobj=str(p))
            for p in _preview_files(d)]
    for s, e in m["splits"].items():
        for sh in e["shards"]:
            p = paths[sh["path"]]
            if p is None:
                raise FileNotFoundError(f"{sh['path']} of {name} is missing locally; cannot publish")
            if fmt.sha256_file(p) != sh["sha256"]:
                raise IntegrityError(f"{sh['path']} does not match its sha256 in the manifest; "
                                     f"run `dcsbench verify {name}`")
            ops.append(CommitOperationAdd(path_in_repo=sh["path"], path_or_fileobj=str(p)))
    api = HfApi(endpoint=_endpoint(), token=token)
    api.create_repo(repo_id, repo_type=REPO_TYPE, exist_ok=True, private=private)
    info = api.create_commit(repo_id, ops, repo_type=REPO_TYPE,
                             commit_message=message or f"dcsbench: {name} ({m['content_hash'][:12]})")
    return info.oid


def registry_snippet(name: str, repo_id: str, revision: str, root=None) -> str:
    """The ``HUB_DATASETS`` line to add to ``dcsbench/catalogue.py`` after publishing."""
    msha = fmt.sha256_file(dataset_dir(name, root) / fmt.MANIFEST)
    return (f'    "{name}": HubDataset(repo_id="{repo_id}",\n'
            f'        revision="{revision}",\n        manifest_sha256="{msha}"),')


def remote_status(name: str) -> dict:
    """Query the Hub for a published dataset's files at its pinned revision (for ``list --remote``)."""
    from huggingface_hub import HfApi

    entry = catalogue.HUB_DATASETS[name]
    api = HfApi(endpoint=_endpoint())
    files = [f for f in api.list_repo_tree(entry.repo_id, repo_type=REPO_TYPE, revision=entry.revision,
                                           recursive=True) if getattr(f, "size", None) is not None]
    return {"repo_id": entry.repo_id, "revision": entry.revision, "files": len(files),
            "bytes": int(sum(f.size for f in files))}
