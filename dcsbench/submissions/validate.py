"""Validating a submission folder: every record checked (schema, pins, rules, scores recomputed
from raw returns), coverage of tasks x budgets x seeds, and a readable report."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dcsbench import catalogue
from dcsbench.results import MAX_RECORD_BYTES, RecordError, ResultRecord, parse_record
from dcsbench.submissions.metadata import Metadata, _pydantic_problems
from dcsbench.submissions.safe_io import (ALLOWED_TOP_LEVEL, MAX_METADATA_BYTES, MAX_README_BYTES,
                                          MAX_RESULT_FILES, RESULT_FILE_NAME, SUBMISSION_NAME,
                                          Problem, SubmissionFileError, check_name, load_json,
                                          load_yaml, printable, read_text_file)

#: A version-1 record's stored normalized score (ignored) is reported when it differs from the
#: recomputed one by more than this tolerance.
SCORE_RTOL = 1e-6
SCORE_ATOL = 1e-6

# --------------------------------------------------------------------------------------------
# Submission validation
# --------------------------------------------------------------------------------------------

@dataclass
class Submission:
    """A validated (or rejected) submission folder.

    Attributes:
        name: folder name.
        path: folder path.
        metadata: parsed metadata, or None if it was invalid.
        records: ``(file name, record)`` of every record without errors.
        problems: every error and warning found.
        coverage: (property) :class:`Coverage` per track ``(setting, tier, source)`` of the
            records without errors.
    """

    name: str
    path: Path
    metadata: Metadata | None = None
    records: list[tuple[str, ResultRecord]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that block the leaderboard."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems worth reading that do not block the leaderboard."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    def error(self, path: Any, fld: str, message: str) -> None:
        """Record an error."""
        self.problems.append(Problem("error", printable(path), printable(fld), printable(message)))

    def warn(self, path: Any, fld: str, message: str) -> None:
        """Record a warning."""
        self.problems.append(Problem("warning", printable(path), printable(fld), printable(message)))

    @property
    def coverage(self) -> dict[tuple[str, str, str], "Coverage"]:
        """Coverage per track ``(setting, tier, source)``."""
        return coverage_of([r for _, r in self.records])


@dataclass
class Coverage:
    """Which (task, budget, seed) cells of one track are present.

    Expected cells: every task x every budget of the tier x every official seed.
    """

    setting: str
    tier: str
    source: str
    present: set[tuple[str, int, int]] = field(default_factory=set)

    @property
    def expected(self) -> set[tuple[str, int, int]]:
        """All cells a complete submission has on this track."""
        return {(t, b, s) for t in catalogue.TASKS for b in catalogue.TIERS[self.tier].budgets
                for s in catalogue.OFFICIAL_SEEDS}

    @property
    def missing(self) -> set[tuple[str, int, int]]:
        """Expected cells without a record."""
        return self.expected - self.present

    @property
    def complete(self) -> bool:
        """True when every expected cell has a record."""
        return not self.missing

    @property
    def fraction(self) -> float:
        """Present / expected cells (only official cells count)."""
        return len(self.present & self.expected) / len(self.expected)

    def table(self) -> str:
        """A text table: tasks as rows, budgets as columns, seeds present like ``012`` or ``0.2``."""
        budgets = catalogue.TIERS[self.tier].budgets
        width = max(len(catalogue.OFFICIAL_SEEDS), 3)
        lines = [f"{'task':<15}" + "".join(f"  B={b:<{width}}" for b in budgets)]
        for t in catalogue.TASKS:
            cells = []
            for b in budgets:
                marks = "".join(str(s) if (t, b, s) in self.present else "." for s in catalogue.OFFICIAL_SEEDS)
                cells.append(f"  {marks:<{width + 2}}")
            lines.append(f"{t:<15}" + "".join(cells))
        return "\n".join(lines)


def coverage_of(records: list[ResultRecord]) -> dict[tuple[str, str, str], Coverage]:
    """Group records into tracks ``(setting, tier, source)`` and list their cells."""
    out: dict[tuple[str, str, str], Coverage] = {}
    for r in records:
        key = (r.setting, r.tier, r.source)
        cov = out.setdefault(key, Coverage(*key))
        cov.present.add((r.task, r.budget, r.seed))
    return dict(sorted(out.items()))


def _recompute_score(rec: ResultRecord, references=None) -> dict[str, float] | None:
    """The record's normalized scores, computed from its raw returns by the same function as
    :func:`dcsbench.scoring.records_to_frame` (:func:`dcsbench.scoring.record_scores`): a dict
    with ``primary_score`` and ``generalization_score``, or None when no reference is known."""
    from dcsbench import scoring

    try:
        return scoring.record_scores(rec, references)
    except scoring.MissingReferenceError:
        return None


def check_record(rec: ResultRecord, origin: str, sub: Submission, known, metadata: Metadata | None,
                 check_scores: bool = True, allow_noncompliant: bool = False,
                 references=None) -> None:
    """Protocol checks of one parsed record beyond its schema; problems go into ``sub``.

    ``references`` are the measured references (:func:`dcsbench.scoring.load_measured_references`),
    read once by the caller; None reads them here.

    ``allow_noncompliant`` turns the checks that only concern protocol *size* (the record's
    ``protocol_compliant`` flag, fewer evaluation episodes than the protocol's, a dataset build
    marked non-protocol) into warnings, for preview boards; everything else stays an error.
    """
    size_problem = sub.warn if allow_noncompliant else sub.error
    if rec.episode_length > catalogue.EPISODE_LENGTH:
        sub.error(origin, "episode_length", f"{rec.episode_length} steps per episode, longer than "
                                            f"the protocol's {catalogue.EPISODE_LENGTH}")
    elif rec.episode_length != catalogue.EPISODE_LENGTH:
        size_problem(origin, "episode_length", f"{rec.episode_length} steps per episode, not the "
                                               f"protocol's {catalogue.EPISODE_LENGTH}")
    if rec.protocol_version != catalogue.PROTOCOL_VERSION:
        sub.error(origin, "protocol_version", f"{rec.protocol_version} is not the current protocol "
                                              f"version {catalogue.PROTOCOL_VERSION}; re-run with this dcsbench")
    if not rec.protocol_compliant:
        size_problem(origin, "protocol_compliant", "the run was not protocol-compliant (non-default "
                                                "settings); it cannot go on the leaderboard")
    if metadata is not None and rec.method.name != metadata.method:
        sub.error(origin, "method.name", f"{rec.method.name!r} differs from metadata method {metadata.method!r}")
    try:
        ds = catalogue.parse_dataset_name(rec.dataset.name)
    except catalogue.UnknownNameError as err:
        sub.error(origin, "dataset.name", str(err))
        ds = None
    if ds is not None:
        for fld, have, want in (("task", rec.task, ds.task), ("setting", rec.setting, ds.setting),
                                ("tier", rec.tier, ds.tier)):
            if have != want:
                sub.error(origin, fld, f"{have!r} does not match dataset {rec.dataset.name} ({want!r})")
        if rec.budget not in ds.tier_spec.budgets:
            sub.error(origin, "budget", f"{rec.budget} is not a budget of the {ds.tier} tier "
                                        f"({', '.join(map(str, ds.tier_spec.budgets))})")
    if rec.tier not in catalogue.TIERS:
        sub.error(origin, "tier", str(catalogue._unknown("tier", rec.tier, catalogue.TIERS)))
    if rec.seed not in catalogue.OFFICIAL_SEEDS:
        sub.error(origin, "seed", f"{rec.seed} is not an official seed "
                                  f"({', '.join(map(str, catalogue.OFFICIAL_SEEDS))})")
    want_seeds = list(catalogue.EVAL_EPISODE_SEEDS)
    scores = _recompute_score(rec, references) if check_scores else None
    if check_scores and scores is None:
        sub.error(origin, "dataset.name",
                  f"no reference return for {rec.dataset.name} ({rec.source}); the score "
                  f"cannot be normalized (measure it: dcsbench reference {rec.dataset.name})")
    for part, pool in (("primary", "train"), ("generalization", "novel")):
        res = getattr(rec, part)
        if res is None:
            sub.warn(origin, part, "no generalization (novel backgrounds) evaluation; the "
                                   "generalization score will be missing")
            continue
        if res.backgrounds != pool:
            sub.error(origin, f"{part}.backgrounds", f"{res.backgrounds!r}; the {part} score uses "
                                                     f"{pool!r} backgrounds")
        seeds = list(res.episode_seeds)
        if seeds != want_seeds:
            is_prefix = 0 < len(seeds) < len(want_seeds) and seeds == want_seeds[:len(seeds)]
            (size_problem if is_prefix else sub.error)(origin, f"{part}.episode_seeds",
                      f"{len(res.episode_seeds)} episodes with seeds that are not the protocol's "
                      f"{len(want_seeds)} evaluation seeds ({want_seeds[0]}..{want_seeds[-1]})")
        expect = None if scores is None else scores[f"{part}_score"]
        if res.normalized_score is not None and expect is not None and not math.isclose(
                res.normalized_score, expect, rel_tol=SCORE_RTOL, abs_tol=SCORE_ATOL):
            # version 1 only (version 2 rejects a stored score): the stored value is never used
            sub.warn(origin, f"{part}.normalized_score",
                     f"stored {res.normalized_score:.6g} is ignored; the raw returns give {expect:.6g} "
                     "with the current reference")
    if known is not None:
        errs, warns = known.check(rec.dataset.name, rec.dataset.revision, rec.dataset.content_hash,
                                  rec.dataset.labeled_subset_hash, rec.budget, rec.source)
        for fld, msg in errs:
            (size_problem if "non-protocol" in msg else sub.error)(origin, fld, msg)
        for fld, msg in warns:
            sub.warn(origin, fld, msg)


def validate_submission(folder: str | os.PathLike, known=None, include_local: bool = True,
                        check_scores: bool = True, allow_noncompliant: bool = False) -> Submission:
    """Validate one submission folder; never raises for bad content, returns every problem.

    Args:
        folder: ``submissions/<name>``.
        known: a :class:`dcsbench.data.known.KnownDatasets`; built with
            :func:`~dcsbench.data.known.load_known_datasets` if None.
        include_local: when ``known`` is None, also trust manifests of the local dataset cache
            (as warnings). CI uses False.
        check_scores: recompute normalized scores from raw returns (needs the references).
        allow_noncompliant: accept runs that are valid but not protocol-sized (fewer episodes,
            non-protocol dataset build, ``protocol_compliant: false``) with warnings; for
            preview boards only, never for the official leaderboard or CI.
    """
    folder = Path(folder)
    sub = Submission(name=printable(folder.name), path=folder)
    why = check_name(folder.name, SUBMISSION_NAME, "submission folder")
    if why:
        sub.error(folder, "", why)
        return sub
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        sub.error(folder, "", "no such submission folder")
        return sub
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        sub.error(folder, "", "must be a real folder (not a symbolic link or a file)")
        return sub
    if known is None:
        from dcsbench.data.known import load_known_datasets
        known = load_known_datasets(include_local=include_local)

    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        kind = ALLOWED_TOP_LEVEL.get(entry.name)
        shown = entry.name.encode("unicode_escape").decode("ascii")
        if entry.is_symlink():
            sub.error(folder / entry.name, "", "is a symbolic link (not allowed in submissions)")
        elif kind is None:
            sub.error(folder / entry.name, "", f"unexpected entry {shown!r}; a submission holds only "
                                               "metadata.yaml, README.md and results/")
        elif (kind == "dir") != entry.is_dir(follow_symlinks=False):
            sub.error(folder / entry.name, "", f"must be a {'folder' if kind == 'dir' else 'file'}")

    meta_path = folder / "metadata.yaml"
    try:
        data = load_yaml(read_text_file(meta_path, MAX_METADATA_BYTES), str(meta_path))
        if not isinstance(data, dict):
            raise SubmissionFileError(str(meta_path), "must be a YAML mapping of fields")
        sub.metadata = Metadata.model_validate(data)
    except SubmissionFileError as err:
        sub.error(err.path, err.field, err.message)
    except ValidationError as err:  # every wrong field, not only the first
        sub.problems.extend(_pydantic_problems(err, printable(meta_path)))
    if sub.metadata is not None and sub.metadata.method != folder.name:
        sub.error(meta_path, "method", f"{sub.metadata.method!r} must equal the folder name {folder.name!r}")
    if (folder / "README.md").exists() and not (folder / "README.md").is_symlink():
        try:
            read_text_file(folder / "README.md", MAX_README_BYTES)
        except SubmissionFileError as err:
            sub.error(err.path, err.field, err.message)

    results = folder / "results"
    if results.is_symlink() or not results.is_dir():
        sub.error(results, "", "missing results/ folder of *.json records")
        return sub
    entries = sorted(os.scandir(results), key=lambda e: e.name)
    if len(entries) > MAX_RESULT_FILES:
        sub.error(results, "", f"{len(entries)} entries, more than the {MAX_RESULT_FILES} allowed")
        return sub
    seen: dict[tuple, str] = {}
    references = None  # measured references, read once for all records
    for entry in entries:
        path = results / entry.name
        why = check_name(entry.name, RESULT_FILE_NAME, "result file")
        if why:
            sub.error(path, "", why)
            continue
        if entry.is_symlink():
            sub.error(path, "", "is a symbolic link (not allowed in submissions)")
            continue
        try:
            data = load_json(read_text_file(path, MAX_RECORD_BYTES), str(path))
            rec = parse_record(data, str(path))
        except SubmissionFileError as err:
            sub.error(err.path, err.field, err.message)
            continue
        except RecordError as err:
            for line in str(err).splitlines()[1:]:
                fld, _, msg = line.strip().partition(": ")
                if msg == "Field required":
                    msg = "required field is missing"
                sub.error(path, fld, msg or "invalid record")
            continue
        n_errors = len(sub.errors)
        if check_scores and references is None:
            from dcsbench.scoring import load_measured_references

            references = load_measured_references()
        check_record(rec, str(path), sub, known, sub.metadata, check_scores=check_scores,
                     allow_noncompliant=allow_noncompliant, references=references)
        key = (rec.method.name, rec.dataset.name, rec.source, rec.budget, rec.seed)
        if key in seen:
            sub.error(path, "seed", f"duplicate run: {rec.dataset.name} budget {rec.budget} seed "
                                    f"{rec.seed} is also in {seen[key]}")
            continue
        seen[key] = entry.name
        if len(sub.errors) == n_errors:  # only clean records count for coverage and aggregates
            sub.records.append((entry.name, rec))
    if not entries:
        sub.error(results, "", "no result records")
    for key, cov in sub.coverage.items():
        if not cov.complete:
            sub.warn(results, "", f"incomplete on {'/'.join(key)}: {len(cov.missing)} of "
                                  f"{len(cov.expected)} (task, budget, seed) cells missing")
    return sub


def discover(root: str | os.PathLike = "submissions") -> list[Path]:
    """Every entry of ``root`` that is meant to be a submission (folders, including bad names and
    symlinks so that validation reports them; plain files such as README.md are skipped)."""
    root = Path(root)
    out = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_symlink() or entry.is_dir(follow_symlinks=False):
            out.append(root / entry.name)
    return out


def format_report(sub: Submission, show_coverage: bool = True) -> str:
    """A human-readable report: verdict, problems, and the coverage table per track."""
    verdict = "OK" if sub.ok else f"INVALID ({len(sub.errors)} error(s))"
    lines = [f"== {sub.path}: {verdict}, {len(sub.records)} record(s), {len(sub.warnings)} warning(s)"]
    lines += [f"  {p}" for p in sub.problems]
    if show_coverage:
        for (setting, tier, source), cov in sub.coverage.items():
            lines.append(f"  coverage {setting}/{tier}/{source}: {len(cov.present & cov.expected)}"
                         f"/{len(cov.expected)} cells{'' if cov.complete else ' (incomplete)'}")
            lines += ["    " + row for row in cov.table().splitlines()]
    return "\n".join(lines)
