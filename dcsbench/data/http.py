"""Resumable, verified HTTP downloads of large files (the LAOM release: :mod:`dcsbench.data.laom`).

:func:`download_file` streams ``url`` into ``{dest}.part`` with ``requests``: a ``Range: bytes=N-``
request resumes a killed or dropped transfer (``If-Range`` on the ETag, so a changed file restarts
from zero), a few retries within one call, a tqdm progress bar, the size checked against the
``Content-Range``/``Content-Length`` total and a known size, an optional content check and the
sha256 against a known hash, and only then an atomic rename into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

#: Bytes per read from the socket (also what a dropped connection can lose of the last read, and
#: the progress-bar granularity).
NET_CHUNK_BYTES = 64 * 1024

#: Bytes per read when hashing a file on disk.
CHUNK_BYTES = 1 << 20

#: Retries of a dropped connection within one :func:`download_file` call (each resumes with Range).
RETRIES = 3


class DownloadError(ValueError):
    """A file could not be fetched or failed a check (size, structure, sha256); names the file."""


class TransferError(DownloadError):
    """The transfer itself failed (HTTP error status, connection dropped after the retries); the
    next base URL is tried, and a later call resumes from the ``.part`` file."""


class InsufficientSpaceError(DownloadError):
    """Not enough free disk for the download or the conversion (says how much is needed)."""


def sha256_of(path: Path, progress: bool = False) -> str:
    """Streaming sha256 of a file (1 MiB reads), with an optional progress bar."""
    from tqdm import tqdm

    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                      desc=f"sha256 {path.name}", disable=not progress, leave=False) as bar:
        while True:
            b = f.read(CHUNK_BYTES)
            if not b:
                break
            h.update(b)
            bar.update(len(b))
    return h.hexdigest()



def _session():
    import requests

    s = requests.Session()
    s.headers["User-Agent"] = "dcsbench-laom-download"
    return s


def _content_total(resp) -> int | None:
    """Full size of the remote file from ``Content-Range`` (206/416) or ``Content-Length`` (200)."""
    cr = resp.headers.get("Content-Range", "")
    if "/" in cr and cr.rsplit("/", 1)[1].strip().isdigit():
        return int(cr.rsplit("/", 1)[1])
    cl = resp.headers.get("Content-Length")
    return int(cl) if resp.status_code == 200 and cl and cl.isdigit() else None


def remote_size(url: str, session=None, timeout: float = 30) -> int | None:
    """Size of a remote file from a HEAD request (None if the server does not say)."""
    s = session or _session()
    r = s.head(url, allow_redirects=True, timeout=timeout)
    if r.status_code >= 400:
        return None
    cl = r.headers.get("Content-Length")
    return int(cl) if cl and cl.isdigit() else None


def _part_meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _hash_prefix(path: Path, n: int):
    """A sha256 object fed with the first ``n`` bytes of ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = n
        while left > 0:
            b = f.read(min(CHUNK_BYTES, left))
            if not b:
                raise DownloadError(f"{path.name}: shorter than {n:,} bytes while hashing")
            h.update(b)
            left -= len(b)
    return h


def download_file(url: str, dest: Path, expected_bytes: int | None = None,
                  expected_sha256: str | None = None, session=None, progress: bool = True,
                  retries: int = RETRIES, timeout: float = 60, check=None, log=None) -> dict:
    """Fetch ``url`` into ``dest`` atomically, resuming ``dest.part`` with a Range request.

    Args:
        url: the file's URL.
        dest: final path; bytes go to ``dest.part`` (plus ``dest.part.json`` with the ETag)
            until every check passed, then it is renamed to ``dest``.
        expected_bytes: known size; a different total from the server is an error.
        expected_sha256: known sha256; a mismatch deletes the part file and is an error.
        retries: dropped connections retried (with Range) within this call.
        check: ``check(path)`` run on the complete part file before the rename (HDF5 structure).
        log: callable for messages.

    Returns:
        ``{"sha256", "bytes", "resumed_from", "requests"}``.
    """
    import requests

    log = log or (lambda m: None)
    s = session or _session()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta_p = _part_meta_path(part)
    resumed_from, n_requests, attempt = None, 0, 0
    hasher, hashed = hashlib.sha256(), 0  # sha256 of part's first `hashed` bytes, kept while streaming
    while True:
        have = part.stat().st_size if part.is_file() else 0
        meta = json.loads(meta_p.read_text()) if (have and meta_p.is_file()) else {}
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
            if meta.get("etag"):
                headers["If-Range"] = meta["etag"]
        try:
            n_requests += 1
            with s.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True) as r:
                if r.status_code == 416 and have:  # nothing after `have`: complete, or server changed
                    total = _content_total(r)
                    if total != have:
                        log(f"[dcsbench] {dest.name}: partial file does not fit the server's; restarting")
                        part.unlink(missing_ok=True)
                        continue
                elif r.status_code in (200, 206):
                    total = _content_total(r)
                    if r.status_code == 206:
                        start = int(r.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
                        if start != have:
                            raise DownloadError(f"{url}: server answered range {start}- to a request "
                                                f"for {have}-")
                        if resumed_from is None:
                            resumed_from = have
                        mode = "ab"
                        if hashed != have:  # a part file from an earlier process: hash what is there
                            hasher, hashed = _hash_prefix(part, have), have
                    else:
                        if have:
                            log(f"[dcsbench] {dest.name}: server does not resume this file (or it "
                                "changed); downloading it from the start")
                        have, mode = 0, "wb"
                        hasher, hashed = hashlib.sha256(), 0
                    if expected_bytes is not None and total is not None and total != expected_bytes:
                        raise DownloadError(f"{dest.name}: the server has {total:,} bytes, the catalogue "
                                            f"expects {expected_bytes:,} (wrong file or changed release; "
                                            f"check {url})")
                    meta_p.write_text(json.dumps({"url": url, "etag": r.headers.get("ETag"),
                                                  "total": total}))
                    from tqdm import tqdm

                    with open(part, mode) as out, tqdm(
                            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=dest.name, disable=not progress, leave=False, file=sys.stderr) as bar:
                        for chunk in r.iter_content(NET_CHUNK_BYTES):
                            out.write(chunk)
                            hasher.update(chunk)
                            hashed += len(chunk)
                            bar.update(len(chunk))
                        out.flush()
                        os.fsync(out.fileno())
                    got = part.stat().st_size
                    if total is not None and got != total:
                        raise requests.exceptions.ChunkedEncodingError(
                            f"connection closed at {got:,} of {total:,} bytes")
                else:
                    raise TransferError(f"{url}: HTTP {r.status_code} {r.reason}")
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.Timeout) as err:
            attempt += 1
            if attempt > retries:
                size = part.stat().st_size if part.is_file() else 0
                raise TransferError(f"{dest.name}: download interrupted ({type(err).__name__}) after "
                                    f"{retries} retries with {size:,} bytes kept in {part.name}; run the "
                                    "command again to resume") from None
            log(f"[dcsbench] {dest.name}: connection dropped ({type(err).__name__}); resuming "
                f"(retry {attempt}/{retries})")
            time.sleep(min(2.0 ** (attempt - 1), 10.0) * 0.1)
            continue
        break
    size = part.stat().st_size
    if expected_bytes is not None and size != expected_bytes:
        raise DownloadError(f"{dest.name}: {size:,} bytes, the catalogue expects {expected_bytes:,}")
    if check is not None:
        try:
            check(part)
        except DownloadError:
            part.unlink(missing_ok=True)
            meta_p.unlink(missing_ok=True)
            raise
    if hashed != size:
        hasher, hashed = _hash_prefix(part, size), size
    sha = hasher.hexdigest()
    if expected_sha256 is not None and sha != expected_sha256:
        part.unlink(missing_ok=True)
        meta_p.unlink(missing_ok=True)
        raise DownloadError(f"{dest.name}: sha256 {sha[:12]}... != known {expected_sha256[:12]}... "
                            "(corrupted transfer or a changed release); the partial file was removed")
    os.replace(part, dest)
    meta_p.unlink(missing_ok=True)
    return {"sha256": sha, "bytes": size, "resumed_from": resumed_from, "requests": n_requests}
