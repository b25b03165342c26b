"""Reading submission files safely: size-bounded, UTF-8, regular files with plain names; YAML
without tags, anchors or aliases; JSON without NaN/Infinity or duplicate keys. Findings are
:class:`Problem` s; unreadable files raise :class:`SubmissionFileError`."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
