"""Normalization references: where a dataset's reference return comes from, and whether it counts.

Normalized score = mean return / reference return. The reference is BC trained on the *full*
train set with every action revealed, evaluated under the same protocol. Lookup order of
:func:`get_reference`:

1. a reference measured by ``dcsbench reference DATASET`` for exactly this dataset and
   background source (``dcsbench/registry_data/references.json``, with provenance;
   ``$DCSBENCH_REFERENCES`` points at another file);
2. a measured reference of the ``full`` tier of the same task, setting and source;
3. the paper's Table 3 values (:data:`dcsbench.catalogue.REFERENCES`, DAVIS source only).

Validity: a measured reference counts only when BC reached at least
:data:`MIN_REFERENCE_FRACTION` (50%) of the demonstrators' mean return on its dataset (the
manifest's train return statistics, stored with the entry as ``demonstrator_mean_return``).
A weaker one is stored and loaded as *invalid* (with its fraction) and is skipped by the
lookup. The paper's Table 3 references are valid (BC recovers 69-101% of the paper's experts).

A missing reference is an error (:class:`MissingReferenceError`, which names the command that
measures it; :class:`InvalidReferenceError` when only an invalid one is known). This module is
the one place reference data is read; :mod:`dcsbench.scoring` applies it to records.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcsbench import catalogue
from dcsbench.fileio import atomic_write_text
from dcsbench.results import ResultRecord

#: Measured references shipped with the package (written by ``dcsbench reference``).
REFERENCES_FILE = Path(__file__).parent / "registry_data" / "references.json"

#: Environment variable overriding :data:`REFERENCES_FILE` (tests, private references).
REFERENCES_ENV = "DCSBENCH_REFERENCES"

#: A measured reference counts when BC reached at least this fraction of the demonstrators'
#: mean return on its dataset (issue 20; the paper's BC references reach 69-101%).
MIN_REFERENCE_FRACTION = 0.5


class MissingReferenceError(ValueError):
    """No reference return is known for a (dataset, task, setting, source)."""


class InvalidReferenceError(MissingReferenceError):
    """Only an invalid reference (below :data:`MIN_REFERENCE_FRACTION` of the demonstrators'
    return) is known; ``reference`` is that :class:`MeasuredReference`."""

    def __init__(self, message: str, reference: "MeasuredReference") -> None:
        super().__init__(message)
        self.reference = reference




@dataclass(frozen=True)
class MeasuredReference:
    """A reference return measured by ``dcsbench reference`` (one entry of references.json).

    Attributes:
        dataset: dataset name the reference was measured on, e.g. ``cheetah-run-distractors-tiny``.
        task, setting, tier, source: the dataset's identity.
        ret: mean primary return of BC trained on every train trajectory with all actions.
        provenance: the rest of the entry (record file hash, date, dcsbench commit, budget,
            method/preset, dataset content hash, per-episode returns, ...).
        demonstrator_return: the demonstrators' mean train return on the dataset (``None``
            when the entry does not say: such a hand-written entry is taken as valid).
        fraction: ``ret / demonstrator_return`` (``None`` when unknown).
        valid: ``fraction >= MIN_REFERENCE_FRACTION`` (recomputed on load, never read from
            the file).
    """

    dataset: str
    task: str
    setting: str
    tier: str
    source: str
    ret: float
    provenance: dict[str, Any]
    demonstrator_return: float | None = None
    fraction: float | None = None
    valid: bool = True

    def describe(self) -> str:
        """One line: the reference, its fraction of the demonstrators' return and validity."""
        if self.fraction is None:
            why = "demonstrators' return unknown" if self.valid else \
                "invalid: no positive return to normalize by"
            return f"{self.dataset} ({self.source}): {self.ret:.1f} ({why})"
        return (f"{self.dataset} ({self.source}): {self.ret:.1f} = {self.fraction:.1%} of the "
                f"demonstrators' {self.demonstrator_return:.1f}"
                + ("" if self.valid else f", below {MIN_REFERENCE_FRACTION:.0%}: invalid"))


def reference_validity(ret: float, demonstrator_return: float | None) -> tuple[float | None, bool]:
    """``(fraction, valid)`` of a reference return against the demonstrators' mean return.

    Valid: a positive return of at least :data:`MIN_REFERENCE_FRACTION` of a positive
    demonstrators' return. Unknown demonstrators' return (``None``: hand-written entries):
    valid when positive, fraction ``None``. A non-positive demonstrators' return (e.g. a
    random-policy build) gives nothing to normalize by: invalid, fraction ``None``.
    """
    ret = float(ret)
    if not (math.isfinite(ret) and ret > 0):
        return None, False
    if demonstrator_return is None:
        return None, True
    demo = float(demonstrator_return)
    if not (math.isfinite(demo) and demo > 0):
        return None, False
    frac = ret / demo
    return frac, frac >= MIN_REFERENCE_FRACTION


def references_path() -> Path:
    """The references file in use: ``$DCSBENCH_REFERENCES`` if set, else the packaged one."""
    env = os.environ.get(REFERENCES_ENV)
    return Path(env) if env else REFERENCES_FILE


def _ref_key(dataset: str, source: str) -> str:
    return f"{dataset}/{source}"


def load_measured_references(path: str | os.PathLike | None = None) -> dict[str, MeasuredReference]:
    """Read measured references, keyed ``"{dataset}/{source}"`` (empty if the file is absent)."""
    path = Path(path) if path is not None else references_path()
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != 1 or not isinstance(data.get("references"), dict):
        raise ValueError(f"{path}: not a dcsbench references file (expected format 1)")
    out = {}
    for key, e in data["references"].items():
        try:
            ret = float(e["return"])
            demo = e.get("demonstrator_mean_return")
            demo = None if demo is None else float(demo)
            frac, valid = reference_validity(ret, demo)
            ref = MeasuredReference(dataset=e["dataset"], task=e["task"], setting=e["setting"],
                                    tier=e["tier"], source=e["source"], ret=ret,
                                    provenance={k: v for k, v in e.items() if k != "return"},
                                    demonstrator_return=demo if frac is not None else None,
                                    fraction=frac, valid=valid)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: malformed reference {key!r} ({err!r})") from None
        if not (math.isfinite(ret) and ret >= 0):
            raise ValueError(f"{path}: reference {key!r} has a negative or non-finite return {ret}")
        out[key] = ref
    return out


def store_reference(entry: dict[str, Any], path: str | os.PathLike | None = None) -> Path:
    """Add or replace one measured reference (atomically) and return the file written.

    ``entry`` needs ``dataset, task, setting, tier, source, return`` plus provenance fields;
    with ``demonstrator_mean_return`` the entry is also given ``demonstrator_fraction`` and
    ``valid`` (informational: :func:`load_measured_references` recomputes them). An invalid
    reference is stored too: it documents the measurement, and the lookup skips it.
    """
    for k in ("dataset", "task", "setting", "tier", "source", "return"):
        if k not in entry:
            raise ValueError(f"reference entry lacks {k!r}")
    ret = float(entry["return"])
    if not (math.isfinite(ret) and ret >= 0):
        raise ValueError(f"reference return of {entry['dataset']} must be a finite number >= 0, "
                         f"got {ret}")
    entry = dict(entry)
    frac, valid = reference_validity(ret, entry.get("demonstrator_mean_return"))
    if entry.get("demonstrator_mean_return") is not None or not valid:
        entry["demonstrator_fraction"], entry["valid"] = frac, valid
    path = Path(path) if path is not None else references_path()
    data = {"format": 1, "references": {}}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    data["references"][_ref_key(entry["dataset"], entry["source"])] = entry
    data["references"] = dict(sorted(data["references"].items()))
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def get_reference(task: str, setting: str, source: str, dataset: str | None = None,
                  references: dict[str, MeasuredReference] | None = None) -> catalogue.Reference:
    """The reference return for a run (lookup order in the module docstring); invalid
    measured references are skipped.

    Raises:
        InvalidReferenceError: only an invalid reference is known (it is attached).
        MissingReferenceError: naming the dataset and the command that measures it.
    """
    catalogue.check_choice("task", task, catalogue.TASKS)
    catalogue.check_choice("setting", setting, catalogue.SETTINGS)
    catalogue.check_choice("source", source, catalogue.SOURCES)
    refs = load_measured_references() if references is None else references
    candidates = [dataset] if dataset else []
    candidates.append(f"{task}-{setting}-full")
    invalid = None
    for name in candidates:
        m = refs.get(_ref_key(name, source))
        if m is not None and not m.valid:
            invalid = invalid or m
            continue
        if m is not None:
            return catalogue.Reference(m.ret, f"measured by dcsbench on {m.dataset} ({m.source})",
                                      {**m.provenance, "valid": True, "fraction": m.fraction})
    paper = catalogue.REFERENCES.get((task, setting, source))
    if paper is not None:
        return paper
    if invalid is not None:
        raise InvalidReferenceError(
            f"the reference of {invalid.describe()} (BC on every train trajectory reached less "
            f"than {MIN_REFERENCE_FRACTION:.0%} of the demonstrators): scores on it are not "
            f"normalized; measure a stronger one with `dcsbench reference {invalid.dataset}` "
            f"(e.g. more bc.updates, a larger preset)", invalid)
    want = dataset or f"{task}-{setting}-full"
    raise MissingReferenceError(
        f"no reference return for dataset {want!r} (task={task}, setting={setting}, "
        f"source={source}); measure it with `dcsbench reference {want}` "
        f"(known: {', '.join(sorted(refs)) or 'none measured'}; paper values exist for source=davis)")


def normalized_score(ret: float, task: str, setting: str, source: str,
                     dataset: str | None = None) -> float:
    """``ret / reference`` for the run's dataset (see :func:`get_reference`)."""
    return float(ret) / get_reference(task, setting, source, dataset).ret


def reference_entry(record: ResultRecord, record_path: str | os.PathLike,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A references.json entry (with provenance) from the record of a full-label BC run."""
    import hashlib

    data = Path(record_path).read_bytes()
    entry = {
        "dataset": record.dataset.name, "task": record.task, "setting": record.setting,
        "tier": record.tier, "source": record.source, "return": record.primary.mean_return,
        "returns": list(record.primary.returns),
        "generalization_return": (record.generalization.mean_return
                                  if record.generalization is not None else None),
        "method": record.method.name, "method_version": record.method.version,
        "budget": "all", "seed": record.seed, "protocol_compliant": record.protocol_compliant,
        "n_episodes": len(record.primary.returns),
        "dataset_revision": record.dataset.revision,
        "dataset_content_hash": record.dataset.content_hash,
        "record_file": Path(record_path).name, "record_sha256": hashlib.sha256(data).hexdigest(),
        "dcsbench_version": record.dcsbench_version, "dcsbench_commit": record.git_commit,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "protocol_version": record.protocol_version,
    }
    entry.update(extra or {})
    return entry
