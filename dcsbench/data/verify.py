"""``dcsbench verify NAME``: re-hash a local dataset against its manifest.

Checks, each reported with the file it concerns:

1. the manifest's sha256 against the one pinned in the catalogue (published datasets) and the one
   recorded when the dataset was written/downloaded;
2. every shard's sha256 (local ``data/`` or the Hugging Face cache);
3. the manifest's consistency (:func:`dcsbench.data.integrity.manifest_problems`: labeled ids
   recomputed from the published permutation, lengths, counts, hashes, compliance claim);
4. every split cache: present (COMPLETE marker), every file's size and header, and the content
   hash of its decoded arrays, always in full (:func:`dcsbench.data.cache.check_split`); a
   truncated or damaged file is reported by name with what is wrong;
5. with ``deep=True``, the shards are decoded again and their content hash compared too.

A missing ``manifest.json`` raises the same error as ``load_dataset``
(:func:`dcsbench.data.build.missing_manifest_error`). Fix hints follow the dataset's origin:
``dcsbench build NAME`` for a local build, ``dcsbench download NAME`` for a download.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from dcsbench import catalogue
from dcsbench.data import cache as cache_mod
from dcsbench.data import format as fmt
from dcsbench.data.build import dataset_dir, missing_manifest_error, rebuild_hint


@dataclass
class VerifyReport:
    """Result of :func:`verify`: ``checks`` is a list of ``(item, ok, detail)``."""

    name: str
    checks: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(ok for _, ok, _ in self.checks)

    @property
    def failures(self) -> list:
        """The failed checks."""
        return [c for c in self.checks if not c[1]]

    def add(self, item: str, ok: bool, detail: str = "") -> None:
        self.checks.append((item, bool(ok), detail))

    def __str__(self) -> str:
        lines = [f"{'ok ' if ok else 'BAD'}  {item}{': ' + detail if detail else ''}"
                 for item, ok, detail in self.checks]
        lines.append(f"{self.name}: {'verified' if self.ok else f'{len(self.failures)} problem(s)'}")
        return "\n".join(lines)


def verify(name: str, root=None, deep: bool = False) -> VerifyReport:
    """Re-hash dataset ``name`` in the local cache; see the module docstring for the checks."""
    from dcsbench.data.hub import shard_paths

    d = dataset_dir(name, root)
    rep = VerifyReport(name)
    mpath = d / fmt.MANIFEST
    if not mpath.is_file():
        if name not in catalogue.HUB_DATASETS:
            catalogue.parse_dataset_name(name)
        raise missing_manifest_error(name, root)
    mtext = mpath.read_bytes()
    msha = hashlib.sha256(mtext).hexdigest()
    try:
        origin = json.loads((d / "origin.json").read_text()) if (d / "origin.json").is_file() else {}
    except ValueError:
        origin = {}
    fix = rebuild_hint(name, origin)
    rep.add(fmt.MANIFEST, origin.get("manifest_sha256") == msha,
            "" if origin.get("manifest_sha256") == msha else "differs from the one recorded at write time")
    pinned = catalogue.HUB_DATASETS.get(name)
    if pinned is not None and origin.get("kind") == "hub":
        rep.add(f"{fmt.MANIFEST} (catalogue pin)", pinned.manifest_sha256 == msha,
                "" if pinned.manifest_sha256 == msha else "differs from catalogue.HUB_DATASETS")
    m = fmt.load_manifest(mpath)
    from dcsbench.data.integrity import manifest_problems

    problems = manifest_problems(name, m)
    rep.add(f"{fmt.MANIFEST} (consistency)", not problems, "; ".join(problems))
    if problems:
        return rep

    paths = shard_paths(name, root)
    for split in (s for s in fmt.SPLITS if s in m["splits"]):
        e = m["splits"][split]
        for sh in e["shards"]:
            p = paths.get(sh["path"])
            if p is None:
                rep.add(sh["path"], False, "missing (not downloaded or deleted)")
                continue
            got = fmt.sha256_file(p)
            rep.add(sh["path"], got == sh["sha256"],
                    "" if got == sh["sha256"] else f"sha256 {got[:12]}... != manifest {sh['sha256'][:12]}... "
                    f"(truncated or corrupted; recreate it with {fix})")
        done = cache_mod.split_complete(d, split)
        if done is None and not (cache_mod.split_dir(d, split) / cache_mod.COMPLETE).is_file():
            rep.add(f"cache/{split}", False, f"not built (get it with {fix})")
        else:
            try:
                cache_mod.check_split(d, split, e["lengths"], e["content_hash"], full=True)
                rep.add(f"cache/{split}", True)
            except cache_mod.CacheCorruptError as err:
                where = err.path.relative_to(d) if err.path.is_relative_to(d) else err.path
                rep.add(f"cache/{split}", False, f"{where.as_posix()}: {err.problem} (the next "
                        "load_dataset/prepare re-decodes it from the shards if they check out)")
        if deep and all(paths.get(sh["path"]) for sh in e["shards"]):
            h = fmt.ContentHasher()
            for sh in e["shards"]:
                for tr in fmt.read_shard(paths[sh["path"]]):
                    h.add(tr["obs"], tr["actions"], tr["rewards"], tr["states"])
            rep.add(f"shards/{split} (decoded)", h.hexdigest() == e["content_hash"],
                    "" if h.hexdigest() == e["content_hash"] else "decoded content hash differs")
    return rep
