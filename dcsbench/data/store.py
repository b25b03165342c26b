"""Opening datasets: the user-facing :func:`load_dataset` and the harness's :func:`prepare`.

Both look in the local cache (``$DCSBENCH_HOME/datasets/{name}``); if the dataset (or the split)
is not there and it is published (:data:`dcsbench.catalogue.HUB_DATASETS`), it is downloaded and
verified first. Unpublished datasets are built locally with ``dcsbench build NAME``.

Example::

    import dcsbench
    train = dcsbench.load_dataset("cheetah-run-distractors-tiny", split="train")
    train.frames(0).shape        # (1000, 64, 64, 3) uint8
    train.actions(0), train.rewards(0), train.states(0)
    lab = dcsbench.load_dataset("cheetah-run-distractors-tiny", split="labeled-8")
    lab.trajectory_ids           # the 8 train ids of the nested labeled-8 subset

Checked when used (every ``load_dataset`` and ``prepare``):

* the manifest (:func:`checked_manifest`): its sha256 against the one ``origin.json`` recorded at
  build/download time and, for a download of a published dataset at its pinned revision,
  against the catalogue's pin; its labeled subsets against a committed known build with the same
  content hash (``registry_data/known_datasets.json``); and its own consistency
  (:func:`manifest_problems`): the labeled ids of every budget are recomputed from the published
  permutation (first B of the seeded permutation of the train ids, exactly B of them) with their
  hashes, ``trajectory_length`` is the longest of ``lengths``, counts agree, the split content
  hashes combine into the dataset's, and a ``protocol_compliant`` claim matches the tier's sizes.
  A failure raises :class:`DatasetIntegrityError` naming ``manifest.json``.
* the split caches (:func:`open_split`, :func:`dcsbench.data.cache.check_split`): sizes, headers
  and the content hash recomputed from the arrays (sampled above 1 GiB). A damaged cache is
  re-decoded from the dataset's shards after checking their sha256 (``data/`` of a local build,
  the Hugging Face cache of a download), or the run is refused with
  :class:`~dcsbench.data.cache.CacheCorruptError` naming the file.
* stale temporary folders of killed builds/decodes are removed
  (:func:`dcsbench.data.cache.clean_stale_temp`).

The ``content_hash`` that :func:`prepare` reports (and records cite) is combined from the split
hashes computed while opening, never copied from the manifest.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcsbench import catalogue
from dcsbench.agent import EnvSpec
from dcsbench.data import cache as cache_mod
from dcsbench.data import format as fmt
from dcsbench.data.build import dataset_dir, default_root, missing_manifest_error, rebuild_hint
from dcsbench.data.integrity import (DatasetIntegrityError, checked_manifest, manifest_problems,
                                     read_origin)
from dcsbench.data.views import ArrayLabeledView, ArrayUnlabeledView, EvalSplit

__all__ = ["DatasetSplit", "DatasetIntegrityError", "ProtocolData", "load_dataset", "prepare",
           "dataset_root", "ensure_dataset", "local_datasets", "read_local_manifest",
           "checked_manifest", "manifest_problems", "open_split"]


def dataset_root(root: str | os.PathLike | None = None) -> Path:
    """The cache root (``$DCSBENCH_HOME`` or ``~/.cache/dcsbench``)."""
    return default_root(root)


def read_local_manifest(name: str, root=None) -> dict | None:
    """The manifest of a locally present dataset, or None."""
    p = dataset_dir(name, root) / fmt.MANIFEST
    return fmt.load_manifest(p) if p.is_file() else None


def local_datasets(root=None) -> list[str]:
    """Names of datasets in the local cache that have at least one complete split."""
    base = default_root(root) / "datasets"
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if not d.name.startswith(".") and
                  any(cache_mod.split_complete(d, s) for s in fmt.SPLITS))


def clean_stale_temp(root=None, name: str | None = None) -> list[Path]:
    """Remove stale temporary folders of killed builds/decodes under the cache root (and in the
    ``cache/`` folder of dataset ``name``); see :func:`dcsbench.data.cache.clean_stale_temp`."""
    base = default_root(root) / "datasets"
    removed = cache_mod.clean_stale_temp(base)
    if name is not None:
        removed += cache_mod.clean_stale_temp(dataset_dir(name, root) / "cache")
    return removed


def ensure_dataset(name: str, splits=fmt.SPLITS, root=None, download: bool = True) -> Path:
    """Make sure the given splits of ``name`` are in the local cache; returns the dataset folder.

    Downloads (and verifies) missing splits of published datasets when ``download`` is True.
    Raises ``FileNotFoundError`` with the command to run otherwise (one message for a missing
    ``manifest.json``: :func:`dcsbench.data.build.missing_manifest_error`). Removes stale
    temporary folders first.
    """
    d = dataset_dir(name, root)
    clean_stale_temp(root, name if d.is_dir() else None)
    has_manifest = (d / fmt.MANIFEST).is_file()
    missing = [s for s in splits if cache_mod.split_complete(d, s) is None
               and not (cache_mod.split_dir(d, s) / cache_mod.COMPLETE).is_file()]
    if not missing and has_manifest:
        return d
    if not has_manifest:
        catalogue.parse_dataset_name(name)  # unknown names: error listing close matches
    if download and name in catalogue.HUB_DATASETS and read_origin(name, root).get("kind") in (None, "hub"):
        from dcsbench.data.hub import download as hub_download

        hub_download(name, splits=missing or list(splits), root=root)
        return d
    if not has_manifest:
        raise missing_manifest_error(name, root)
    raise FileNotFoundError(f"dataset {name!r} (split(s) {', '.join(missing)}) is not in the local "
                            f"cache {d.parent}; get it with {rebuild_hint(name, read_origin(name, root))}")


def _redecode(name: str, d: Path, split: str, m: dict, err: Exception, root, log) -> None:
    """Rewrite a damaged split cache from the split's shards, checked against the manifest's
    sha256s first; raises :class:`~dcsbench.data.cache.CacheCorruptError` naming the damaged
    file when the shards are missing or damaged too."""
    from dcsbench.data.hub import shard_paths

    e = m["splits"][split]
    try:
        paths = shard_paths(name, root)
    except Exception as exc:  # noqa: BLE001 - any failure to locate shards means: cannot repair
        paths, why = {}, f"shards not found ({exc})"
    else:
        why = ""
    bad = []
    for sh in e["shards"]:
        p = paths.get(sh["path"])
        if p is None:
            bad.append(f"{sh['path']} is missing")
        elif fmt.sha256_file(p) != sh["sha256"]:
            bad.append(f"{sh['path']} does not match its sha256")
    if bad or why:
        path = getattr(err, "path", cache_mod.split_dir(d, split))
        problem = getattr(err, "problem", str(err))
        raise cache_mod.CacheCorruptError(
            path, f"{problem}; cannot re-decode the {split} split ({why or '; '.join(bad)}): "
                  f"recreate the dataset with {rebuild_hint(name, read_origin(name, root))}")
    log(f"[dcsbench] {err}\n[dcsbench] re-decoding the {split} split of {name} from "
        f"{len(e['shards'])} verified shard(s)")
    try:
        cache_mod.write_split_cache(
            d, split, (tr for sh in e["shards"] for tr in fmt.read_shard(paths[sh["path"]])),
            e["lengths"], int(m["action_dim"]), int(m["state_dim"]), expected_hash=e["content_hash"])
    except ValueError as exc:  # verified shards that do not decode to what the manifest says
        raise DatasetIntegrityError(
            f"{d / fmt.MANIFEST}: does not describe the {split} split's data: the cache fails its "
            f"check ({err}) and decoding the shards, whose sha256 match, fails too ({exc}); "
            f"recreate the dataset with {rebuild_hint(name, read_origin(name, root))}") from None


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def open_split(name: str, d: Path, split: str, m: dict, names=cache_mod.ARRAYS, root=None,
               log=_stderr) -> tuple[dict[str, np.ndarray], str]:
    """Open arrays of a checked split: ``(arrays, content hash computed while checking)``.

    The cache is checked against ``COMPLETE`` and the manifest (``m``, already checked by
    :func:`checked_manifest`); a damaged cache is re-decoded once from its verified shards (a
    message goes to ``log``), else :class:`~dcsbench.data.cache.CacheCorruptError` names the file.
    """
    e = m["splits"][split]
    try:
        digest = cache_mod.check_split(d, split, e["lengths"], e["content_hash"])
    except cache_mod.CacheCorruptError as err:
        _redecode(name, d, split, m, err, root, log)
        digest = cache_mod.check_split(d, split, e["lengths"], e["content_hash"])
    if digest != e["content_hash"]:  # defensive: check_split compares it already
        raise cache_mod.CacheCorruptError(cache_mod.split_dir(d, split), "content hash differs from the manifest's")
    return cache_mod.read_split_arrays(d, split, names, check=False), digest


class DatasetSplit:
    """One split of a dataset with numpy access (memory-mapped, read-only).

    Attributes:
        name: dataset name.
        split: ``"train"``, ``"labeled-{B}"`` or ``"eval"``.
        trajectory_ids: for ``labeled-{B}``, the train ids of its trajectories (permutation
            order); for ``train``/``eval``, ``0..N-1``.
        seeds: episode seed of each trajectory.
        lengths: number of steps of each trajectory.
        returns: undiscounted return of each trajectory.
        manifest: the dataset's manifest (dict).

    Trajectory ``i`` of the split: :meth:`frames` ``(T, 64, 64, 3)`` uint8 (frame seen before each
    action), :meth:`actions` ``(T, A)``, :meth:`rewards` ``(T,)``, :meth:`states` ``(T, S)``
    float32. All arrays are read-only views of the local cache.
    """

    def __init__(self, name: str, split: str, manifest: dict, arrays: dict[str, np.ndarray],
                 base_split: str, ids: list[int]) -> None:
        info = manifest["splits"][base_split]
        self.name, self.split, self.manifest = name, split, manifest
        self._arrays = arrays
        all_lengths = np.asarray(info["lengths"], dtype=np.int64)
        all_starts = np.concatenate([[0], np.cumsum(all_lengths)[:-1]])
        self.trajectory_ids = [int(i) for i in ids]
        self._starts = all_starts[self.trajectory_ids]
        self.lengths = all_lengths[self.trajectory_ids]
        self.seeds = [int(info["seeds"][i]) for i in self.trajectory_ids]
        self.returns = [float(info["returns"]["per_trajectory"][i]) for i in self.trajectory_ids]

    @property
    def n_trajectories(self) -> int:
        """Number of trajectories in the split."""
        return len(self.trajectory_ids)

    def __len__(self) -> int:
        return self.n_trajectories

    def _get(self, key: str, i: int) -> np.ndarray:
        if not 0 <= int(i) < self.n_trajectories:
            raise IndexError(f"trajectory {i} out of range 0..{self.n_trajectories - 1}")
        s = int(self._starts[i])
        return self._arrays[key][s:s + int(self.lengths[i])]

    def frames(self, i: int) -> np.ndarray:
        """Frames of trajectory ``i``: ``(T, 64, 64, 3)`` uint8."""
        return self._get("frames", i)

    def actions(self, i: int) -> np.ndarray:
        """Actions of trajectory ``i``: ``(T, A)`` float32 (``actions(i)[t]`` follows ``frames(i)[t]``)."""
        return self._get("actions", i)

    def rewards(self, i: int) -> np.ndarray:
        """Rewards of trajectory ``i``: ``(T,)`` float32."""
        return self._get("rewards", i)

    def states(self, i: int) -> np.ndarray:
        """Simulator states of trajectory ``i``: ``(T, S)`` float32 (debug only)."""
        return self._get("states", i)

    def __iter__(self):
        """Iterate over trajectories as dicts ``{frames, actions, rewards, states, seed}``."""
        for i in range(self.n_trajectories):
            yield {"frames": self.frames(i), "actions": self.actions(i), "rewards": self.rewards(i),
                   "states": self.states(i), "seed": self.seeds[i]}

    def __repr__(self) -> str:
        return f"DatasetSplit({self.name!r}, split={self.split!r}, n_trajectories={self.n_trajectories})"


def _parse_split(split: str, manifest: dict) -> tuple[str, list[int]]:
    """``(base split, trajectory ids)`` for a split name (the manifest is already checked, so the
    labeled ids are the published permutation's)."""
    if split in ("train", "eval"):
        if split not in manifest["splits"]:
            catalogue.check_choice("split", split, list(manifest["splits"]))
        return split, list(range(manifest["splits"][split]["n_trajectories"]))
    budgets = manifest["labeled_subsets"]["budgets"]
    valid = ["train", "eval", *(f"labeled-{b}" for b in budgets)]
    catalogue.check_choice("split", split, valid)
    return "train", list(budgets[split.split("-", 1)[1]]["ids"])


def load_dataset(name: str, split: str = "train", root=None, download: bool = True) -> DatasetSplit:
    """Open one split of dataset ``name`` (downloading and verifying it first if it is published
    and not cached yet).

    The manifest and the split cache are checked first (module docstring); a damaged cache is
    re-decoded from its shards or refused naming the file.

    Args:
        name: e.g. ``"cheetah-run-distractors-tiny"``.
        split: ``"train"``, ``"eval"`` or ``"labeled-{B}"`` (B among the dataset's budgets).
        root: cache root (default ``$DCSBENCH_HOME`` or ``~/.cache/dcsbench``).
        download: allow downloading from the Hub.

    Returns:
        A :class:`DatasetSplit` with numpy access to frames/actions/rewards/states.
    """
    base = "eval" if split == "eval" else "train"
    ensure_dataset(name, splits=(base,), root=root, download=download)
    d, manifest = checked_manifest(name, root)
    base, ids = _parse_split(split, manifest)
    arrays, _ = open_split(name, d, base, manifest, root=root)
    return DatasetSplit(name, split, manifest, arrays, base, ids)


@dataclass(frozen=True)
class ProtocolData:
    """Everything the protocol runner needs for one (dataset, budget).

    Attributes:
        unlabeled: frames of all train trajectories (given to the agent).
        labeled: frames + actions of the budget's labeled trajectories (given to the agent).
            For ``budget="all"``: every train trajectory.
        eval_split: frames + actions of the eval trajectories (novel backgrounds): harness only
            (``None`` for an imported dataset without an eval file).
        spec: the task's :class:`~dcsbench.agent.EnvSpec` (given to the agent).
        info: identity for the result record: name, task, setting, tier, source, revision,
            content_hash (combined from the split hashes computed while opening, never the
            manifest's copy), labeled_subset_hash, budget, protocol_compliant, and
            ``content_check`` (``{split: "full"|"sampled"}``, how each split was checked).
        train_labeled: frames + actions of **all** train trajectories (``trajectory_ids``
            ``0..N-1``). **Harness only, never given to the agent** (it holds every label): the
            runner uses it for measurements that need the train actions, e.g. the probe of the
            agent's latent actions. ``None`` only when built by hand.
    """

    unlabeled: ArrayUnlabeledView
    labeled: ArrayLabeledView
    eval_split: EvalSplit | None
    spec: EnvSpec
    info: dict
    train_labeled: ArrayLabeledView | None = None


def prepare(name: str, budget: int | str, root=None, download: bool = True) -> ProtocolData:
    """Open dataset ``name`` for a protocol run with label budget ``budget``.

    Args:
        name: dataset name.
        budget: one of the manifest's labeled budgets, or ``"all"``: the labeled view is every
            train trajectory (reference measurements); ``info["budget"]`` is then the number of
            train trajectories and ``info["labeled_subset_hash"]`` is
            ``format.labeled_subset_hash(N, [0, ..., N-1])``, hashed like a labeled subset.
        root: cache root.
        download: allow downloading a published dataset that is not cached.

    The manifest is checked (:func:`checked_manifest`; the labeled ids are the published
    permutation's first B, exactly B of them) and every split cache is checked when opened
    (:func:`open_split`: re-decoded from verified shards, or refused naming the file). The views
    are built straight from the memory-mapped cache: the unlabeled view gets the train frames
    file only, the labeled view additionally a copy of its B trajectories' actions; rewards,
    states and the eval split are never opened for them. ``train_labeled`` (all train actions)
    and ``eval_split`` are harness only.
    """
    all_labels = isinstance(budget, str) and budget == "all"
    if not all_labels:
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer, str)) or \
                (isinstance(budget, str) and not budget.isdigit()):
            raise ValueError(f"budget must be a positive integer or 'all', got {budget!r}")
        budget = int(budget)
    ensure_dataset(name, splits=("train",), root=root, download=download)
    d, m = checked_manifest(name, root)
    if "eval" in m["splits"]:
        ensure_dataset(name, splits=("eval",), root=root, download=download)
    train = m["splits"]["train"]
    lengths = np.asarray(train["lengths"], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    budgets = m["labeled_subsets"]["budgets"]
    if all_labels:
        ids = list(range(len(lengths)))
        budget_n, subset_hash = len(ids), fmt.labeled_subset_hash(len(ids), ids)
    else:
        catalogue.check_choice("budget", str(budget), budgets)
        if m["labeled_subsets"].get("kind") == "laom-release":  # the authors' ids (checked)
            ids = [int(i) for i in budgets[str(budget)]["ids"]]
        else:
            ids = fmt.labeled_permutation(len(lengths))[:budget]  # recomputed, == manifest (checked)
        budget_n, subset_hash = budget, fmt.labeled_subset_hash(budget, ids)

    arrays, train_hash = open_split(name, d, "train", m, names=("frames", "actions"), root=root)
    frames = arrays["frames"]
    unlabeled = ArrayUnlabeledView(frames, starts, lengths)
    all_actions = arrays["actions"]
    lab_actions = np.concatenate([all_actions[starts[i]:starts[i] + lengths[i]] for i in ids])
    labeled = ArrayLabeledView(frames, starts[ids], lengths[ids], lab_actions, ids)
    train_labeled = ArrayLabeledView(frames, starts, lengths, all_actions, list(range(len(lengths))))
    del all_actions, arrays

    split_hashes = {"train": train_hash}
    checks = {"train": _check_kind(d, "train")}
    eval_split = None
    if "eval" in m["splits"]:
        ev = m["splits"]["eval"]
        ev_arr, split_hashes["eval"] = open_split(name, d, "eval", m, names=("frames", "actions"),
                                                  root=root)
        checks["eval"] = _check_kind(d, "eval")
        ev_lengths = np.asarray(ev["lengths"], dtype=np.int64)
        eval_split = EvalSplit(ev_arr["frames"], np.concatenate([[0], np.cumsum(ev_lengths)[:-1]]),
                               ev_lengths, ev_arr["actions"], seeds=ev["seeds"])

    fs = catalogue.FRAME_STACK
    h, w, c = m["frame_shape"]
    spec = EnvSpec(task=m["task"], setting=m["setting"], obs_shape=(h, w, c * fs),
                   frame_shape=(h, w, c), frame_stack=fs, action_dim=int(m["action_dim"]),
                   episode_length=int(train["trajectory_length"]))
    origin = read_origin(name, root)
    info = {"name": name, "task": m["task"], "setting": m["setting"], "tier": m["tier"],
            "source": m["source"], "revision": origin.get("revision") or origin.get("kind", "local"),
            "content_hash": fmt.combine_hashes(split_hashes),
            "labeled_subset_hash": subset_hash, "budget": budget_n,
            "protocol_compliant": bool(m["protocol_compliant"]), "content_check": checks}
    return ProtocolData(unlabeled, labeled, eval_split, spec, info, train_labeled)


def _check_kind(d: Path, split: str) -> str:
    """``"full"`` or ``"sampled"``: how :func:`dcsbench.data.cache.check_split` checked a split."""
    total = sum((cache_mod.split_dir(d, split) / f"{k}.npy").stat().st_size for k in cache_mod.ARRAYS)
    return "full" if total <= cache_mod.FULL_CHECK_MAX_BYTES else "sampled"
