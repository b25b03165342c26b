"""A minimal Hugging Face Hub-compatible HTTP server for tests (127.0.0.1, in-process thread).

It implements only the endpoints ``huggingface_hub`` uses for the calls dcsbench makes:

* ``POST /api/repos/create`` (409 if the repo exists, which ``exist_ok=True`` tolerates)
* ``POST /api/validate-yaml`` (dataset card metadata check)
* ``GET  /api/{type}s/{repo}[/revision/{rev}]`` repo info (``sha``, ``siblings``)
* ``GET  /api/{type}s/{repo}/tree/{rev}[/{path}]`` and ``POST .../paths-info/{rev}`` listings
* ``GET  /api/{type}s/{repo}/refs``
* ``HEAD|GET /[{type}s/]{repo}/resolve/{rev}/{path}`` with ``ETag``, ``X-Repo-Commit``,
  ``Content-Length``, ``Accept-Ranges`` and ``Range`` requests (206)
* ``POST /api/{type}s/{repo}/preupload/{rev}`` -> ``lfs`` for files >= :attr:`HubState.lfs_threshold`
  bytes, ``regular`` (inline base64 in the commit) below
* ``POST /[{type}s/]{repo}.git/info/lfs/objects/batch`` (basic transfer) and ``PUT /lfs-upload/{oid}``
  (sha256-checked), ``POST /lfs-verify/{oid}``
* ``POST /api/{type}s/{repo}/commit/{rev}`` (ndjson: header, file, lfsFile, deletedFile)

Xet is not offered: no response carries Xet headers, and the fixture sets
``huggingface_hub.constants.HF_HUB_DISABLE_XET`` so uploads take the LFS path.

Fault injection for failure tests (:class:`HubState`): ``corrupt[(repo, path)] = n`` serves a
bit-flipped body ``n`` times; ``truncate[(repo, path)] = nbytes`` sends only the first bytes then
drops the connection; ``delay_per_chunk`` (all files) and ``slow[(repo, path)]`` (one file) are
seconds of sleep per 64 kB sent. ``requests`` logs ``(method, path, Range header)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    """One repository: commits (oldest first), each a full snapshot ``path -> bytes``."""

    repo_type: str
    repo_id: str
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    lfs_paths: set = field(default_factory=set)

    def resolve(self, rev: str) -> tuple[str, dict[str, bytes]] | None:
        """``(sha, files)`` of a revision (``main``, a full or short sha)."""
        if not self.commits:
            return None
        if rev in ("main", "HEAD"):
            return self.commits[-1]
        for sha, files in self.commits:
            if sha == rev or (len(rev) >= 7 and sha.startswith(rev)):
                return sha, files
        return None


@dataclass
class HubState:
    """Everything the server stores, plus fault-injection knobs (see the module docstring)."""

    repos: dict = field(default_factory=dict)
    lfs_blobs: dict = field(default_factory=dict)
    lfs_threshold: int = 1024
    corrupt: dict = field(default_factory=dict)
    truncate: dict = field(default_factory=dict)
    delay_per_chunk: float = 0.0
    slow: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def add_commit(self, repo: Repo, files: dict[str, bytes], deleted=()) -> str:
        """Record a new commit on ``main``; returns its sha."""
        with self.lock:
            base = dict(repo.commits[-1][1]) if repo.commits else {}
            for p in deleted:
                base.pop(p, None)
            base.update(files)
            digest = hashlib.sha1(json.dumps(
                [len(repo.commits), sorted((p, hashlib.sha256(b).hexdigest()) for p, b in base.items())]
            ).encode()).hexdigest()
            repo.commits.append((digest, base))
            return digest


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dcsbench-test-hub/1"
    state: HubState  # set on the subclass by HubServer

    def log_message(self, *args) -> None:  # quiet
        return None

    # ------------------------------------------------------------------ helpers
    def _send(self, code: int, body: bytes = b"", headers: dict | None = None,
              ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj, headers: dict | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), headers)

    def _error(self, code: int, msg: str, kind: str | None = None) -> None:
        headers = {"X-Error-Message": msg}
        if kind:
            headers["X-Error-Code"] = kind
        self._json(code, {"error": msg}, headers)

    def _body(self) -> bytes:
        return self._raw

    def _entry(self, repo: Repo, path: str, data: bytes) -> dict:
        e = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_sha1(data)}
        if path in repo.lfs_paths:
            e["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return e

    def _repo_or_404(self, rtype: str, rid: str) -> Repo | None:
        repo = self.state.repo(rtype, rid)
        if repo is None:
            self._error(404, f"Repository {rid} not found", "RepoNotFound")
        return repo

    # ------------------------------------------------------------------ dispatch
    def _route(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.query = parse_qs(url.query)
        self.state.requests.append((self.command, path, self.headers.get("Range")))
        n = int(self.headers.get("Content-Length") or 0)  # always consume the body (keep-alive)
        self._raw = self.rfile.read(n) if n else b""
        m = self.command
        if m == "POST" and path == "/api/repos/create":
            return self._create_repo()
        if m == "PUT" and path.startswith("/lfs-upload/"):
            return self._lfs_put(path.rsplit("/", 1)[1])
        if m == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml()
        if m == "POST" and path.startswith("/lfs-verify/"):
            return self._json(200, {"success": True})
        g = re.fullmatch(r"/api/(models|datasets|spaces)/(.+?)(?:/(revision|tree|paths-info|preupload|commit|refs)(?:/(.*))?)?", path)
        if g:
            rtype, rid, action, rest = _TYPES[g[1]], g[2], g[3], g[4] or ""
            repo = self._repo_or_404(rtype, rid)
            if repo is None:
                return None
            if action in (None, "revision") and m == "GET":
                return self._repo_info(repo, rest or "main")
            if action == "tree" and m == "GET":
                rev, _, sub = rest.partition("/")
                return self._tree(repo, rev, sub)
            if action == "paths-info" and m == "POST":
                return self._paths_info(repo, rest)
            if action == "refs" and m == "GET":
                sha = repo.commits[-1][0] if repo.commits else None
                return self._json(200, {"branches": [{"name": "main", "ref": "refs/heads/main",
                                                      "targetCommit": sha}], "tags": [], "converts": []})
            if action == "preupload" and m == "POST":
                return self._preupload(repo)
            if action == "commit" and m == "POST":
                return self._commit(repo)
        g = re.fullmatch(r"/(?:(datasets|spaces)/)?(.+?)\.git/info/lfs/objects/batch", path)
        if g and m == "POST":
            return self._lfs_batch()
        g = re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+|[^/]+)/resolve/([^/]+)/(.+)", path)
        if g and m in ("GET", "HEAD"):
            rtype = _TYPES[g[1] or "models"]
            return self._resolve(rtype, g[2], g[3], g[4])
        return self._error(404, f"test hub: no route for {m} {path}")

    do_GET = do_HEAD = do_POST = do_PUT = _route

    # ------------------------------------------------------------------ endpoints
    def _create_repo(self) -> None:
        body = json.loads(self._body() or b"{}")
        name, org = body.get("name"), body.get("organization")
        rid = f"{org}/{name}" if org else name
        rtype = body.get("type") or "model"
        base = f"http://{self.headers.get('Host')}"
        body = {"url": f"{base}/{_PREFIX[rtype]}{rid}", "name": rid, "id": rid}
        with self.state.lock:
            if (rtype, rid) in self.state.repos:  # like the Hub: 409, body still carries the url
                return self._json(409, {**body, "error": "You already created this repo"},
                                  {"X-Error-Message": "You already created this repo"})
            self.state.repos[(rtype, rid)] = Repo(rtype, rid)
        self._json(200, body)

    def _validate_yaml(self) -> None:
        import yaml

        content = json.loads(self._body() or b"{}").get("content", "")
        parts = content.split("---")
        try:
            meta = yaml.safe_load(parts[1]) if content.startswith("---") and len(parts) > 2 else {}
        except yaml.YAMLError as err:
            return self._json(400, {"errors": [{"message": f"invalid YAML: {err}"}], "warnings": []})
        if meta is not None and not isinstance(meta, dict):
            return self._json(400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _repo_info(self, repo: Repo, rev: str) -> None:
        r = repo.resolve(rev)
        if r is None:
            if not repo.commits and rev == "main":
                return self._json(200, {"id": repo.repo_id, "sha": None, "siblings": [], "private": False})
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        sha, files = r
        self._json(200, {"id": repo.repo_id, "_id": repo.repo_id, "sha": sha, "private": False,
                         "siblings": [{"rfilename": p} for p in sorted(files)],
                         "lastModified": "2026-01-01T00:00:00.000Z", "tags": [], "downloads": 0,
                         "likes": 0, "disabled": False, "gated": False})

    def _tree(self, repo: Repo, rev: str, sub: str) -> None:
        r = repo.resolve(rev or "main")
        if r is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        _, files = r
        recursive = self.query.get("recursive", ["false"])[0] in ("true", "1", "True")
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        out, dirs = [], set()
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix):].split("/")
            if len(parts) > 1 and not recursive:
                dirs.add(prefix + parts[0])
                continue
            for i in range(1, len(parts)):
                dirs.add(prefix + "/".join(parts[:i]))
            out.append(self._entry(repo, p, files[p]))
        out = [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in sorted(dirs)] + out
        self._json(200, out)

    def _paths_info(self, repo: Repo, rev: str) -> None:
        r = repo.resolve(rev or "main")
        if r is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        raw = self._body()
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            paths = json.loads(raw).get("paths", [])
        else:
            paths = parse_qs(raw.decode()).get("paths", [])
        _, files = r
        self._json(200, [self._entry(repo, p, files[p]) for p in paths if p in files])

    def _preupload(self, repo: Repo) -> None:
        body = json.loads(self._body() or b"{}")
        out = [{"path": f["path"], "shouldIgnore": False, "oid": None,
                "uploadMode": "lfs" if int(f.get("size", 0)) >= self.state.lfs_threshold else "regular"}
               for f in body.get("files", [])]
        self._json(200, {"files": out, "commitOid": repo.commits[-1][0] if repo.commits else None})

    def _lfs_batch(self) -> None:
        body = json.loads(self._body() or b"{}")
        base = f"http://{self.headers.get('Host')}"
        objs = []
        for o in body.get("objects", []):
            entry = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if o["oid"] not in self.state.lfs_blobs:
                entry["actions"] = {"upload": {"href": f"{base}/lfs-upload/{o['oid']}", "header": {}},
                                    "verify": {"href": f"{base}/lfs-verify/{o['oid']}", "header": {}}}
            objs.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objs}).encode(),
                   ctype="application/vnd.git-lfs+json")

    def _lfs_put(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "sha256 mismatch")
        self.state.lfs_blobs[oid] = data
        self._send(200, b"")

    def _commit(self, repo: Repo) -> None:
        files, deleted, lfs = {}, [], set()
        for line in self._body().decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, v = item.get("key"), item.get("value", {})
            if key == "file":
                files[v["path"]] = base64.b64decode(v["content"]) if v.get("encoding") == "base64" \
                    else v["content"].encode()
            elif key == "lfsFile":
                blob = self.state.lfs_blobs.get(v["oid"])
                if blob is None:
                    return self._error(400, f"LFS object {v['oid']} was not uploaded")
                files[v["path"]] = blob
                lfs.add(v["path"])
            elif key == "deletedFile":
                deleted.append(v["path"])
        repo.lfs_paths |= lfs
        repo.lfs_paths -= set(files) - lfs
        sha = self.state.add_commit(repo, files, deleted)
        base = f"http://{self.headers.get('Host')}"
        self._json(200, {"success": True, "commitOid": sha, "pullRequestUrl": None,
                         "commitUrl": f"{base}/{_PREFIX[repo.repo_type]}{repo.repo_id}/commit/{sha}"})

    def _resolve(self, rtype: str, rid: str, rev: str, fpath: str) -> None:
        repo = self._repo_or_404(rtype, rid)
        if repo is None:
            return None
        r = repo.resolve(rev)
        if r is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        sha, files = r
        if fpath not in files:
            return self._error(404, f"Entry not found: {fpath}", "EntryNotFound")
        data = files[fpath]
        etag = hashlib.sha256(data).hexdigest() if fpath in repo.lfs_paths else _git_blob_sha1(data)
        key = (rid, fpath)
        if self.command == "GET" and self.state.corrupt.get(key, 0) > 0:
            self.state.corrupt[key] -= 1
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0x10
            data = bytes(flipped)
        start, end, code = 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        if rng:
            mr = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if mr:
                start = int(mr[1])
                end = int(mr[2]) if mr[2] else len(data) - 1
                code = 206
        body = data[start:end + 1]
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Repo-Commit", sha)
        self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return None
        cut = self.state.truncate.pop(key, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return None
        step = 64 * 1024
        delay = self.state.slow.get(key, self.state.delay_per_chunk)
        for i in range(0, len(body), step):
            if delay:
                time.sleep(delay)
            self.wfile.write(body[i:i + step])


class HubServer:
    """Start/stop the test hub on 127.0.0.1 (a free port) in a daemon thread.

    >>> with HubServer() as hub:          # doctest: +SKIP
    ...     os.environ["HF_ENDPOINT"] = hub.url
    """

    def __init__(self, state: HubState | None = None) -> None:
        self.state = state or HubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "HubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # manual use: python tests/hubserver.py  (serves until Ctrl-C)
    srv = HubServer().start()
    print(f"HF_ENDPOINT={srv.url}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
