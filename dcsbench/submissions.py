"""Submission folders: reading them safely and validating them for the leaderboard.

A submission is *data only*::

    submissions/<method>/
        metadata.yaml        who, what, links, labels used, compute (see :class:`Metadata`)
        README.md            optional free text (never rendered as HTML)
        results/*.json       result records written by ``dcsbench run`` (dcsbench.results)

Nothing from a submission is imported or executed. YAML is read with ``yaml.safe_load`` after a
token scan that rejects tags, anchors and aliases; JSON rejects NaN/Infinity and duplicate keys;
every file is size-bounded, must be UTF-8, must be a regular file (no symlinks) and must have a
plain name (no path separators, no leading dot, no odd characters).

:func:`validate_submission` returns a :class:`Submission` with every problem found (not only the
first), each naming the file and the field, and the coverage of tasks x budgets x seeds.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from dcsbench import registry
from dcsbench.results import (MAX_RECORD_BYTES, RecordError, ResultRecord, error_message, parse_record,
                              text_problem)

#: Largest ``metadata.yaml`` accepted.
MAX_METADATA_BYTES = 64_000
#: Largest optional ``README.md`` accepted.
MAX_README_BYTES = 200_000
#: Most record files one submission may hold (4 tasks x 2 settings x 7 budgets x 3 seeds = 168 per tier).
MAX_RESULT_FILES = 2_000

#: Submission folder names: lowercase, digits, ``.``, ``_``, ``-``; no leading dot.
SUBMISSION_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Result file names.
RESULT_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\.json$")
#: Files allowed at the top of a submission folder.
ALLOWED_TOP_LEVEL = {"metadata.yaml": "file", "README.md": "file", "results": "dir"}

#: Deepest nesting of ``[``/``{`` accepted in YAML (metadata is a flat mapping with short lists).
MAX_YAML_BRACKET_DEPTH = 20

#: A version-1 record's stored normalized score (ignored) is reported when it differs from the
#: recomputed one by more than this tolerance.
SCORE_RTOL = 1e-6
SCORE_ATOL = 1e-6

#: The allow-list of submission folders that may set ``reference: true``.
REFERENCE_SUBMISSIONS_FILE = Path(__file__).parent / "registry_data" / "reference_submissions.json"


def reference_submissions(path: str | os.PathLike | None = None) -> frozenset[str]:
    """Submission names allowed to be reference entries (:data:`REFERENCE_SUBMISSIONS_FILE`)."""
    path = Path(path) if path is not None else REFERENCE_SUBMISSIONS_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    names = data.get("reference_submissions") if isinstance(data, dict) else None
    if data.get("format") != 1 or not isinstance(names, list) or not all(
            isinstance(n, str) and SUBMISSION_NAME.fullmatch(n) for n in names):
        raise ValueError(f"{path}: not a reference allow-list (format 1, list of submission names)")
    return frozenset(names)


def _name_key(text: str) -> str:
    """Compatibility-folded, case-folded letters and digits only: ``"B.C"`` and ``"ｂｃ"`` give ``"bc"``."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One finding of validation.

    Attributes:
        severity: ``"error"`` (blocks the leaderboard) or ``"warning"``.
        path: the file or folder concerned.
        field: dotted field name inside the file (``""`` for the file itself).
        message: what is wrong, in words.
    """

    severity: str
    path: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{self.severity.upper()} {where}: {self.message}"


class SubmissionFileError(ValueError):
    """A submission file could not be read safely; ``field`` names the offending field if any."""

    def __init__(self, path: str, message: str, field: str = ""):
        super().__init__(f"{path}: {field + ': ' if field else ''}{message}")
        self.path, self.field, self.message = path, field, message


# --------------------------------------------------------------------------------------------
# Safe readers
# --------------------------------------------------------------------------------------------

def printable(value: Any) -> str:
    """``str(value)`` that is always encodable as UTF-8: undecodable file-name bytes (surrogate
    escapes) become ``\\udcXX`` text instead of breaking reports and HTML."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def check_name(name: str, pattern: re.Pattern, kind: str) -> str | None:
    """Why ``name`` is not an acceptable ``kind`` name (None if it is fine)."""
    if pattern.fullmatch(name):
        return None
    shown = name.encode("unicode_escape").decode("ascii")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        return f"{kind} name {shown!r} looks like a path (separators or leading dot are not allowed)"
    return f"{kind} name {shown!r} has characters outside {pattern.pattern}"


def read_text_file(path: str | os.PathLike, max_bytes: int) -> str:
    """Read a small UTF-8 text file safely.

    Refuses symlinks (checked with ``lstat`` and opened with ``O_NOFOLLOW``), anything that is not
    a regular file, files over ``max_bytes`` (checked before and while reading) and bytes that are
    not UTF-8. Raises :class:`SubmissionFileError` with the reason.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise SubmissionFileError(str(path), "missing file") from None
    if stat.S_ISLNK(st.st_mode):
        raise SubmissionFileError(str(path), "is a symbolic link (not allowed in submissions)")
    if not stat.S_ISREG(st.st_mode):
        raise SubmissionFileError(str(path), "is not a regular file")
    if st.st_size > max_bytes:
        raise SubmissionFileError(str(path), f"{st.st_size} bytes, over the {max_bytes}-byte limit")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise SubmissionFileError(str(path), f"over the {max_bytes}-byte limit")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SubmissionFileError(str(path), f"not UTF-8 (byte {err.start}: {raw[err.start:err.start + 1]!r})") from None


def load_yaml(text: str, origin: str) -> Any:
    """Parse YAML *data*: tags (``!!python/...``, ``!foo``, even ``!!str``), anchors and aliases are
    rejected by a token scan first, duplicate keys by a node walk; then ``yaml.safe_load``."""
    depth = deepest = 0
    for ch in text:  # cheap guard: PyYAML slows down sharply on deeply nested flow collections
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_YAML_BRACKET_DEPTH:
        raise SubmissionFileError(origin, f"YAML nested too deeply ({deepest} levels of [ or {{; "
                                          f"at most {MAX_YAML_BRACKET_DEPTH})")
    try:
        for tok in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(tok, yaml.TagToken):
                raise SubmissionFileError(origin, f"YAML tag {tok.value[0]}{tok.value[1]} at line "
                                                  f"{tok.start_mark.line + 1} is not allowed (plain data only)")
            if isinstance(tok, (yaml.AnchorToken, yaml.AliasToken)):
                raise SubmissionFileError(origin, f"YAML anchor/alias &{tok.value} at line "
                                                  f"{tok.start_mark.line + 1} is not allowed")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_duplicate_keys(node, origin)
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SubmissionFileError(origin, f"invalid YAML ({' '.join(str(err).split())})") from None
    except RecursionError:
        raise SubmissionFileError(origin, "YAML nested too deeply") from None


def _check_duplicate_keys(node: Any, origin: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = getattr(k, "value", None)
            if isinstance(key, str):
                if key in seen:
                    raise SubmissionFileError(origin, f"duplicate key at line {k.start_mark.line + 1}",
                                              field=key)
                seen.add(key)
            _check_duplicate_keys(v, origin)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _check_duplicate_keys(v, origin)


def load_json(text: str, origin: str) -> Any:
    """Parse strict JSON: no NaN/Infinity, no duplicate keys, bounded nesting."""
    def no_constants(name: str) -> Any:
        raise SubmissionFileError(origin, f"{name} is not allowed in JSON (non-finite number)")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in pairs:
            if k in out:
                raise SubmissionFileError(origin, "duplicate key", field=k)
            out[k] = v
        return out

    try:
        return json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except SubmissionFileError:
        raise
    except json.JSONDecodeError as err:
        raise SubmissionFileError(origin, f"not valid JSON ({err})") from None
    except RecursionError:
        raise SubmissionFileError(origin, "JSON nested too deeply") from None
    except ValueError as err:  # e.g. an integer literal beyond Python's digit limit
        raise SubmissionFileError(origin, f"not acceptable JSON ({err})") from None


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------

def check_url(url: str) -> str:
    """Return ``url`` if it is a plain ``http``/``https`` URL with a host, else raise ValueError."""
    if any(c.isspace() or ord(c) < 32 or c in "<>\"'`\\" for c in url):
        raise ValueError("URL contains whitespace, quotes or control characters")
    why = text_problem(url)
    if why:
        raise ValueError(f"URL {why}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"only http:// and https:// URLs are allowed, not {parts.scheme or 'no'} scheme")
    if not parts.netloc:
        raise ValueError("URL has no host")
    return url


class Metadata(BaseModel):
    """``metadata.yaml`` of a submission.

    Attributes:
        method: method name; equals the folder name and ``method.name`` in every record.
        display_name: name shown on the leaderboard (defaults to ``method``).
        version: method version.
        authors: list of author names.
        paper_url / code_url: http(s) links (optional but recommended).
        description: one paragraph on what the method does.
        labels_used: which labels the method uses, e.g. "actions of the labeled-B trajectories
            only, for the decoder" or "labels also during LAM training".
        compute: hardware and time per run, e.g. "1x H100, 2 h per run".
        reference: True only for the reference baselines shipped with dcsbench, i.e. the folders
            of the allow-list :data:`REFERENCE_SUBMISSIONS_FILE`.
        contact: optional e-mail or handle.

    Types are strict (``reference: "true"`` is not a boolean). Displayed text carries no control
    characters (newline and tab are allowed in ``description``, ``labels_used`` and
    ``compute`` only) and no bidirectional formatting characters; a non-reference submission
    cannot use a reference baseline's name as its display name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    method: str = Field(pattern=SUBMISSION_NAME.pattern)
    reference: bool = False
    display_name: str | None = Field(default=None, min_length=1, max_length=80)
    version: str = Field(default="1", min_length=1, max_length=64)
    authors: list[str] = Field(min_length=1, max_length=100)
    paper_url: str | None = Field(default=None, max_length=500)
    code_url: str | None = Field(default=None, max_length=500)
    description: str = Field(min_length=1, max_length=4000)
    labels_used: str = Field(min_length=1, max_length=1000)
    compute: str = Field(min_length=1, max_length=1000)
    contact: str | None = Field(default=None, max_length=200)

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: bool, info: ValidationInfo) -> bool:
        method = info.data.get("method")
        if v and method not in reference_submissions():
            raise ValueError(f"only the reference baselines shipped with dcsbench "
                             f"({', '.join(sorted(reference_submissions()))}; allow-list "
                             f"dcsbench/registry_data/{REFERENCE_SUBMISSIONS_FILE.name}) may set "
                             f"reference: true, not {method!r}")
        return v

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        why = text_problem(v)
        if why:
            raise ValueError(why)
        if not v.strip():
            raise ValueError("must not be blank")
        if not info.data.get("reference") and info.data.get("method") is not None:
            taken = {_name_key(n): n for n in reference_submissions()}
            if _name_key(v) in taken and info.data["method"] != taken[_name_key(v)]:
                raise ValueError(f"{v!r} is the name of the reference baseline "
                                 f"{taken[_name_key(v)]!r}; choose a name of your own")
        return v

    @field_validator("version", "contact")
    @classmethod
    def _line_text(cls, v: str | None) -> str | None:
        why = None if v is None else text_problem(v)
        if why:
            raise ValueError(why)
        return v

    @field_validator("description", "labels_used", "compute")
    @classmethod
    def _paragraph_text(cls, v: str) -> str:
        why = text_problem(v, multiline=True)
        if why:
            raise ValueError(why)
        return v

    @field_validator("authors")
    @classmethod
    def _authors(cls, v: list[str]) -> list[str]:
        for i, a in enumerate(v):
            if not a.strip() or len(a) > 200:
                raise ValueError("each author must be a non-empty name of at most 200 characters")
            why = text_problem(a)
            if why:
                raise ValueError(f"authors[{i}] {why}")
        return v

    @field_validator("paper_url", "code_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @property
    def title(self) -> str:
        """The name shown on the leaderboard."""
        return self.display_name or self.method


def _pydantic_problems(err: ValidationError, path: str) -> list[Problem]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<file>"
        msg = error_message(e)
        if e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field (not part of the format; check spelling)"
        out.append(Problem("error", printable(path), printable(loc), printable(msg)))
    return out


def load_metadata(path: str | os.PathLike) -> Metadata:
    """Read and validate a ``metadata.yaml``; raises :class:`SubmissionFileError` naming the field."""
    text = read_text_file(path, MAX_METADATA_BYTES)
    data = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise SubmissionFileError(str(path), "must be a YAML mapping of fields")
    try:
        return Metadata.model_validate(data)
    except ValidationError as err:
        first = _pydantic_problems(err, str(path))[0]
        raise SubmissionFileError(str(path), first.message, field=first.field) from None


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
        return {(t, b, s) for t in registry.TASKS for b in registry.TIERS[self.tier].budgets
                for s in registry.OFFICIAL_SEEDS}

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
        budgets = registry.TIERS[self.tier].budgets
        width = max(len(registry.OFFICIAL_SEEDS), 3)
        lines = [f"{'task':<15}" + "".join(f"  B={b:<{width}}" for b in budgets)]
        for t in registry.TASKS:
            cells = []
            for b in budgets:
                marks = "".join(str(s) if (t, b, s) in self.present else "." for s in registry.OFFICIAL_SEEDS)
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
    if rec.episode_length > registry.EPISODE_LENGTH:
        sub.error(origin, "episode_length", f"{rec.episode_length} steps per episode, longer than "
                                            f"the protocol's {registry.EPISODE_LENGTH}")
    elif rec.episode_length != registry.EPISODE_LENGTH:
        size_problem(origin, "episode_length", f"{rec.episode_length} steps per episode, not the "
                                               f"protocol's {registry.EPISODE_LENGTH}")
    if rec.protocol_version != registry.PROTOCOL_VERSION:
        sub.error(origin, "protocol_version", f"{rec.protocol_version} is not the current protocol "
                                              f"version {registry.PROTOCOL_VERSION}; re-run with this dcsbench")
    if not rec.protocol_compliant:
        size_problem(origin, "protocol_compliant", "the run was not protocol-compliant (non-default "
                                                "settings); it cannot go on the leaderboard")
    if metadata is not None and rec.method.name != metadata.method:
        sub.error(origin, "method.name", f"{rec.method.name!r} differs from metadata method {metadata.method!r}")
    try:
        ds = registry.parse_dataset_name(rec.dataset.name)
    except registry.UnknownNameError as err:
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
    if rec.tier not in registry.TIERS:
        sub.error(origin, "tier", str(registry._unknown("tier", rec.tier, registry.TIERS)))
    if rec.seed not in registry.OFFICIAL_SEEDS:
        sub.error(origin, "seed", f"{rec.seed} is not an official seed "
                                  f"({', '.join(map(str, registry.OFFICIAL_SEEDS))})")
    want_seeds = list(registry.EVAL_EPISODE_SEEDS)
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
        known: a :class:`dcsbench.known_datasets.KnownDatasets`; built with
            :func:`~dcsbench.known_datasets.load_known_datasets` if None.
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
        from dcsbench.known_datasets import load_known_datasets
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
