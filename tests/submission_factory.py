"""Synthetic submissions for the submission and leaderboard tests (records built with pydantic).

Every record cites a fake but *known* dataset build (see :func:`make_known`); its returns give
the wanted normalized score under the references written by :func:`write_references`
(reference return ``REF_RETURN[task]``). Records are version 2 (facts only: no stored
normalized score, v2 offline-metric names) unless ``version=1`` is asked for, which writes the
old layout (no ``record_version``/``episode_length``, a stored ``normalized_score``, v1
offline-metric names).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import yaml

from dcsbench import catalogue, scoring
from dcsbench.data.known import KnownBuild, KnownDatasets
from dcsbench.results import RECORD_VERSION, ResultRecord, save_record

TIER = "tiny"
SETTING = "distractors"
SOURCE = "procedural"
REVISION = "build-test-1"
REF_RETURN = {"cheetah-run": 600.0, "walker-run": 500.0, "hopper-hop": 200.0, "humanoid-walk": 300.0}


def sha(text: str) -> str:
    """sha256 hex of a string (fake hashes that look real)."""
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(task: str) -> str:
    return sha(f"content/{task}")


def subset_hash(task: str, budget: int) -> str:
    return sha(f"labeled/{task}/{budget}")


def dataset_name(task: str) -> str:
    return f"{task}-{SETTING}-{TIER}"


def make_known() -> KnownDatasets:
    """A lookup that knows one build of every task's tiny distractors dataset."""
    known = KnownDatasets()
    for task in catalogue.TASKS:
        known.add(KnownBuild(name=dataset_name(task), revision=REVISION, source=SOURCE,
                             content_hash=content_hash(task),
                             labeled_subset_hashes={b: subset_hash(task, b)
                                                    for b in catalogue.TIERS[TIER].budgets}))
    return known


def write_references(path: Path) -> Path:
    """A references.json with :data:`REF_RETURN` for every tiny distractors dataset."""
    for task, ret in REF_RETURN.items():
        scoring.store_reference({"dataset": dataset_name(task), "task": task, "setting": SETTING,
                                 "tier": TIER, "source": SOURCE, "return": ret,
                                 "date": "2026-01-01"}, path)
    return path


def make_record(method: str, task: str, budget: int, seed: int, score: float,
                gen_drop: float = 0.8, rng: np.random.Generator | None = None,
                version: int = RECORD_VERSION) -> ResultRecord:
    """A protocol-compliant record whose mean primary normalized score is about ``score``
    (record layout ``version``: 2, or the old 1)."""
    rng = rng or np.random.default_rng(zlib.crc32(f"{method}/{task}/{budget}/{seed}".encode()))
    ref = REF_RETURN[task]
    seeds = list(catalogue.EVAL_EPISODE_SEEDS)

    def ev(bg: str, target: float) -> dict:
        rets = [float(x) for x in np.clip(np.round(target * ref + rng.normal(0, 0.05 * ref, len(seeds)), 3),
                                          0, catalogue.EPISODE_LENGTH)]
        mean = sum(rets) / len(rets)
        out = {"backgrounds": bg, "episode_seeds": seeds, "returns": rets, "mean_return": mean}
        return {**out, "normalized_score": mean / ref} if version == 1 else out

    probe = round(0.5 / (1 + budget) + 0.01 * seed, 6)
    if version == 1:
        versioned = {"offline_metrics": {"probe_mse_eval": probe, "action_var_eval": 0.5}}
    else:
        versioned = {"record_version": version, "episode_length": catalogue.EPISODE_LENGTH,
                     "offline_metrics": {"probe_mse_novel": probe, "action_var_novel": 0.5,
                                         "probe_mse_train": probe / 2, "action_var_train": 0.4,
                                         "probe_mse_train_random": 0.45, "probe_alpha": 0.01, "latent_dim": 8.0,
                                         "probe_fit_n": 512.0, "probe_novel_test_n": 256.0}}
    return ResultRecord.model_validate({
        **versioned,
        "protocol_version": catalogue.PROTOCOL_VERSION, "dcsbench_version": "0.1.0",
        "git_commit": "0" * 40,
        "method": {"name": method, "version": "1", "config": {"lr": 3e-4}, "num_parameters": 1234},
        "task": task, "setting": SETTING, "tier": TIER, "source": SOURCE,
        "budget": budget, "seed": seed,
        "dataset": {"name": dataset_name(task), "revision": REVISION,
                    "content_hash": content_hash(task), "labeled_subset_hash": subset_hash(task, budget)},
        "primary": ev("train", score), "generalization": ev("novel", score * gen_drop),
        "stage_seconds": {"fit": 1.0, "eval": 2.0}, "hardware": {"cpu": "test"},
        "timestamp": "2026-01-01T00:00:00+00:00",
    })


def metadata(method: str, **overrides) -> dict:
    """A valid metadata.yaml mapping."""
    data = {"method": method, "display_name": method.upper(), "version": "1",
            "authors": ["Ada Lovelace", "Alan Turing"],
            "paper_url": "https://arxiv.org/abs/2502.00379",
            "code_url": "https://github.com/example/method",
            "description": f"{method}: a synthetic method for tests.",
            "labels_used": "actions of the labeled-B trajectories only",
            "compute": "2-core CPU, seconds", "reference": False}
    data.update(overrides)
    return data


def write_submission(root: Path, method: str, quality: float = 0.5,
                     tasks=tuple(catalogue.TASKS), budgets=None, seeds=catalogue.OFFICIAL_SEEDS,
                     meta: dict | None = None, version: int = RECORD_VERSION) -> Path:
    """Write ``root/method`` with metadata and one record (layout ``version``) per
    (task, budget, seed).

    The score grows with log2(budget) up to ``quality``, so methods are distinguishable.
    """
    budgets = budgets or catalogue.TIERS[TIER].budgets
    folder = root / method
    (folder / "results").mkdir(parents=True, exist_ok=True)
    (folder / "metadata.yaml").write_text(yaml.safe_dump(meta or metadata(method), sort_keys=False),
                                          encoding="utf-8")
    for task in tasks:
        for b in budgets:
            for s in seeds:
                score = quality * (0.4 + 0.2 * np.log2(b)) + 0.03 * s
                rec = make_record(method, task, b, s, score, version=version)
                path = folder / "results" / f"{dataset_name(task)}_b{b}_s{s}.json"
                if version == 1:  # as old records were written: no record_version/episode_length
                    data = rec.model_dump(mode="json", exclude={"record_version", "episode_length"})
                    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
                else:
                    save_record(rec, path)
    return folder


def edit_record(path: Path, fn) -> None:
    """Load a record file as JSON, apply ``fn(dict)`` and write it back (for tampering tests)."""
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
