"""Which dataset builds a result record may cite: revisions, content hashes, labeled-subset hashes.

A record pins the data it saw by ``dataset.revision``, ``dataset.content_hash`` (hash of the decoded
frames) and ``dataset.labeled_subset_hash`` (hash of the ``labeled-{B}`` trajectory ids). Submission
validation accepts a record only when these match a *known* build of that dataset. Known builds
come from three places, in order of authority:

1. ``dcsbench/registry_data/known_datasets.json`` - committed to this repository: the hashes of
   every dataset that results on the leaderboard may use (hub-published datasets and the
   deterministic local builds of the tiny tier). CI reads only this file and the catalogue.
2. :data:`dcsbench.catalogue.HUB_DATASETS` - pinned hub revisions of published datasets (the
   revision must match; hashes come from 1. or from the verified manifest in 3.).
3. Manifests of datasets built or downloaded into the local cache (``$DCSBENCH_HOME``). Useful
   to check your own records before submitting; CI does not have them, so a build known only
   locally is reported as a warning ("add it with ``dcsbench leaderboard add-known``").

The committed file is data, never code: it is JSON with the layout
``{"datasets": {NAME: [{"revision", "source", "content_hash", "labeled_subset_hashes": {B: hash},
"provenance"}, ...]}}``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dcsbench import catalogue
from dcsbench.fileio import atomic_write_text

#: The committed list of known dataset builds.
KNOWN_DATASETS_FILE = Path(__file__).resolve().parent.parent / "registry_data" / "known_datasets.json"

#: Largest manifest we read (a manifest of the full tier lists ~5000 seeds and shard hashes).
MAX_MANIFEST_BYTES = 20_000_000


@dataclass(frozen=True)
class KnownBuild:
    """One known build of a dataset.

    Attributes:
        name: dataset name ``{task}-{setting}-{tier}``.
        revision: hub commit sha, or the local build revision recorded in the manifest.
        source: background video source (``procedural`` or ``davis``).
        content_hash: sha256 of the decoded frames (as the manifest states it).
        labeled_subset_hashes: budget -> sha256 of the ``labeled-{B}`` trajectory ids.
        origin: where this entry came from (``committed``, ``hub``, or a manifest path).
        protocol: False when the manifest marks the build non-protocol (non-default sizes).
    """

    name: str
    revision: str
    source: str
    content_hash: str
    labeled_subset_hashes: dict[int, str] = field(default_factory=dict)
    origin: str = "committed"
    protocol: bool = True


@dataclass
class KnownDatasets:
    """A lookup of known dataset builds by name; see :func:`load_known_datasets`."""

    builds: dict[str, list[KnownBuild]] = field(default_factory=dict)
    hub_revisions: dict[str, str] = field(default_factory=dict)

    def add(self, build: KnownBuild) -> None:
        """Add one build (duplicates with the same revision and hash are kept once)."""
        entries = self.builds.setdefault(build.name, [])
        for b in entries:
            if (b.revision, b.content_hash, b.source) == (build.revision, build.content_hash,
                                                          build.source):
                merged = {**build.labeled_subset_hashes, **b.labeled_subset_hashes}
                b.labeled_subset_hashes.update(merged)
                return
        entries.append(build)

    def match(self, name: str, revision: str, content_hash: str) -> KnownBuild | None:
        """The known build with this name, revision and content hash, or None."""
        for b in self.builds.get(name, []):
            if b.revision == revision and b.content_hash == content_hash:
                return b
        return None

    def check(self, name: str, revision: str, content_hash: str, labeled_subset_hash: str,
              budget: int, source: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Check a record's dataset pin. Returns ``(errors, warnings)`` as ``(field, message)``.

        Errors: unknown name, revision or content hash; wrong hub revision; wrong source; wrong
        labeled-subset hash for the budget. Warnings: the build is known only from a local
        manifest (CI will not know it).
        """
        errors: list[tuple[str, str]] = []
        warnings: list[tuple[str, str]] = []
        pinned = self.hub_revisions.get(name)
        if pinned is not None and revision != pinned:
            errors.append(("dataset.revision",
                           f"{revision!r} is not the pinned hub revision {pinned!r} of {name}"))
            return errors, warnings
        candidates = self.builds.get(name, [])
        if not candidates:
            errors.append(("dataset.content_hash",
                           f"no known build of dataset {name!r}: its content hash cannot be "
                           f"verified (known datasets: {', '.join(sorted(self.builds)) or 'none'})"))
            return errors, warnings
        build = self.match(name, revision, content_hash)
        if build is None:
            revs = sorted({b.revision for b in candidates})
            if revision not in revs:
                errors.append(("dataset.revision",
                               f"unknown revision {revision!r} of {name} (known: {', '.join(revs)})"))
            else:
                errors.append(("dataset.content_hash",
                               f"unknown content hash {content_hash[:16]}... for {name} revision "
                               f"{revision!r}: the data differs from every known build"))
            return errors, warnings
        if build.source != source:
            errors.append(("source", f"record says source {source!r} but dataset {name} "
                                     f"(revision {revision}) was built with {build.source!r}"))
        expected = build.labeled_subset_hashes.get(budget)
        if expected is None:
            errors.append(("dataset.labeled_subset_hash",
                           f"no known labeled-{budget} subset for {name} (known budgets: "
                           f"{', '.join(map(str, sorted(build.labeled_subset_hashes))) or 'none'})"))
        elif expected != labeled_subset_hash:
            errors.append(("dataset.labeled_subset_hash",
                           f"{labeled_subset_hash[:16]}... is not the labeled-{budget} subset of "
                           f"{name} ({expected[:16]}...): the run used other labeled trajectories"))
        if not build.protocol:
            errors.append(("dataset", f"the known build of {name} ({build.origin}) is marked "
                                      "non-protocol (non-default sizes or lengths)"))
        if build.origin not in ("committed", "hub"):
            warnings.append(("dataset", f"build of {name} is known only from a local manifest "
                                        f"({build.origin}); CI will reject it until it is added to "
                                        "known_datasets.json (dcsbench leaderboard add-known)"))
        return errors, warnings


def _parse_subsets(raw: Any) -> dict[int, str]:
    """Budget -> hash from either ``{B: hash}`` or ``{"labeled-B": {"hash": ...}}`` layouts."""
    out: dict[int, str] = {}
    if not isinstance(raw, dict):
        return out
    for key, val in raw.items():
        key = str(key)
        if key.startswith("labeled-"):
            key = key[len("labeled-"):]
        if not key.isdigit():
            continue
        if isinstance(val, dict):
            val = val.get("sha256") or val.get("hash")
        if isinstance(val, str):
            out[int(key)] = val
    return out


def build_from_manifest(manifest: dict[str, Any], origin: str,
                        revision: str | None = None) -> KnownBuild:
    """A :class:`KnownBuild` from a dataset manifest (``manifest.json`` of ``dcsbench.data``).

    Reads ``name``, ``source``, ``content_hash``, the labeled subsets (``labeled_subset_hashes``
    ``{B: hash}``, or ``labeled_subsets`` ``{"budgets": {B: {"sha256": ...}}}``) and the
    ``protocol_compliant`` flag. The revision is ``revision`` if given (from the dataset's
    ``origin.json``), else the manifest's own ``revision`` field, else ``"local"`` (the value
    :func:`dcsbench.data.prepare` records for local builds). Raises ``ValueError`` naming the
    missing field.
    """
    for key in ("name", "content_hash"):
        if not isinstance(manifest.get(key), str):
            raise ValueError(f"{origin}: manifest has no string field {key!r}")
    raw = manifest.get("labeled_subsets")
    subsets = _parse_subsets(manifest.get("labeled_subset_hashes")) or _parse_subsets(
        raw.get("budgets") if isinstance(raw, dict) and "budgets" in raw else raw)
    return KnownBuild(
        name=manifest["name"],
        revision=str(revision or manifest.get("revision") or "local"),
        source=str(manifest.get("source", "procedural")),
        content_hash=manifest["content_hash"],
        labeled_subset_hashes=subsets,
        origin=origin,
        protocol=bool(manifest.get("protocol_compliant", manifest.get("protocol", True))),
    )


def manifest_revision(manifest_path: Path) -> str | None:
    """The revision a run records for the dataset at ``manifest_path``: ``origin.json``'s
    ``revision`` (hub downloads) or its ``kind`` (``"local"`` builds), like
    :func:`dcsbench.data.prepare`; None if there is no ``origin.json``."""
    path = Path(manifest_path).parent / "origin.json"
    try:
        origin = _read_json(path, 1_000_000)
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    if not isinstance(origin, dict):
        return None
    return origin.get("revision") or origin.get("kind") or None


def _read_json(path: Path, limit: int) -> Any:
    if path.is_symlink() or not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    if path.stat().st_size > limit:
        raise ValueError(f"{path}: larger than {limit} bytes")
    return json.loads(path.read_bytes().decode("utf-8"))


def read_committed(path: str | os.PathLike = KNOWN_DATASETS_FILE) -> list[KnownBuild]:
    """The builds listed in the committed ``known_datasets.json`` (empty if the file is absent)."""
    path = Path(path)
    if not path.exists():
        return []
    data = _read_json(path, MAX_MANIFEST_BYTES)
    out = []
    for name, entries in (data.get("datasets") or {}).items():
        catalogue.parse_dataset_name(name)
        for e in entries:
            out.append(KnownBuild(
                name=name, revision=str(e["revision"]), source=str(e["source"]),
                content_hash=str(e["content_hash"]),
                labeled_subset_hashes={int(k): str(v) for k, v in e["labeled_subset_hashes"].items()},
                origin="committed", protocol=bool(e.get("protocol", True))))
    return out


def cache_root() -> Path:
    """The local dataset cache root (:func:`dcsbench.data.build.default_root`, the one place)."""
    from dcsbench.data.build import default_root

    return default_root()


def local_manifests(root: str | os.PathLike | None = None) -> Iterable[Path]:
    """Paths of ``manifest.json`` files of datasets in the local cache (any depth up to 3)."""
    root = Path(root) if root is not None else cache_root()
    if not root.is_dir():
        return []
    found = []
    for depth in ("*/manifest.json", "*/*/manifest.json", "*/*/*/manifest.json"):
        found.extend(p for p in root.glob(depth) if p.is_file() and not p.is_symlink())
    return sorted(set(found))


def load_known_datasets(include_local: bool = True, root: str | os.PathLike | None = None,
                        committed: str | os.PathLike = KNOWN_DATASETS_FILE) -> KnownDatasets:
    """Collect every known dataset build.

    Args:
        include_local: also read manifests from the local cache (``root`` or ``$DCSBENCH_HOME``).
            CI passes False so that only committed hashes count.
        root: cache root to scan for manifests.
        committed: path of the committed known-datasets JSON.
    """
    known = KnownDatasets(hub_revisions={n: h.revision for n, h in catalogue.HUB_DATASETS.items()})
    for b in read_committed(committed):
        known.add(b)
    if include_local:
        for path in local_manifests(root):
            try:
                manifest = _read_json(path, MAX_MANIFEST_BYTES)
                if not isinstance(manifest, dict):
                    continue
                build = build_from_manifest(manifest, str(path), manifest_revision(path))
                catalogue.parse_dataset_name(build.name)
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue  # not a dcsbench dataset manifest
            hub = catalogue.HUB_DATASETS.get(build.name)
            if hub is not None and hashlib.sha256(path.read_bytes()).hexdigest() == hub.manifest_sha256:
                build = KnownBuild(**{**build.__dict__, "origin": "hub"})
            known.add(build)
    return known


def add_known(manifest_path: str | os.PathLike,
              committed: str | os.PathLike = KNOWN_DATASETS_FILE) -> KnownBuild:
    """Add the build described by a local manifest to the committed known-datasets JSON.

    Refuses non-protocol builds. Writes atomically; returns the added build.
    """
    manifest_path = Path(manifest_path)
    build = build_from_manifest(_read_json(manifest_path, MAX_MANIFEST_BYTES), str(manifest_path),
                                manifest_revision(manifest_path))
    catalogue.parse_dataset_name(build.name)
    if not build.protocol:
        raise ValueError(f"{manifest_path}: the build is marked non-protocol; only protocol "
                         "builds may be listed as known")
    if not build.labeled_subset_hashes:
        raise ValueError(f"{manifest_path}: manifest lists no labeled-subset hashes")
    committed = Path(committed)
    data = _read_json(committed, MAX_MANIFEST_BYTES) if committed.exists() else {}
    data.setdefault("datasets", {})
    entries = data["datasets"].setdefault(build.name, [])
    entry = {"revision": build.revision, "source": build.source,
             "content_hash": build.content_hash,
             "labeled_subset_hashes": {str(k): v for k, v in sorted(build.labeled_subset_hashes.items())},
             "provenance": f"manifest of a dcsbench build ({manifest_path.name})"}
    entries[:] = [e for e in entries
                  if (e["revision"], e["content_hash"]) != (build.revision, build.content_hash)]
    entries.append(entry)
    data["datasets"] = dict(sorted(data["datasets"].items()))
    atomic_write_text(committed, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return build
