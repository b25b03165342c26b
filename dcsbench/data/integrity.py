"""Is a local dataset's manifest what was built or downloaded? Checked on every open.

:func:`checked_manifest` reads ``manifest.json`` and refuses it (:class:`DatasetIntegrityError`,
naming the file) unless it matches its record of origin (``origin.json``: the sha256 recorded at
build or download), the catalogue's Hub pin, the committed known builds
(``registry_data/known_datasets.json``) and its own consistency (:func:`manifest_problems`:
labeled ids recomputed from the published permutation, counts, lengths, hashes, a compliance
claim).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dcsbench import catalogue
from dcsbench.data import format as fmt
from dcsbench.data.build import dataset_dir, missing_manifest_error, rebuild_hint


def read_origin(name: str, root=None) -> dict:
    """Where a local dataset came from: ``{"kind": "local"|"hub"|"hdf5", ...}``."""
    p = dataset_dir(name, root) / "origin.json"
    return json.loads(p.read_text()) if p.is_file() else {}


class DatasetIntegrityError(ValueError):
    """A dataset's manifest (or its record of origin) is inconsistent or tampered with; the
    message names the file, the problem and the command that recreates the dataset."""


def manifest_problems(name: str, m: dict) -> list[str]:
    """What is inconsistent in manifest ``m`` of dataset ``name`` (empty when nothing is).

    Checks: name (and task/setting/tier for catalogue names), frame shape/stack, dimensions;
    per split: ``n_trajectories`` = number of ``lengths`` = of ``seeds`` = of per-trajectory
    returns, positive lengths, ``trajectory_length`` = max(lengths); the dataset content hash =
    combination of the split hashes; the labeled subsets: permutation seed, and for every budget
    B: ``1 <= B <= n_train``, ids = the first B of :func:`dcsbench.data.format.labeled_permutation`,
    hash = :func:`dcsbench.data.format.labeled_subset_hash`, the flat ``labeled_subset_hashes``
    map equal; a ``protocol_compliant`` claim: expert policy, the tier's sizes and budgets, every
    trajectory ``catalogue.EPISODE_LENGTH`` steps.
    """
    out: list[str] = []
    try:
        return _manifest_problems(name, m, out)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        return [*out, f"malformed ({type(err).__name__}: {err})"]


def _manifest_problems(name: str, m: dict, out: list[str]) -> list[str]:
    if m.get("name") != name:
        out.append(f"names dataset {m.get('name')!r}, not {name!r}")
    try:
        dn = catalogue.parse_dataset_name(name)
    except ValueError:
        dn = None  # imported datasets may have names outside the catalogue
    if dn is not None:
        for k in ("task", "setting", "tier"):
            if m.get(k) != getattr(dn, k):
                out.append(f"{k} {m.get(k)!r} does not match the name {name!r}")
    if list(m["frame_shape"]) != list(fmt.FRAME_SHAPE) or m.get("frame_stack") != catalogue.FRAME_STACK:
        out.append(f"frame_shape {m['frame_shape']} / frame_stack {m.get('frame_stack')} are not "
                   f"{list(fmt.FRAME_SHAPE)} / {catalogue.FRAME_STACK}")
    for k in ("action_dim", "state_dim"):
        if not isinstance(m.get(k), int) or isinstance(m.get(k), bool) or m[k] < 1:
            out.append(f"{k} {m.get(k)!r} is not a positive integer")
    splits = m["splits"]
    if "train" not in splits:
        out.append("has no train split")
        return out
    for s, e in splits.items():
        if s not in fmt.SPLITS:
            out.append(f"unknown split {s!r}")
            continue
        lengths = e["lengths"]
        n = e["n_trajectories"]
        if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 1 for t in lengths):
            out.append(f"{s}: lengths must be positive integers")
            continue
        counts = {"n_trajectories": n, "lengths": len(lengths), "seeds": len(e["seeds"]),
                  "returns.per_trajectory": len(e["returns"]["per_trajectory"])}
        if len(set(counts.values())) != 1:
            out.append(f"{s}: counts disagree ({', '.join(f'{k} {v}' for k, v in counts.items())})")
        if lengths and e["trajectory_length"] != max(lengths):
            out.append(f"{s}: trajectory_length {e['trajectory_length']} but the longest trajectory "
                       f"has {max(lengths)} steps")
    hashes = {s: e["content_hash"] for s, e in splits.items() if s in fmt.SPLITS}
    if m["content_hash"] != fmt.combine_hashes(hashes):
        out.append("content_hash is not the combination of the split content hashes")
    n_train = len(splits["train"]["lengths"])
    subsets = m["labeled_subsets"]
    if subsets.get("kind") == "laom-release":
        # The LAOM authors' labeled files: their ids cannot be recomputed from our permutation;
        # hdf5.release_subset_problems checks them (distinct, in range, hashes, provenance).
        from dcsbench.data.hdf5 import release_subset_problems

        out += release_subset_problems(m)
    elif subsets.get("permutation_seed") != catalogue.LABELED_PERMUTATION_SEED:
        out.append(f"labeled_subsets.permutation_seed {subsets.get('permutation_seed')} is not the "
                   f"published {catalogue.LABELED_PERMUTATION_SEED}")
    perm = fmt.labeled_permutation(n_train)
    flat = m.get("labeled_subset_hashes")
    release = subsets.get("kind") == "laom-release"
    for key, v in ({} if release else subsets["budgets"]).items():
        if not str(key).isdigit() or not 1 <= int(key) <= n_train:
            out.append(f"labeled budget {key!r} is not in 1..{n_train}")
            continue
        b = int(key)
        ids = [int(i) for i in v["ids"]]
        if ids != perm[:b]:
            out.append(f"labeled-{b} lists {len(ids)} ids {ids[:8]}{'...' if len(ids) > 8 else ''}, "
                       f"not the first {b} of the published permutation {perm[:b][:8]}"
                       f"{'...' if b > 8 else ''}")
        elif v["sha256"] != fmt.labeled_subset_hash(b, perm[:b]):
            out.append(f"labeled-{b}: sha256 is not the hash of its ids")
        if flat is not None and flat.get(str(key)) != fmt.labeled_subset_hash(b, perm[:b]):
            out.append(f"labeled_subset_hashes[{key!r}] is not the hash of labeled-{b}")
    if not release and flat is not None and set(map(str, flat)) != set(map(str, subsets["budgets"])):
        out.append("labeled_subset_hashes and labeled_subsets list different budgets")
    if m.get("protocol_compliant") is True:
        why = []
        if dn is None:
            why.append("the name is not a catalogue dataset")
        else:
            tier = dn.tier_spec
            n_eval = len(splits.get("eval", {}).get("lengths", []))
            if (m.get("policy") or {}).get("kind") != "expert":
                why.append("the policy is not the expert")
            if n_train != tier.n_train or n_eval != tier.n_eval:
                why.append(f"{n_train} train / {n_eval} eval trajectories, the tier has "
                           f"{tier.n_train} / {tier.n_eval}")
            if any(t != catalogue.EPISODE_LENGTH for e in splits.values() for t in e["lengths"]):
                why.append(f"not every trajectory has {catalogue.EPISODE_LENGTH} steps")
            want = {str(b) for b in tier.budgets if b <= n_train}
            if set(map(str, subsets["budgets"])) != want:
                why.append(f"budgets {sorted(subsets['budgets'], key=int)} are not the tier's "
                           f"{sorted(want, key=int)}")
        if why:
            out.append(f"claims protocol_compliant but {'; '.join(why)}")
    return out


def _origin_problems(name: str, raw: bytes, m: dict, origin: dict) -> list[str]:
    """The manifest against its record of origin, the catalogue pin and the committed known builds."""
    out = []
    sha = hashlib.sha256(raw).hexdigest()
    if not origin:
        out.append("origin.json is missing or unreadable: where the manifest came from is unknown")
    elif origin.get("manifest_sha256") != sha:
        out.append("its sha256 differs from the one origin.json recorded when the dataset was "
                   "built or downloaded (edited since)")
    pin = catalogue.HUB_DATASETS.get(name)
    if pin is not None and origin.get("kind") == "hub" and origin.get("revision") == pin.revision \
            and pin.manifest_sha256 != sha:
        out.append(f"its sha256 is not the one pinned for {name} in catalogue.HUB_DATASETS")
    try:
        from dcsbench.data.known import read_committed

        known = [b for b in read_committed() if b.name == name and b.content_hash == m.get("content_hash")]
    except (OSError, ValueError, KeyError, TypeError):
        known = []
    flat = m.get("labeled_subset_hashes") or {}
    for b in known:
        for budget, h in b.labeled_subset_hashes.items():
            if str(budget) in flat and flat[str(budget)] != h:
                out.append(f"labeled-{budget} hash differs from the committed known build of {name} "
                           "with this content hash (registry_data/known_datasets.json)")
    return out


def checked_manifest(name: str, root=None) -> tuple[Path, dict]:
    """``(dataset folder, manifest)`` of a local dataset after every manifest check (module
    docstring); raises :class:`DatasetIntegrityError` naming ``manifest.json``, or the
    missing-manifest ``FileNotFoundError``."""
    d = dataset_dir(name, root)
    p = d / fmt.MANIFEST
    if not p.is_file():
        raise missing_manifest_error(name, root)
    raw = p.read_bytes()
    try:
        m = fmt.load_manifest(p)
    except ValueError as err:
        raise DatasetIntegrityError(f"{err}; recreate it with {rebuild_hint(name, read_origin(name, root))}") \
            from None
    origin = read_origin(name, root)
    problems = _origin_problems(name, raw, m, origin) + manifest_problems(name, m)
    if problems:
        raise DatasetIntegrityError(
            f"{p}: refused, the manifest does not check out:\n  " + "\n  ".join(problems)
            + f"\nRecreate the dataset with {rebuild_hint(name, origin)} "
              f"(`dcsbench verify {name}` lists every check)")
    return d, m
