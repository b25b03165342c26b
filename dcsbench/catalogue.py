"""The dcsbench catalogue: tasks, settings, tiers, budgets, seeds and dataset names.

This module is *data*, not code paths. Everything that can move a score lives here (or in
``PROTOCOL.md``) and is covered by :data:`PROTOCOL_VERSION`: change a value that can move a
score and you must bump the version.

Dataset names follow ``{task}-{setting}-{tier}`` (optionally with a ``-v{N}`` suffix), e.g.
``cheetah-run-distractors-tiny``. The hub location, pinned revision and manifest hash of each
published dataset are in :data:`HUB_DATASETS` (filled in when a dataset is published).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

#: Version of the evaluation protocol (docs/PROTOCOL.md). Every result record carries it.
PROTOCOL_VERSION = 1

#: The four dm_control tasks, in order of difficulty: name -> (domain, task).
TASKS: dict[str, tuple[str, str]] = {
    "cheetah-run": ("cheetah", "run"),
    "walker-run": ("walker", "run"),
    "hopper-hop": ("hopper", "hop"),
    "humanoid-walk": ("humanoid", "walk"),
}

#: ``clean`` = plain DeepMind Control rendering; ``distractors`` = all three DCS distractors, dynamic.
SETTINGS: tuple[str, ...] = ("clean", "distractors")

#: Background video sources. ``procedural`` is embedded and the default; ``davis`` reads a user folder.
SOURCES: tuple[str, ...] = ("procedural", "davis")

#: Background pools: ``train`` for data collection and the primary score, ``novel`` for the eval
#: split and the generalization score. The two pools are disjoint.
POOLS: tuple[str, ...] = ("train", "novel")

#: Control steps per episode, for data and evaluation alike.
EPISODE_LENGTH = 1000

#: Frames stacked (channel-concatenated, oldest first) into one agent observation.
FRAME_STACK = 3

#: Rendered frame size (height = width), RGB uint8.
IMAGE_SIZE = 64

#: All label budgets (number of labeled trajectories). Subsets are nested.
BUDGETS: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128)

#: Online-evaluation episodes per run (PROTOCOL.md section 4).
EVAL_EPISODES = 25

#: Seeds of the online-evaluation episodes: episode i uses ``EVAL_EPISODE_SEEDS[i]``. They are
#: disjoint from every dataset seed range below, and the same for every method.
EVAL_EPISODE_SEEDS: tuple[int, ...] = tuple(2_000_000 + i for i in range(EVAL_EPISODES))

#: First episode seed of each dataset split; trajectory i of a split is collected with seed base+i.
SPLIT_SEED_BASE: dict[str, int] = {"train": 0, "eval": 1_000_000}

#: Seed of the permutation of train-trajectory ids whose first B entries form ``labeled-{B}``.
LABELED_PERMUTATION_SEED = 20240601

#: Official seeds per (method, dataset, budget) cell.
OFFICIAL_SEEDS: tuple[int, ...] = (0, 1, 2)


@dataclass(frozen=True)
class TierSpec:
    """Size of one dataset tier.

    Attributes:
        n_train: number of ``train`` trajectories (each :data:`EPISODE_LENGTH` steps).
        n_eval: number of ``eval`` trajectories (novel backgrounds).
        budgets: label budgets offered by the tier (a prefix of :data:`BUDGETS`).
        note: why the tier has this size.
    """

    n_train: int
    n_eval: int
    budgets: tuple[int, ...]
    note: str = ""


#: Tier sizes. ``full`` is the paper's scale. ``tiny`` is sized so that one task can be built,
#: trained and evaluated on a 2-core CPU in minutes (quickstart and CI); it keeps 5 eval
#: trajectories instead of 50 (documented deviation, tiny is a smoke-test tier).
TIERS: dict[str, TierSpec] = {
    "tiny": TierSpec(n_train=16, n_eval=5, budgets=(2, 4, 8),
                     note="quickstart/CI tier: builds and trains on a 2-core CPU in minutes"),
    "small": TierSpec(n_train=500, n_eval=50, budgets=BUDGETS,
                      note="~10% of the paper's scale; one GPU-hour per run"),
    "full": TierSpec(n_train=5000, n_eval=50, budgets=BUDGETS, note="the paper's scale"),
}


@dataclass(frozen=True)
class DatasetName:
    """A parsed dataset name ``{task}-{setting}-{tier}[-v{version}]``."""

    task: str
    setting: str
    tier: str
    version: int = PROTOCOL_VERSION

    def __str__(self) -> str:
        return f"{self.task}-{self.setting}-{self.tier}"

    @property
    def tier_spec(self) -> TierSpec:
        """The :class:`TierSpec` of this dataset's tier."""
        return TIERS[self.tier]


class UnknownNameError(ValueError):
    """Raised for an unknown task/setting/tier/dataset name; the message lists valid names."""


def _unknown(kind: str, name: str, valid) -> UnknownNameError:
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}")


def check_choice(kind: str, name: str, valid) -> str:
    """Return ``name`` if it is in ``valid``, else raise :class:`UnknownNameError` listing them."""
    if name not in valid:
        raise _unknown(kind, name, valid)
    return name


def all_dataset_names() -> list[str]:
    """Every dataset name the catalogue knows, e.g. ``cheetah-run-distractors-tiny``."""
    return [f"{t}-{s}-{tier}" for t in TASKS for s in SETTINGS for tier in TIERS]


def parse_dataset_name(name: str) -> DatasetName:
    """Parse ``{task}-{setting}-{tier}[-v{N}]``; unknown names raise with close matches.

    >>> parse_dataset_name("cheetah-run-distractors-tiny").task
    'cheetah-run'
    """
    base, version = name, PROTOCOL_VERSION
    head, _, tail = name.rpartition("-v")
    if head and tail.isdigit():
        base, version = head, int(tail)
    for task in TASKS:
        if base.startswith(task + "-"):
            rest = base[len(task) + 1:]
            setting, _, tier = rest.partition("-")
            if setting in SETTINGS and tier in TIERS:
                if version != PROTOCOL_VERSION:
                    raise UnknownNameError(
                        f"dataset {name!r} is version {version}; this dcsbench speaks protocol "
                        f"version {PROTOCOL_VERSION} (use {base!r})")
                return DatasetName(task, setting, tier, version)
    raise _unknown("dataset", name, all_dataset_names())


@dataclass(frozen=True)
class HubDataset:
    """Where a published dataset lives and how to verify it.

    Attributes:
        repo_id: Hugging Face Hub dataset repo, e.g. ``dcsbench/cheetah-run-distractors-full``.
        revision: pinned commit sha (never a branch) so everyone gets the same bytes.
        manifest_sha256: sha256 of the dataset's ``manifest.json``.
    """

    repo_id: str
    revision: str
    manifest_sha256: str


#: Published datasets: name -> hub location. Empty until datasets are published; local builds
#: (``dcsbench build NAME``) need no entry.
HUB_DATASETS: dict[str, HubDataset] = {}


@dataclass(frozen=True)
class Reference:
    """A normalization reference: the return of BC trained on the *full* labeled train set.

    Attributes:
        ret: reference return (undiscounted, 1000-step episode).
        provenance: where the number comes from (paper table, or a dcsbench measurement record).
    """

    ret: float
    provenance: str
    extra: dict = field(default_factory=dict)


#: Reference returns, keyed by ``(task, setting, source)``. The paper's Table 3 values apply to the
#: paper's DAVIS datasets only; dcsbench's own (procedural) datasets get references measured by
#: ``dcsbench reference``.
REFERENCES: dict[tuple[str, str, str], Reference] = {
    ("cheetah-run", "distractors", "davis"): Reference(823.0, "LAOM paper, Table 3 (BC on full data)"),
    ("walker-run", "distractors", "davis"): Reference(749.0, "LAOM paper, Table 3 (BC on full data)"),
    ("hopper-hop", "distractors", "davis"): Reference(253.0, "LAOM paper, Table 3 (BC on full data)"),
    ("humanoid-walk", "distractors", "davis"): Reference(428.0, "LAOM paper, Table 3 (BC on full data)"),
    ("cheetah-run", "clean", "davis"): Reference(840.0, "LAOM paper, Table 3 (BC on full data)"),
    ("walker-run", "clean", "davis"): Reference(735.0, "LAOM paper, Table 3 (BC on full data)"),
    ("hopper-hop", "clean", "davis"): Reference(300.0, "LAOM paper, Table 3 (BC on full data)"),
    ("humanoid-walk", "clean", "davis"): Reference(601.0, "LAOM paper, Table 3 (BC on full data)"),
}

#: Expert returns reported by the paper (for comparison with dcsbench's own experts).
PAPER_EXPERT_RETURNS: dict[str, float] = {
    "cheetah-run": 837.7, "walker-run": 739.8, "hopper-hop": 306.6, "humanoid-walk": 617.2,
}
