"""Opening datasets: the user-facing :func:`load_dataset` and the harness's :func:`prepare`.

Both look in the local cache (``$DCSBENCH_HOME/datasets/{name}``); if the dataset (or the split)
is not there and it is published (:data:`dcsbench.registry.HUB_DATASETS`), it is downloaded and
verified first. Unpublished datasets are built locally with ``dcsbench build NAME``.

Example::

    import dcsbench
    train = dcsbench.load_dataset("cheetah-run-distractors-tiny", split="train")
    train.frames(0).shape        # (1000, 64, 64, 3) uint8
    train.actions(0), train.rewards(0), train.states(0)
    lab = dcsbench.load_dataset("cheetah-run-distractors-tiny", split="labeled-8")
    lab.trajectory_ids           # the 8 train ids of the nested labeled-8 subset
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcsbench import registry
from dcsbench.agent import EnvSpec
from dcsbench.data import cache as cache_mod
from dcsbench.data import format as fmt
from dcsbench.data.build import dataset_dir, default_root
from dcsbench.data.views import EvalSplit, LabeledView, UnlabeledView

__all__ = ["DatasetSplit", "ProtocolData", "load_dataset", "prepare", "dataset_root",
           "ensure_dataset", "local_datasets", "read_local_manifest"]


def dataset_root(root: str | os.PathLike | None = None) -> Path:
    """The cache root (``$DCSBENCH_HOME`` or ``~/.cache/dcsbench``)."""
    return default_root(root)


def read_local_manifest(name: str, root=None) -> dict | None:
    """The manifest of a locally present dataset, or None."""
    p = dataset_dir(name, root) / fmt.MANIFEST
    return fmt.load_manifest(p) if p.is_file() else None


def read_origin(name: str, root=None) -> dict:
    """Where a local dataset came from: ``{"kind": "local"|"hub"|"hdf5", ...}``."""
    p = dataset_dir(name, root) / "origin.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def local_datasets(root=None) -> list[str]:
    """Names of datasets in the local cache that have at least one complete split."""
    base = default_root(root) / "datasets"
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if not d.name.startswith(".") and
                  any(cache_mod.split_complete(d, s) for s in fmt.SPLITS))


def ensure_dataset(name: str, splits=fmt.SPLITS, root=None, download: bool = True) -> Path:
    """Make sure the given splits of ``name`` are in the local cache; returns the dataset folder.

    Downloads (and verifies) missing splits of published datasets when ``download`` is True.
    Raises ``FileNotFoundError`` with the command to run otherwise.
    """
    d = dataset_dir(name, root)
    missing = [s for s in splits if cache_mod.split_complete(d, s) is None]
    if not missing:
        return d
    if not (d / fmt.MANIFEST).is_file():
        registry.parse_dataset_name(name)  # unknown names: error listing close matches
    if download and name in registry.HUB_DATASETS:
        from dcsbench.data.hub import download as hub_download

        hub_download(name, splits=missing, root=root)
        return d
    hint = (f"download it with `dcsbench download {name}`" if name in registry.HUB_DATASETS
            else f"build it with `dcsbench build {name}`")
    raise FileNotFoundError(f"dataset {name!r} (split(s) {', '.join(missing)}) is not in the local "
                            f"cache {d.parent}; {hint}")


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
    """``(base split, trajectory ids)`` for a split name."""
    if split in ("train", "eval"):
        return split, list(range(manifest["splits"][split]["n_trajectories"]))
    budgets = manifest["labeled_subsets"]["budgets"]
    valid = ["train", "eval", *(f"labeled-{b}" for b in budgets)]
    registry.check_choice("split", split, valid)
    return "train", list(budgets[split.split("-", 1)[1]]["ids"])


def load_dataset(name: str, split: str = "train", root=None, download: bool = True) -> DatasetSplit:
    """Open one split of dataset ``name`` (downloading and verifying it first if it is published
    and not cached yet).

    Args:
        name: e.g. ``"cheetah-run-distractors-tiny"``.
        split: ``"train"``, ``"eval"`` or ``"labeled-{B}"`` (B among the dataset's budgets).
        root: cache root (default ``$DCSBENCH_HOME`` or ``~/.cache/dcsbench``).
        download: allow downloading from the Hub.

    Returns:
        A :class:`DatasetSplit` with numpy access to frames/actions/rewards/states.
    """
    base = "eval" if split == "eval" else "train"
    d = ensure_dataset(name, splits=(base,), root=root, download=download)
    manifest = fmt.load_manifest(d / fmt.MANIFEST)
    base, ids = _parse_split(split, manifest)
    return DatasetSplit(name, split, manifest, cache_mod.read_split_arrays(d, base), base, ids)


@dataclass(frozen=True)
class ProtocolData:
    """Everything the protocol runner needs for one (dataset, budget).

    Attributes:
        unlabeled: frames of all train trajectories (given to the agent).
        labeled: frames + actions of the budget's labeled trajectories (given to the agent).
        eval_split: frames + actions of the eval trajectories (novel backgrounds): harness only
            (``None`` for an imported dataset without an eval file).
        spec: the task's :class:`~dcsbench.agent.EnvSpec` (given to the agent).
        info: identity for the result record: name, task, setting, tier, source, revision,
            content_hash, labeled_subset_hash, budget, protocol_compliant.
    """

    unlabeled: UnlabeledView
    labeled: LabeledView
    eval_split: EvalSplit | None
    spec: EnvSpec
    info: dict


def prepare(name: str, budget: int, root=None, download: bool = True) -> ProtocolData:
    """Open dataset ``name`` for a protocol run with label budget ``budget``.

    The views are built straight from the memory-mapped cache: the unlabeled view gets the
    train frames file only, the labeled view additionally a copy of its B trajectories' actions;
    rewards, states and the eval split are never opened for them.
    """
    d = ensure_dataset(name, splits=("train",), root=root, download=download)
    m = fmt.load_manifest(d / fmt.MANIFEST)
    if "eval" in m["splits"]:
        ensure_dataset(name, splits=("eval",), root=root, download=download)
    budgets = m["labeled_subsets"]["budgets"]
    registry.check_choice("budget", str(int(budget)), budgets)
    ids = [int(i) for i in budgets[str(int(budget))]["ids"]]

    train = m["splits"]["train"]
    lengths = np.asarray(train["lengths"], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    frames = cache_mod.read_split_arrays(d, "train", names=("frames",))["frames"]
    unlabeled = UnlabeledView(frames, starts, lengths)
    all_actions = cache_mod.read_split_arrays(d, "train", names=("actions",))["actions"]
    lab_actions = np.concatenate([all_actions[starts[i]:starts[i] + lengths[i]] for i in ids])
    del all_actions
    labeled = LabeledView(frames, starts[ids], lengths[ids], lab_actions, ids)

    eval_split = None
    if "eval" in m["splits"]:
        ev = m["splits"]["eval"]
        ev_arr = cache_mod.read_split_arrays(d, "eval", names=("frames", "actions"))
        ev_lengths = np.asarray(ev["lengths"], dtype=np.int64)
        eval_split = EvalSplit(ev_arr["frames"], np.concatenate([[0], np.cumsum(ev_lengths)[:-1]]),
                               ev_lengths, ev_arr["actions"], seeds=ev["seeds"])

    fs = registry.FRAME_STACK
    h, w, c = m["frame_shape"]
    spec = EnvSpec(task=m["task"], setting=m["setting"], obs_shape=(h, w, c * fs),
                   frame_shape=(h, w, c), frame_stack=fs, action_dim=int(m["action_dim"]),
                   episode_length=int(train["trajectory_length"]))
    origin = read_origin(name, root)
    info = {"name": name, "task": m["task"], "setting": m["setting"], "tier": m["tier"],
            "source": m["source"], "revision": origin.get("revision") or origin.get("kind", "local"),
            "content_hash": m["content_hash"],
            "labeled_subset_hash": budgets[str(int(budget))]["sha256"], "budget": int(budget),
            "protocol_compliant": bool(m["protocol_compliant"])}
    return ProtocolData(unlabeled, labeled, eval_split, spec, info)
