"""Turn run records (``dcsbench run`` / ``sweep`` outputs) into submission folders.

``import_runs(["runs/"], "submissions")`` groups records by ``method.name`` and copies each into
``submissions/<method>/results/<dataset>__<source>__b<B>__s<S>.json`` (the record is re-validated
and re-serialized, not copied byte for byte). For the reference baselines (``bc``, ``idm``,
``lapo``, ``laom``, ``laom-sup``) a missing ``metadata.yaml`` is written from
``leaderboard/templates/reference_methods.yaml``; other methods must write their own (see
``submissions/README.md``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dcsbench.fileio import atomic_write_text
from dcsbench.naming import record_name
from dcsbench.results import ResultRecord, record_json, save_record
from dcsbench.submissions import SUBMISSION_NAME, Metadata

REFERENCE_METHODS_FILE = Path(__file__).parent / "templates" / "reference_methods.yaml"


@dataclass
class ImportSummary:
    """What :func:`import_runs` did: files written, skipped (identical or existing), metadata."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    conflicts: list[Path] = field(default_factory=list)
    metadata_written: list[Path] = field(default_factory=list)
    metadata_missing: list[Path] = field(default_factory=list)


def reference_metadata() -> dict[str, dict]:
    """The metadata mappings of the reference baselines, by method name (validated)."""
    data = yaml.safe_load(REFERENCE_METHODS_FILE.read_text(encoding="utf-8"))
    for name, meta in data.items():
        Metadata.model_validate(meta)
        assert meta["method"] == name
    return data


def result_file_name(rec: ResultRecord) -> str:
    """Canonical file name of a record inside ``results/`` (:func:`dcsbench.naming.record_name`
    without the method, which the submission folder names)."""
    return record_name(None, rec.dataset.name, rec.source, rec.budget, rec.seed)


def import_runs(paths, submissions: str | os.PathLike = "submissions", overwrite: bool = False,
                only_methods: list[str] | None = None) -> ImportSummary:
    """Copy run records into submission folders (see module docstring).

    Args:
        paths: record files or folders (every ``*.json`` below a folder).
        submissions: the submissions root.
        overwrite: replace an existing, different record of the same run (default: report it
            as a conflict and keep the existing file).
        only_methods: import only these method names.
    """
    from dcsbench.scoring import load_records

    root = Path(submissions)
    refs = reference_metadata()
    out = ImportSummary()
    for _, rec in load_records(paths):
        method = rec.method.name
        if only_methods and method not in only_methods:
            continue
        if not SUBMISSION_NAME.fullmatch(method):
            raise ValueError(f"method name {method!r} cannot be a submission folder name "
                             f"({SUBMISSION_NAME.pattern})")
        folder = root / method
        dest = folder / "results" / result_file_name(rec)
        text = record_json(rec)
        if dest.exists():
            if dest.read_text(encoding="utf-8") == text:
                out.unchanged.append(dest)
                continue
            if not overwrite:
                out.conflicts.append(dest)
                continue
        save_record(rec, dest)
        out.written.append(dest)
        meta = folder / "metadata.yaml"
        if not meta.exists() and meta not in out.metadata_written + out.metadata_missing:
            if method in refs:
                atomic_write_text(meta, yaml.safe_dump(refs[method], sort_keys=False, allow_unicode=True))
                out.metadata_written.append(meta)
            else:
                out.metadata_missing.append(meta)
    return out
