"""The result record: one JSON file per run (PROTOCOL.md section 6), its schema and atomic IO.

A record holds the raw per-episode returns, so every score can be recomputed from it. Records are
validated by a strict pydantic model; a malformed record is rejected with the path of the wrong
field.

Record versions (``record_version``; absent means 1):

* **1** (old records): may carry ``primary/generalization.normalized_score``; it is accepted
  and *ignored* (scores are always recomputed from the raw returns downstream, in
  :func:`dcsbench.scoring.records_to_frame`). ``episode_length`` is absent and means 1000.
  Offline metrics were named ``probe_mse_labeled``, ``probe_mse_eval``, ``action_var_eval``.
* **2** (:data:`RECORD_VERSION`, written by the runner): *facts only*. ``normalized_score``
  must be absent or null, ``episode_length`` is required, and ``offline_metrics`` keys are
  :data:`OFFLINE_METRICS_V2` (the probe metrics of :mod:`dcsbench.probe` and their bookkeeping)
  plus ``*_n`` sample counts (whole numbers).

:func:`offline_metrics_v2` gives any record's offline metrics under the version-2 names.

Every record, whatever its version: types are strict (``"2"`` is not an integer, ``"true"`` is
not a boolean), every number is finite (``1e999`` parses as ``inf`` and is rejected), every
episode return lies in ``[0, episode_length]`` (the per-step reward of the protocol's DMC tasks
is in ``[0, 1]``) and short text fields carry no control or bidirectional-override characters.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from dcsbench import catalogue
from dcsbench.fileio import atomic_write_text  # noqa: F401 - re-exported (older imports)

#: Largest record file we accept (a record is a few KB; this bounds hostile input).
MAX_RECORD_BYTES = 1_000_000

#: Version of the record layout written by this dcsbench (see the module docstring).
RECORD_VERSION = 2
#: Record versions this dcsbench reads.
RECORD_VERSIONS = (1, 2)
#: ``episode_length`` of a version-1 record (which does not store it).
V1_EPISODE_LENGTH = 1000

#: Offline metrics of a version-2 record (``*_n`` sample counts may accompany them).
OFFLINE_METRICS_V2 = ("probe_mse_train", "probe_mse_novel", "action_var_train", "action_var_novel",
                      "probe_mse_train_random", "probe_alpha", "latent_dim")
#: Version-1 offline metric names and the version-2 names they are shown under. Both score the
#: probe on the eval split (novel backgrounds); version 1 fitted it on the budget's labeled
#: trajectories, version 2 on every train trajectory. Version 1's ``probe_mse_labeled`` (the
#: in-sample MSE on the labeled view) has no version-2 counterpart (``probe_mse_train`` is
#: scored on held-out trajectories), so it keeps its name.
OFFLINE_METRICS_V1_RENAMES = {"probe_mse_eval": "probe_mse_novel",
                              "action_var_eval": "action_var_novel"}
_COUNT_KEY = re.compile(r"^[a-z0-9_]{1,60}_n$")

#: Slack on the return bounds for floating-point sums (a return is a sum of <= 1000 rewards).
RETURN_SLACK = 1e-6

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,63}$"
_KEY = r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,63}$"
_SHA256 = r"^[0-9a-f]{64}$"

#: Bidirectional formatting characters (embeddings, overrides, isolates, marks): they make
#: displayed text read differently from what it is ("Trojan Source").
BIDI_CHARACTERS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                            "\u200e\u200f\u061c")


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why ``value`` is not safe display text (None if it is).

    Rejected: control characters (C0, DEL, C1; NUL included), line/paragraph separators
    (U+2028/9) and :data:`BIDI_CHARACTERS`. With ``multiline``, newline and tab are allowed
    (free-text paragraphs such as a description).
    """
    for i, ch in enumerate(value):
        if multiline and ch in "\n\t":
            continue
        o = ord(ch)
        if o < 32 or 127 <= o < 160:
            kind = "control character"
        elif ch in BIDI_CHARACTERS:
            kind = "bidirectional formatting character"
        elif ch in "\u2028\u2029":
            kind = "line/paragraph separator"
        else:
            continue
        return f"contains a {kind} U+{o:04X} at position {i} (not allowed in displayed text)"
    return None


def _safe_text(v: str | None, multiline: bool = False) -> str | None:
    if v is not None:
        why = text_problem(v, multiline)
        if why:
            raise ValueError(why)
    return v


def _nonfinite_path(value: Any) -> str | None:
    """Dotted path of the first non-finite float inside nested lists/dicts (None if all finite)."""
    stack = [("", value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return path or "<value>"
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((f"{path}.{i}" if path else str(i), x) for i, x in enumerate(v))
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class MethodInfo(_Strict):
    """Which method produced the run."""

    name: str = Field(pattern=_NAME)
    version: str = Field(max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    num_parameters: int | None = Field(default=None, ge=0)

    @field_validator("version")
    @classmethod
    def _version_text(cls, v: str) -> str:
        return _safe_text(v)

    @field_validator("config")
    @classmethod
    def _config_finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = _nonfinite_path(v)
        if bad is not None:
            raise ValueError(f"config.{bad} is not a finite number")
        return v


class DatasetInfo(_Strict):
    """Which data the run saw, pinned by content."""

    name: str = Field(pattern=_NAME)
    revision: str = Field(max_length=64)
    content_hash: str = Field(pattern=_SHA256)
    labeled_subset_hash: str = Field(pattern=_SHA256)

    @field_validator("revision")
    @classmethod
    def _revision_text(cls, v: str) -> str:
        return _safe_text(v)


class EvalResult(_Strict):
    """Online evaluation under one background pool.

    ``normalized_score`` exists only for version-1 records (ignored); the bounds of the returns
    (``[0, episode_length]``) are checked by :class:`ResultRecord`, which knows the episode length.
    """

    backgrounds: Literal["train", "novel"]
    episode_seeds: list[int]
    returns: list[float]
    mean_return: float
    normalized_score: float | None = None

    @field_validator("returns")
    @classmethod
    def _finite(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("no episode returns")
        if not all(math.isfinite(x) for x in v):
            raise ValueError("returns must be finite numbers")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "EvalResult":
        if len(self.episode_seeds) != len(self.returns):
            raise ValueError(f"{len(self.returns)} returns for {len(self.episode_seeds)} episode seeds")
        mean = sum(self.returns) / len(self.returns)
        if not math.isclose(mean, self.mean_return, rel_tol=1e-6, abs_tol=1e-6):
            raise ValueError(f"mean_return {self.mean_return} != mean of returns {mean}")
        return self


class ResultRecord(_Strict):
    """One run of one method on one dataset, budget and seed (layout versions in the module
    docstring; field order matters: later validators read ``record_version`` and
    ``episode_length``)."""

    record_version: int = 1
    protocol_version: int
    dcsbench_version: str = Field(max_length=64)
    git_commit: str | None = Field(default=None, max_length=64)  # at the start of the call that wrote it
    method: MethodInfo
    task: str
    setting: str
    tier: str
    source: str
    budget: int = Field(ge=0)
    seed: int = Field(ge=0)
    episode_length: int | None = Field(default=None, ge=1, validate_default=True)
    dataset: DatasetInfo
    primary: EvalResult
    generalization: EvalResult | None = None
    offline_metrics: dict[str, float] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    hardware: dict[str, str] = Field(default_factory=dict, max_length=64)
    protocol_compliant: bool = True
    timestamp: str = Field(max_length=40)

    @field_validator("record_version")
    @classmethod
    def _record_version(cls, v: int) -> int:
        if v not in RECORD_VERSIONS:
            raise ValueError(f"record version {v} is not one this dcsbench reads "
                             f"({', '.join(map(str, RECORD_VERSIONS))}); update dcsbench")
        return v

    @field_validator("episode_length")
    @classmethod
    def _episode_length(cls, v: int | None, info: ValidationInfo) -> int:
        if v is None:
            if info.data.get("record_version", 1) >= 2:
                raise ValueError("required in record version 2 (steps per evaluation episode)")
            return V1_EPISODE_LENGTH
        return v

    @field_validator("primary", "generalization")
    @classmethod
    def _facts(cls, v: EvalResult | None, info: ValidationInfo) -> EvalResult | None:
        if v is None:
            return v
        if info.data.get("record_version", 1) >= 2 and v.normalized_score is not None:
            raise ValueError("normalized_score must be absent (or null) in record version 2: a "
                             "record holds facts only; scores are computed from the returns")
        length = info.data.get("episode_length")
        if length is not None:
            for i, r in enumerate(v.returns):
                if not -RETURN_SLACK <= r <= length + RETURN_SLACK:
                    raise ValueError(
                        f"returns[{i}] = {r:.6g} is outside [0, {length}]: a return is the sum of "
                        f"{length} per-step rewards, each in [0, 1] (episode_length {length})")
        return v

    @field_validator("offline_metrics")
    @classmethod
    def _offline(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        v2 = info.data.get("record_version", 1) >= 2
        for k, x in v.items():
            is_count = bool(_COUNT_KEY.fullmatch(k))
            if v2 and k not in OFFLINE_METRICS_V2 and not is_count:
                hint = (f"; a version-1 name, {OFFLINE_METRICS_V1_RENAMES[k]!r} in version 2"
                        if k in OFFLINE_METRICS_V1_RENAMES else
                        "; a version-1 name" if k == "probe_mse_labeled" else "")
                raise ValueError(f"unknown offline metric {k!r} for record version 2 (known: "
                                 f"{', '.join(OFFLINE_METRICS_V2)}, and *_n counts){hint}")
            if not v2 and not re.fullmatch(_KEY, k):
                raise ValueError(f"offline metric name {k!r} has characters outside {_KEY}")
            if x < 0:
                raise ValueError(f"{k} = {x:.6g} is negative (MSEs, variances and counts are >= 0)")
            if is_count and x != int(x):
                raise ValueError(f"{k} = {x:.6g} is a count and must be a whole number")
        return v

    @field_validator("stage_seconds")
    @classmethod
    def _stages(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if not re.fullmatch(_KEY, k):
                raise ValueError(f"stage name {k!r} has characters outside {_KEY}")
            if x < 0:
                raise ValueError(f"{k} = {x:.6g} seconds is negative")
        return v

    @field_validator("hardware")
    @classmethod
    def _hardware(cls, v: dict[str, str]) -> dict[str, str]:
        for k, x in v.items():
            if not re.fullmatch(_KEY, k):
                raise ValueError(f"hardware key {k!r} has characters outside {_KEY}")
            if len(x) > 200:
                raise ValueError(f"hardware.{k} is longer than 200 characters")
            why = text_problem(x)
            if why:
                raise ValueError(f"hardware.{k} {why}")
        return v

    @field_validator("dcsbench_version", "git_commit", "timestamp")
    @classmethod
    def _short_text(cls, v: str | None) -> str | None:
        return _safe_text(v)

    @field_validator("task")
    @classmethod
    def _task(cls, v: str) -> str:
        return catalogue.check_choice("task", v, catalogue.TASKS)

    @field_validator("setting")
    @classmethod
    def _setting(cls, v: str) -> str:
        return catalogue.check_choice("setting", v, catalogue.SETTINGS)

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        return catalogue.check_choice("source", v, catalogue.SOURCES)


def offline_metrics_v2(record: ResultRecord) -> dict[str, float]:
    """The record's offline metrics under the version-2 names (version-1 names are renamed,
    see :data:`OFFLINE_METRICS_V1_RENAMES`; a v2 name already present wins)."""
    out = dict(record.offline_metrics)
    if record.record_version < 2:
        for old, new in OFFLINE_METRICS_V1_RENAMES.items():
            if old in out:
                value = out.pop(old)
                out.setdefault(new, value)
    return out


class RecordError(ValueError):
    """A result record could not be read or is malformed; the message names the field."""


def error_message(e: dict) -> str:
    """The message of one pydantic error without pydantic's ``"Value error, "`` prefix."""
    msg = e["msg"]
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def _format_validation_error(err: ValidationError, origin: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<record>"
        lines.append(f"  {loc}: {error_message(e)}")
    return f"{origin}: invalid result record\n" + "\n".join(lines)


def parse_record(data: Any, origin: str = "<record>") -> ResultRecord:
    """Validate a decoded JSON object as a :class:`ResultRecord` or raise :class:`RecordError`."""
    try:
        return ResultRecord.model_validate(data)
    except ValidationError as err:
        raise RecordError(_format_validation_error(err, origin)) from None


def load_record(path: str | os.PathLike) -> ResultRecord:
    """Read and validate one record file (size-bounded, UTF-8 JSON)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"{path}: {size} bytes, larger than the {MAX_RECORD_BYTES}-byte limit")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise RecordError(f"{path}: not UTF-8 ({err})") from None
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not valid JSON ({err})") from None
    return parse_record(data, str(path))


def record_json(record: ResultRecord) -> str:
    """A record as indented JSON. Version-2 records are facts only, so their unused
    ``normalized_score: null`` fields are left out (a version-1 record keeps what it holds)."""
    exclude = None
    if record.record_version >= 2:
        exclude = {k: {"normalized_score"} for k in ("primary", "generalization")
                   if getattr(record, k, None) is not None}
    return record.model_dump_json(indent=2, exclude=exclude) + "\n"


def save_record(record: ResultRecord, path: str | os.PathLike) -> None:
    """Validate-by-construction and write a record atomically as indented JSON."""
    atomic_write_text(path, record_json(record))
