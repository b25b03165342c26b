"""``metadata.yaml`` of a submission (:class:`Metadata`, strict) and the allow-list of reference
submissions (only those may say ``reference: true``)."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from dcsbench.results import error_message, text_problem
from dcsbench.submissions.safe_io import (MAX_METADATA_BYTES, SUBMISSION_NAME, Problem,
                                          SubmissionFileError, load_yaml, printable,
                                          read_text_file)

#: The allow-list of submission folders that may set ``reference: true``.
REFERENCE_SUBMISSIONS_FILE = (Path(__file__).resolve().parent.parent / "registry_data"
                              / "reference_submissions.json")


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
