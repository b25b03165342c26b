"""The paper's released datasets by name (dcsbench/data/laom*.py) against a local HTTP server.

The server (stdlib ``http.server`` on 127.0.0.1, started here) serves small files the test writes
with h5py in the authors' layout (groups "0".."N-1" with obs/states/actions and traj_return,
labeled files with original_traj_idx). It answers Range requests (206, Content-Range, ETag,
If-Range, 416) and can drop the connection or slow a file down, so that the tests cover download,
kill-and-resume, truncation, wrong sizes, conversion, the labeled-subset mapping and a second
download served from the cache. Nothing here touches the network.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from killing import sigkill_when

from dcsbench import catalogue
from dcsbench.data import format as fmt
from dcsbench.data import http, laom, laom_fetch, store

NAME = "laom/cheetah-run-distractors"
LOCAL = "laom-cheetah-run-distractors"
T, N_TRAIN, N_EVAL, A, S = 12, 6, 2, 6, 17
BUDGETS = (2, 4)


# --------------------------------------------------------------------------------------------
# The test server


class FileServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 with Range support and fault injection.

    Attributes:
        requests: ``(method, path, Range header)`` of every request.
        drop_after: path -> bytes after which the next GET body is cut (connection closed); one shot.
        drop_always: path -> bytes after which every GET body is cut.
        slow: path -> seconds of sleep per 16 kB chunk.
        override: path -> bytes served instead (without changing the ETag logic).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.drop_after: dict[str, int] = {}
        self.drop_always: dict[str, int] = {}
        self.slow: dict[str, float] = {}
        self.lock = threading.Lock()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _serve(self, body_wanted: bool):
                path = self.path.split("?", 1)[0]
                rng = self.headers.get("Range")
                with srv.lock:
                    srv.requests.append((self.command, path, rng))
                data = srv.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
                start, status = 0, 200
                if rng and (self.headers.get("If-Range") in (None, etag)):
                    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                    if m:
                        start = int(m.group(1))
                        if start >= len(data):
                            self.send_response(416)
                            self.send_header("Content-Range", f"bytes */{len(data)}")
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return
                        status = 206
                end = len(data)
                self.send_response(status)
                self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.end_headers()
                if not body_wanted:
                    return
                cut = srv.drop_after.pop(path, None)
                if cut is None:
                    cut = srv.drop_always.get(path)
                stop = end if cut is None else min(end, start + cut)
                pos = start
                try:
                    while pos < stop:
                        n = min(16384, stop - pos)
                        self.wfile.write(data[pos:pos + n])
                        pos += n
                        if path in srv.slow:
                            time.sleep(srv.slow[path])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                if stop < end:  # simulate a dropped connection
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass

            def do_GET(self):
                self._serve(True)

            def do_HEAD(self):
                self._serve(False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def gets(self, name: str) -> list[str | None]:
        """Range headers of the GETs of one file."""
        return [r for m, p, r in self.requests if m == "GET" and p.endswith("/" + name)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------------------------
# Files in the authors' layout


def _trajectory(rng, t=T):
    return {"obs": rng.integers(0, 256, (t, 64, 64, 3), dtype=np.uint8),
            "states": rng.normal(size=(t, S)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (t, A)).astype(np.float32)}


def _write_authors_file(path: Path, trajs: list[dict], split: str, extra_attrs=None) -> None:
    import h5py

    with h5py.File(path, "w", track_order=True) as f:
        f.attrs.update({"domain_name": "cheetah", "task_name": "run", "difficulty": "scale_easy_video_hard",
                        "dynamic": True, "img_hw": 64, "split": split})
        for i, tr in enumerate(trajs):
            g = f.create_group(str(i))
            for k in ("obs", "states", "actions"):
                g.create_dataset(k, data=tr[k])
            g.attrs["traj_return"] = float(tr.get("ret", i * 1.5))
            for k, v in (extra_attrs or {}).get(i, {}).items():
                g.attrs[k] = v
        f.attrs["dataset_return"] = 1.0


def make_release(folder: Path, seed: int = 0) -> dict:
    """Write a tiny release (train, eval, labeled-2/4 sampled like the authors: one shuffle, first
    B, original_traj_idx as a string); returns ``{file name: path}`` and the expected ids."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train = [_trajectory(rng) for _ in range(N_TRAIN)]
    ds = laom.get(NAME)
    out = {}
    p = folder / ds.files["train"].file
    _write_authors_file(p, train, "train")
    out[p.name] = p
    p = folder / ds.files["eval"].file
    _write_authors_file(p, [_trajectory(rng) for _ in range(N_EVAL)], "val")
    out[p.name] = p
    order = list(range(N_TRAIN))
    random.Random(42).shuffle(order)
    ids = {}
    for b in BUDGETS:
        ids[b] = order[:b]
        p = folder / ds.files[f"labeled-{b}"].file
        _write_authors_file(p, [train[j] for j in order[:b]], "train",
                            {i: {"original_traj_idx": str(j)} for i, j in enumerate(order[:b])})
        out[p.name] = p
    return {"paths": out, "ids": ids, "train": train}


@pytest.fixture
def release(tmp_path, monkeypatch):
    """The tiny release on a local server, the catalogue pointed at it (DCSBENCH_LAOM_BASE_URL),
    the catalogue sized to it, an empty DCSBENCH_HOME."""
    rel = make_release(tmp_path / "release")
    srv = FileServer()
    for name, p in rel["paths"].items():
        srv.files["/data/" + name] = p.read_bytes()
    cat = copy.deepcopy(laom.catalogue())
    files = cat["datasets"][NAME]["files"]
    files["train"]["trajectories"], files["eval"]["trajectories"] = N_TRAIN, N_EVAL
    for k in [k for k in files if k.startswith("labeled-") and int(k.split("-")[1]) not in BUDGETS]:
        del files[k]
    monkeypatch.setattr(laom, "_CATALOGUE", cat)
    monkeypatch.setenv(laom.BASE_URL_ENV, srv.url)
    monkeypatch.setenv("DCSBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DCSBENCH_DAVIS_DIR", raising=False)
    rel.update(server=srv, home=tmp_path / "home", catalogue=cat)
    try:
        yield rel
    finally:
        srv.stop()


def _quiet(msgs=None):
    return (lambda m: msgs.append(m)) if msgs is not None else (lambda m: None)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Registry


def test_registry_names_files_and_references():
    """Eight entries, file names as in the authors' data-links.txt, the paper's Table 3
    references (same as catalogue.REFERENCES), budgets 2..128, no eval file for clean."""
    assert sorted(laom.names()) == sorted(f"laom/{t}-{s}" for t in catalogue.TASKS
                                          for s in ("distractors", "clean"))
    for n in laom.names():
        ds = laom.get(n)
        diff = "scale-easy-video-hard" if ds.setting == "distractors" else "vanilla"
        assert ds.files["train"].file == f"{ds.task}-{diff}-64px-5k.hdf5"
        assert ds.files["train"].trajectories == 5000
        assert ds.budgets == list(catalogue.BUDGETS)
        assert all(ds.files[f"labeled-{b}"].file == f"{ds.task}-{diff}-labeled-1000x{b}-64px.hdf5"
                   for b in ds.budgets)
        assert ("eval" in ds.files) == (ds.setting == "distractors")
        assert ds.reference == catalogue.REFERENCES[(ds.task, ds.setting, "davis")].ret
        assert ds.background_source == "davis" and "authors" in ds.source
        assert 55e9 < ds.files["train"].approx_bytes < 70e9  # "about 60 GB" each
    assert laom.base_urls() == [laom.catalogue()["base_url"]] or os.environ.get(laom.BASE_URL_ENV)
    with pytest.raises(catalogue.UnknownNameError, match="laom/cheetah-run-distractors"):
        laom.get("laom/cheetah-run-distractor")
    with pytest.raises(ValueError, match="no eval"):
        laom.select_files(laom.get("laom/walker-run-clean"), ["eval"])
    with pytest.raises(ValueError, match="budget 3"):
        laom.select_files(laom.get(NAME), ["labeled"], budget=3)


def test_cli_list_and_info(tmp_path, capsys):
    from dcsbench.commands import data as data_cmd

    p = argparse.ArgumentParser()
    data_cmd.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["list", "--root", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for n in laom.names():
        line = next(ln for ln in out.splitlines() if ln.startswith(n + " "))
        assert "DAVIS" in line and " GB" in line
    args = p.parse_args(["info", "laom/hopper-hop-clean", "--root", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "background source davis" in out and "authors' release" in out
    assert "300 (LAOM paper, Table 3" in out and "none released" in out and "converted: no" in out


# --------------------------------------------------------------------------------------------
# Download, conversion, cache


def test_download_convert_and_second_download_from_cache(release):
    srv, home = release["server"], release["home"]
    msgs = []
    res = laom.download(NAME, progress=False, log=_quiet(msgs))
    raw = laom.raw_dir()
    assert sorted(res["downloaded"]) == sorted(release["paths"]) and res["cached"] == []
    for name, src in release["paths"].items():
        assert _sha(raw / name) == _sha(src)
        assert laom.read_hash_record()[name]["sha256"] == _sha(src)
    assert not list(raw.glob("*.part*"))
    assert any("converted into" in m for m in msgs)
    assert any("DCSBENCH_DAVIS_DIR is not set" in m for m in msgs)  # DAVIS said clearly
    assert any("conversion writes" in m and "free" in m for m in msgs)  # disk use stated first

    # the converted dataset: frames/actions as in the files, zero rewards, traj_return kept
    assert res["dataset"] == home / "datasets" / LOCAL
    tr = store.load_dataset(LOCAL, split="train", download=False)
    assert tr.n_trajectories == N_TRAIN
    np.testing.assert_array_equal(tr.frames(3), release["train"][3]["obs"])
    np.testing.assert_array_equal(tr.actions(5), release["train"][5]["actions"])
    np.testing.assert_array_equal(tr.states(0), release["train"][0]["states"])
    assert not tr.rewards(0).any()
    m = tr.manifest
    assert m["source"] == "davis" and m["tier"] == "laom" and m["protocol_compliant"] is False
    assert m["policy"]["release"] == NAME and m["policy"]["reference"]["return"] == 823.0
    assert m["policy"]["import"]["train"]["traj_returns"] == [i * 1.5 for i in range(N_TRAIN)]
    assert m["policy"]["import"]["train"]["rewards"].startswith("absent")
    assert m["splits"]["eval"]["n_trajectories"] == N_EVAL
    # the paper's labeled sets, mapped through original_traj_idx, as labeled-{B} views
    assert sorted(m["labeled_subsets"]["budgets"]) == ["2", "4"]
    assert m["labeled_subsets"]["kind"] == "laom-release" and m["labeled_subsets"]["nested"]
    for b in BUDGETS:
        lab = store.load_dataset(LOCAL, split=f"labeled-{b}", download=False)
        assert list(lab.trajectory_ids) == release["ids"][b]
        assert m["labeled_subset_hashes"][str(b)] == fmt.labeled_subset_hash(b, release["ids"][b])
        pd = store.prepare(LOCAL, b, download=False)
        assert pd.info["labeled_subset_hash"] == fmt.labeled_subset_hash(b, release["ids"][b])
        assert pd.labeled.n_trajectories == b and pd.eval_split is not None
    card = (home / "datasets" / LOCAL / "README.md").read_text()
    assert "original_traj_idx" in card
    from dcsbench.data.verify import verify

    assert verify(LOCAL).ok

    # a second download is served from the cache: no request at all, nothing rewritten
    n = len(srv.requests)
    msgs.clear()
    res2 = laom.download(NAME, progress=False, log=_quiet(msgs))
    assert len(srv.requests) == n
    assert res2["downloaded"] == [] and sorted(res2["cached"]) == sorted(release["paths"])
    assert any("already converted" in m for m in msgs)
    # DAVIS set: no notice
    os.environ["DCSBENCH_DAVIS_DIR"] = str(home)
    try:
        assert laom.davis_notice(NAME, _quiet()) is None
    finally:
        del os.environ["DCSBENCH_DAVIS_DIR"]


def test_dropped_connection_resumes_with_range_in_the_same_call(release):
    srv = release["server"]
    train = laom.get(NAME).files["train"].file
    srv.drop_after["/data/" + train] = 300_000
    msgs = []
    laom.download(NAME, splits=["train"], convert_after=False, progress=False, log=_quiet(msgs))
    first, second = srv.gets(train)
    assert first is None and second.startswith("bytes=") and 0 < int(second[6:-1]) <= 300_000
    assert _sha(laom.raw_dir() / train) == _sha(release["paths"][train])
    assert any("connection dropped" in m for m in msgs)


def test_killed_download_resumes_from_part_file(release):
    """SIGKILL a download process mid-transfer; the next call resumes it with a Range request
    from the bytes already on disk, and the result hashes right."""
    srv = release["server"]
    train = laom.get(NAME).files["train"].file
    size = len(srv.files["/data/" + train])
    srv.slow["/data/" + train] = 0.05  # 16 kB every 50 ms: ~3 s for the whole file
    cat = laom.raw_dir().parent.parent / "catalogue.json"
    cat.parent.mkdir(parents=True, exist_ok=True)
    cat.write_text(json.dumps(release["catalogue"]))
    code = ("import json, sys; from dcsbench.data import laom; "
            f"laom._CATALOGUE = json.load(open({str(cat)!r})); "
            f"laom.download({NAME!r}, splits=['train'], convert_after=False, progress=False)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = laom.raw_dir() / (train + ".part")
    sigkill_when(proc, lambda: part.is_file() and part.stat().st_size >= size // 3, timeout=60)
    kept = part.stat().st_size
    assert 0 < kept < size and not (laom.raw_dir() / train).exists()
    srv.slow.clear()
    res = laom.download(NAME, splits=["train"], convert_after=False, progress=False, log=_quiet())
    assert res["downloaded"] == [train]
    assert srv.gets(train)[-1] == f"bytes={kept}-"
    assert _sha(laom.raw_dir() / train) == _sha(release["paths"][train])
    assert laom.read_hash_record()[train]["sha256"] == _sha(release["paths"][train])


def test_truncated_transfer_and_truncated_cached_file(release):
    srv = release["server"]
    ds = laom.get(NAME)
    lab = ds.files["labeled-4"].file
    # a server that always cuts the transfer: error after the retries, the part kept, no file
    srv.drop_always["/data/" + lab] = 100_000
    with pytest.raises(laom.DownloadError, match="interrupted"):
        laom.download(NAME, splits=["labeled"], budget=4, convert_after=False, progress=False,
                      log=_quiet())
    assert not (laom.raw_dir() / lab).exists()
    kept = (laom.raw_dir() / (lab + ".part")).stat().st_size
    assert 4 * (100_000 - http.NET_CHUNK_BYTES) < kept <= 400_000  # 4 attempts x ~100 kB
    srv.drop_always.clear()
    laom.download(NAME, splits=["labeled"], budget=4, convert_after=False, progress=False, log=_quiet())
    assert _sha(laom.raw_dir() / lab) == _sha(release["paths"][lab])
    # a complete cached file truncated later: detected by its recorded size, resumed with Range
    p = laom.raw_dir() / lab
    data = p.read_bytes()
    p.write_bytes(data[:250_000])
    msgs = []
    res = laom.download(NAME, splits=["labeled"], budget=4, convert_after=False, progress=False,
                        log=_quiet(msgs))
    assert any("truncated" in m for m in msgs) and res["downloaded"] == [lab]
    assert srv.gets(lab)[-1] == "bytes=250000-"
    assert p.read_bytes() == data
    # a bit flip of the same size: caught by the recorded sha256 (mtime changed), re-fetched
    flipped = bytearray(data)
    flipped[-5000] ^= 0x10
    p.write_bytes(bytes(flipped))
    msgs.clear()
    laom.download(NAME, splits=["labeled"], budget=4, convert_after=False, progress=False,
                  log=_quiet(msgs))
    assert any("sha256" in m and "downloading it again" in m for m in msgs)
    assert p.read_bytes() == data


def test_wrong_size_bad_structure_and_known_hash(release, monkeypatch):
    srv = release["server"]
    files = release["catalogue"]["datasets"][NAME]["files"]
    lab2 = files["labeled-2"]["file"]
    size = len(srv.files["/data/" + lab2])
    files["labeled-2"]["bytes"] = size + 100  # the registry knows another size
    with pytest.raises(laom.DownloadError, match="catalogue expects"):
        laom.download(NAME, splits=["labeled"], budget=2, convert_after=False, progress=False,
                      log=_quiet())
    assert not (laom.raw_dir() / lab2).exists()
    files["labeled-2"]["bytes"] = size
    files["labeled-2"]["sha256"] = "0" * 64  # a known hash that does not match
    with pytest.raises(laom.DownloadError, match="sha256"):
        laom.download(NAME, splits=["labeled"], budget=2, convert_after=False, progress=False,
                      log=_quiet())
    assert not (laom.raw_dir() / lab2).exists() and not (laom.raw_dir() / (lab2 + ".part")).exists()
    files["labeled-2"]["sha256"] = _sha(release["paths"][lab2])  # the right one: accepted
    laom.download(NAME, splits=["labeled"], budget=2, convert_after=False, progress=False, log=_quiet())
    assert (laom.raw_dir() / lab2).is_file()
    # an HTML error page served with 200 (a broken mirror): the HDF5 check refuses it
    lab4 = files["labeled-4"]["file"]
    srv.files["/data/" + lab4] = b"<html>bucket not found</html>" * 100
    with pytest.raises(laom.DownloadError, match="not a readable HDF5"):
        laom.download(NAME, splits=["labeled"], budget=4, convert_after=False, progress=False,
                      log=_quiet())
    assert not (laom.raw_dir() / lab4).exists()
    # a labeled file with the wrong number of trajectories
    srv.files["/data/" + lab4] = release["paths"][lab2].read_bytes()
    with pytest.raises(laom.DownloadError, match="2 trajectories, the catalogue expects 4"):
        laom.download(NAME, splits=["labeled"], budget=4, convert_after=False, progress=False,
                      log=_quiet())


def test_disk_space_checked_before_any_byte(release, monkeypatch):
    srv = release["server"]
    monkeypatch.setattr(laom_fetch, "_free_bytes", lambda p: 10_000)
    with pytest.raises(laom.InsufficientSpaceError, match="need .* free"):
        laom.download(NAME, progress=False, log=_quiet())
    assert not [r for r in srv.requests if r[0] == "GET"]
    assert not list(laom.raw_dir().glob("*.hdf5*"))


def test_partial_downloads_fetch_only_what_is_asked(release, capsys):
    from dcsbench.commands import data as data_cmd

    srv = release["server"]
    ds = laom.get(NAME)
    p = argparse.ArgumentParser()
    data_cmd.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["download", NAME, "--splits", "eval,labeled", "--budget", "2"])
    assert args.func(args) == 0
    got = {Path(pth).name for m, pth, _ in srv.requests if m == "GET"}
    assert got == {ds.files["eval"].file, ds.files["labeled-2"].file}
    assert "2 file(s) downloaded" in capsys.readouterr().out
    assert laom.status(NAME)["converted"] is None  # no train file: nothing converted
    # now the train file: converted with the one labeled file present; then labeled-4 is added
    # without converting the frames again
    args = p.parse_args(["download", NAME, "--splits", "train"])
    assert args.func(args) == 0
    m = store.read_local_manifest(LOCAL)
    assert list(m["labeled_subsets"]["budgets"]) == ["2"]
    shards = {sh["path"]: sh["sha256"] for sh in m["splits"]["train"]["shards"]}
    msgs = []
    laom.download(NAME, splits=["labeled"], progress=False, log=_quiet(msgs))
    m2 = store.read_local_manifest(LOCAL)
    assert sorted(m2["labeled_subsets"]["budgets"]) == ["2", "4"]
    assert {sh["path"]: sh["sha256"] for sh in m2["splits"]["train"]["shards"]} == shards
    assert any("labeled subsets updated" in x for x in msgs)
    from dcsbench.data.verify import verify

    assert verify(LOCAL).ok  # manifest hash in origin.json follows the update
    out = capsys.readouterr().out
    args = p.parse_args(["info", NAME])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "converted: yes" in out and "sha256" in out
    args = p.parse_args(["list"])
    assert args.func(args) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(NAME + " "))
    assert " yes " in line


def test_mirror_list_falls_back_to_the_next_base_url(release, monkeypatch):
    srv = release["server"]
    monkeypatch.setenv(laom.BASE_URL_ENV, f"http://127.0.0.1:9/nothing/, {srv.url}")
    monkeypatch.setattr(http, "RETRIES", 0)
    assert laom.base_urls()[1] == srv.url
    msgs = []
    res = laom.download(NAME, splits=["labeled"], budget=2, convert_after=False, progress=False,
                        log=_quiet(msgs))
    assert res["downloaded"] == [laom.get(NAME).files["labeled-2"].file]
    assert any("127.0.0.1:9" in m or "interrupted" in m for m in msgs)
    assert laom.read_hash_record()[res["downloaded"][0]]["url"].startswith(srv.url)


def test_labeled_mapping_errors(tmp_path):
    """original_traj_idx outside the train file, or a labeled file of another train file."""
    from dcsbench.data.hdf5 import labeled_subsets_from_files

    rel = make_release(tmp_path / "a")
    other = make_release(tmp_path / "b", seed=1)
    ds = laom.get(NAME)
    train = rel["paths"][ds.files["train"].file]
    lab2 = rel["paths"][ds.files["labeled-2"].file]
    sub = labeled_subsets_from_files({2: lab2}, train)
    assert sub["budgets"]["2"]["ids"] == rel["ids"][2]
    with pytest.raises(ValueError, match="actions differ"):
        labeled_subsets_from_files({2: other["paths"][ds.files["labeled-2"].file]}, train)
    bad = tmp_path / "bad.hdf5"
    _write_authors_file(bad, [_trajectory(np.random.default_rng(3)) for _ in range(2)], "train",
                        {0: {"original_traj_idx": "17"}, 1: {"original_traj_idx": "0"}})
    with pytest.raises(ValueError, match="outside"):
        labeled_subsets_from_files({2: bad}, train)
    with pytest.raises(ValueError, match="expected 4"):
        labeled_subsets_from_files({4: lab2}, train)
