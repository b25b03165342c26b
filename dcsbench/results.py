"""The result record: one JSON file per run (PROTOCOL.md section 6), its schema and atomic IO.

A record holds the raw per-episode returns, so every score can be recomputed from it. Records are
validated by a pydantic model; a malformed record is rejected with the path of the wrong field.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dcsbench import registry

#: Largest record file we accept (a record is a few KB; this bounds hostile input).
MAX_RECORD_BYTES = 1_000_000

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,63}$"
_SHA256 = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodInfo(_Strict):
    """Which method produced the run."""

    name: str = Field(pattern=_NAME)
    version: str = Field(max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    num_parameters: int | None = Field(default=None, ge=0)


class DatasetInfo(_Strict):
    """Which data the run saw, pinned by content."""

    name: str = Field(pattern=_NAME)
    revision: str = Field(max_length=64)
    content_hash: str = Field(pattern=_SHA256)
    labeled_subset_hash: str = Field(pattern=_SHA256)


class EvalResult(_Strict):
    """Online evaluation under one background pool."""

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
    """One run of one method on one dataset, budget and seed."""

    protocol_version: int
    dcsbench_version: str = Field(max_length=64)
    git_commit: str | None = Field(default=None, max_length=64)
    method: MethodInfo
    task: str
    setting: str
    tier: str
    source: str
    budget: int = Field(ge=0)
    seed: int = Field(ge=0)
    dataset: DatasetInfo
    primary: EvalResult
    generalization: EvalResult | None = None
    offline_metrics: dict[str, float] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    hardware: dict[str, str] = Field(default_factory=dict)
    protocol_compliant: bool = True
    timestamp: str = Field(max_length=40)

    @field_validator("task")
    @classmethod
    def _task(cls, v: str) -> str:
        return registry.check_choice("task", v, registry.TASKS)

    @field_validator("setting")
    @classmethod
    def _setting(cls, v: str) -> str:
        return registry.check_choice("setting", v, registry.SETTINGS)

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        return registry.check_choice("source", v, registry.SOURCES)


class RecordError(ValueError):
    """A result record could not be read or is malformed; the message names the field."""


def _format_validation_error(err: ValidationError, origin: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<record>"
        lines.append(f"  {loc}: {e['msg']}")
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


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_record(record: ResultRecord, path: str | os.PathLike) -> None:
    """Validate-by-construction and write a record atomically as indented JSON."""
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
