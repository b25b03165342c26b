"""Hub hosting end to end against the local hub server (tests/hubserver.py): publish, pinned
download, sha256 failures (bit flip, truncation, corrupted cache), resume, offline mode, a kill
in the middle of a download, ``list --remote``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from killing import sigkill_when

from dcsbench import catalogue
from dcsbench.data import cache as cache_mod
from dcsbench.data import format as fmt
from dcsbench.data import hub, store
from dcsbench.data.build import SplitSource, write_dataset

NAME = "hopper-hop-clean-tiny"
REPO = "dcsbench-test/hopper-hop-clean-tiny"
T = 20


def _episode(seed: int, salt: int = 0) -> dict:
    rng = np.random.default_rng(seed + 7919 * salt)
    return {"obs": rng.integers(0, 256, (T, 64, 64, 3), dtype=np.uint8),
            "actions": rng.uniform(-1, 1, (T, 4)).astype(np.float32),
            "rewards": rng.random(T).astype(np.float32),
            "states": rng.normal(size=(T, 15)).astype(np.float32), "seed": seed}


def _make_local(root: Path, salt: int = 0) -> dict:
    """Write a synthetic dataset (no simulator needed) into ``root``; returns its manifest."""
    splits = {"train": SplitSource("train", list(range(8)), lambda i: _episode(i, salt)),
              "eval": SplitSource("novel", [1_000_000, 1_000_001],
                                  lambda i: _episode(1_000_000 + i, salt))}
    return write_dataset(root / "datasets" / NAME, name=NAME, task="hopper-hop", setting="clean",
                         tier="tiny", source="procedural", policy={"kind": "random", "card_id": None},
                         protocol_compliant=False, splits=splits, progress=False)


@pytest.fixture
def published(hub_server, tmp_path, monkeypatch):
    """A dataset published to the test hub and pinned in the registry; DCSBENCH_HOME is empty."""
    src = tmp_path / "src_home"
    manifest = _make_local(src)
    sha = hub.publish(NAME, REPO, root=src)
    msha = fmt.sha256_file(src / "datasets" / NAME / "manifest.json")
    monkeypatch.setitem(catalogue.HUB_DATASETS, NAME, catalogue.HubDataset(REPO, sha, msha))
    home = tmp_path / "home"
    monkeypatch.setenv("DCSBENCH_HOME", str(home))
    return {"sha": sha, "manifest": manifest, "src": src, "home": home, "hub": hub_server}


def _shard(manifest: dict, split: str = "train") -> str:
    return manifest["splits"][split]["shards"][0]["path"]


def _complete(home: Path, split: str) -> bool:
    return cache_mod.split_complete(home / "datasets" / NAME, split) is not None


def test_publish_then_load_by_name(published):
    state, sha = published["hub"].state, published["sha"]
    repo = state.repo("dataset", REPO)
    _, files = repo.resolve(sha)
    assert set(files) == {"README.md", "manifest.json", _shard(published["manifest"]),
                          _shard(published["manifest"], "eval"), "preview/train-00000-of-00001.parquet",
                          "preview/eval-00000-of-00001.parquet"}
    assert f"datasets.load_dataset(\"{REPO}\", \"preview\"" in files["README.md"].decode()
    assert _shard(published["manifest"]) in repo.lfs_paths  # shards went through LFS
    ds = store.load_dataset(NAME, split="labeled-2")  # downloads + verifies on first use
    src = store.load_dataset(NAME, split="labeled-2", root=published["src"])
    np.testing.assert_array_equal(ds.frames(1), src.frames(1))
    np.testing.assert_array_equal(ds.actions(0), src.actions(0))
    assert _complete(published["home"], "train") and not _complete(published["home"], "eval")
    pd = store.prepare(NAME, 4)  # also needs (and fetches) the eval split
    assert _complete(published["home"], "eval")
    assert pd.info["revision"] == sha and pd.info["content_hash"] == published["manifest"]["content_hash"]
    from dcsbench.data.verify import verify

    assert verify(NAME).ok
    resolves = [p for m, p, _ in state.requests if "/resolve/" in p]
    assert resolves and all(f"/resolve/{sha}/" in p for p in resolves)  # pinned commit, never main


def test_pinned_revision_wins_over_newer_commits(published, tmp_path):
    other = tmp_path / "other_home"
    m2 = _make_local(other, salt=1)
    sha2 = hub.publish(NAME, REPO, root=other)
    assert sha2 != published["sha"] and m2["content_hash"] != published["manifest"]["content_hash"]
    d = hub.download(NAME)
    assert fmt.load_manifest(d / "manifest.json")["content_hash"] == published["manifest"]["content_hash"]
    d2 = hub.download(NAME, root=tmp_path / "h2", repo_id=REPO, revision=sha2)
    assert fmt.load_manifest(d2 / "manifest.json")["content_hash"] == m2["content_hash"]
    # Switching the revision of an already cached dataset replaces its arrays too.
    d3 = hub.download(NAME, repo_id=REPO, revision=sha2, log=lambda m: None)
    assert d3 == d
    for split in ("train", "eval"):
        assert cache_mod.split_complete(d3, split)["content_hash"] == m2["splits"][split]["content_hash"]
    np.testing.assert_array_equal(store.load_dataset(NAME, download=False).frames(0),
                                  _episode(0, salt=1)["obs"])


def test_bit_flipped_shard_is_refetched(published, capsys):
    state, shard = published["hub"].state, _shard(published["manifest"])
    state.corrupt[(REPO, shard)] = 1  # first GET is corrupted, the second is fine
    msgs = []
    hub.download(NAME, log=msgs.append)
    assert any(shard in m and "sha256 mismatch" in m for m in msgs)
    assert _complete(published["home"], "train")
    gets = [p for m, p, _ in state.requests if m == "GET" and p.endswith(shard)]
    assert len(gets) == 2


def test_persistently_corrupt_shard_is_reported_by_name(published):
    state, shard = published["hub"].state, _shard(published["manifest"])
    state.corrupt[(REPO, shard)] = 10
    with pytest.raises(hub.IntegrityError, match=shard.replace(".", r"\.")):
        hub.download(NAME, log=lambda m: None)
    assert not _complete(published["home"], "train")
    with pytest.raises(FileNotFoundError):
        store.load_dataset(NAME, download=False)


def test_truncated_transfer_resumes_with_range(published, monkeypatch):
    """A dropped connection is retried by huggingface_hub, resuming after the last full chunk."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)  # 10 MB by default
    state, shard = published["hub"].state, _shard(published["manifest"])
    state.truncate[(REPO, shard)] = 300_000  # connection drops after 300 kB
    hub.download(NAME, log=lambda m: None)
    assert _complete(published["home"], "train")
    ranges = [r for m, p, r in state.requests if m == "GET" and p.endswith(shard) and r]
    assert ranges == ["bytes=262144-"]  # 4 whole 64 kB chunks kept, the rest re-requested


def test_corrupted_cache_blob_is_detected_and_refetched(published):
    hub.download(NAME, log=lambda m: None)
    shard = _shard(published["manifest"])
    path = hub.shard_paths(NAME)[shard]
    blob = Path(os.path.realpath(path))
    data = bytearray(blob.read_bytes())
    data[12345] ^= 0x04
    blob.write_bytes(bytes(data[:-10]))  # bit flip and truncation of the cached copy
    from dcsbench.data.verify import verify

    rep = verify(NAME)
    assert [item for item, ok, _ in rep.checks if not ok] == [shard]
    msgs = []
    hub.download(NAME, log=msgs.append)
    assert any(shard in m for m in msgs)
    assert verify(NAME).ok


def test_offline_mode_uses_cache_and_names_missing_files(published, monkeypatch, tmp_path):
    from huggingface_hub import constants

    hub.download(NAME, splits=["train"], log=lambda m: None)
    state = published["hub"].state
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("DCSBENCH_HOME", str(tmp_path / "fresh_home"))
    n_before = len(state.requests)
    d = hub.download(NAME, splits=["train"], log=lambda m: None)  # from the HF cache only
    assert len(state.requests) == n_before
    assert cache_mod.split_complete(d, "train") is not None
    with pytest.raises(FileNotFoundError) as err:
        hub.download(NAME, log=lambda m: None)  # eval shard was never downloaded
    msg = str(err.value)
    assert "offline mode" in msg and _shard(published["manifest"], "eval") in msg
    assert _shard(published["manifest"], "train") not in msg
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_hf"))
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        hub.download(NAME, log=lambda m: None)


def test_kill_during_download_leaves_nothing_complete(published, tmp_path):
    """SIGKILL a download process in the middle of the eval shard: no split counts as complete,
    and the next download reuses the finished files (manifest, train shard) from the HF cache."""
    state, manifest = published["hub"].state, published["manifest"]
    train_shard, eval_shard = _shard(manifest), _shard(manifest, "eval")
    state.slow[(REPO, eval_shard)] = 0.1  # ~11 chunks of 64 kB: about a second
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = ("from dcsbench.data.hub import download; "
            f"download({NAME!r}, repo_id={REPO!r}, revision={published['sha']!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sigkill_when(proc, lambda: any(m == "GET" and p.endswith(eval_shard)
                                   for m, p, _ in state.requests), timeout=90, settle=0.3)
    home = published["home"]
    assert not _complete(home, "train") and not _complete(home, "eval")
    with pytest.raises(FileNotFoundError, match="not in the local cache"):
        store.load_dataset(NAME, download=False)
    state.slow.clear()
    n_train_gets = sum(1 for m, p, _ in state.requests if m == "GET" and p.endswith(train_shard))
    hub.download(NAME, log=lambda m: None)
    assert _complete(home, "train") and _complete(home, "eval")
    assert sum(1 for m, p, _ in state.requests if m == "GET" and p.endswith(train_shard)) == n_train_gets


def test_cli_download_list_remote_and_unknown_names(published, capsys):
    from dcsbench.commands import data as data_cmd

    p = argparse.ArgumentParser()
    data_cmd.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["info", NAME])  # not local yet: reads the pinned manifest from the hub
    assert args.func(args) == 0
    assert f"hub {REPO}@{published['sha'][:12]}" in capsys.readouterr().out
    args = p.parse_args(["publish", NAME, "--repo", "other/copy", "--root", str(published["src"])])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert 'HubDataset(repo_id="other/copy"' in out and published["hub"].state.repo("dataset", "other/copy")
    args = p.parse_args(["download", NAME, "--splits", "eval"])
    assert args.func(args) == 0
    assert _complete(published["home"], "eval") and not _complete(published["home"], "train")
    capsys.readouterr()
    args = p.parse_args(["list", "--remote"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith(NAME + " "))
    assert REPO in line and "6 files" in line  # card, manifest, 2 shards, 2 preview files
    with pytest.raises(catalogue.UnknownNameError, match="hopper-hop-clean-tiny"):
        hub.download("hopper-hop-clean-tinyy")
    with pytest.raises(FileNotFoundError, match="not published"):
        hub.download("walker-run-clean-tiny")


def test_fixture_supports_upload_folder(hub_server, tmp_path):
    """Other areas (leaderboard) publish whole folders with upload_folder through this fixture."""
    from huggingface_hub import HfApi, hf_hub_download

    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "index.html").write_text("<html>ok</html>")
    (site / "img" / "plot.png").write_bytes(os.urandom(5000))
    api = HfApi()
    api.create_repo("org/board", repo_type="space", space_sdk="static", exist_ok=True)
    info = api.upload_folder(folder_path=str(site), repo_id="org/board", repo_type="space")
    got = hf_hub_download("org/board", "img/plot.png", repo_type="space", revision=info.oid)
    assert Path(got).read_bytes() == (site / "img" / "plot.png").read_bytes()
    files = api.list_repo_files("org/board", repo_type="space")
    assert sorted(files) == ["img/plot.png", "index.html"]



def test_preview_config_loads_with_datasets(tmp_path, monkeypatch):
    """The built folder, loaded with ``datasets.load_dataset`` (offline, local folder): the default
    config keeps the lossless raw-bytes ``obs``; the ``preview`` config decodes ``image`` to PIL
    images equal to the frames, a few evenly spaced frames per trajectory."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    root = tmp_path / "home"
    m = _make_local(root)
    info = hub.build_preview(NAME, root=root, trajectories=5, frames=3)
    folder = root / "datasets" / NAME
    assert info["splits"]["train"] == {"trajectories": 5, "frames_per_trajectory": 3, "rows": 15,
                                       "bytes": (folder / "preview/train-00000-of-00001.parquet").stat().st_size}
    assert info["splits"]["eval"]["rows"] == 2 * 3
    card = (folder / "README.md").read_text()
    assert "config_name: preview" in card and "## Loading" in card
    pv = datasets.load_dataset(str(folder), "preview", split="train",
                               cache_dir=str(tmp_path / "hf_datasets"))
    assert isinstance(pv.features["image"], datasets.Image) and len(pv) == 15
    ids = sorted(set(pv["episode"]))
    assert ids == [0, 2, 4, 5, 7]  # evenly spaced over 8 trajectories
    assert sorted(set(pv["step"])) == [0, 10, 19]  # first, middle, last of 20 steps
    for r in (0, 7, 14):
        row = pv[r]
        ep = _episode(row["episode"])
        np.testing.assert_array_equal(np.asarray(row["image"]), ep["obs"][row["step"]])  # lossless
        np.testing.assert_allclose(row["action"], ep["actions"][row["step"]])
        assert row["seed"] == row["episode"]
    ev = datasets.load_dataset(str(folder), "preview", split="eval", cache_dir=str(tmp_path / "hf_datasets"))
    assert set(ev["seed"]) == {1_000_000, 1_000_001}
    full = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "hf_datasets"))
    assert len(full) == 8 * T and full.features["obs"].dtype == "fixed_size_binary[12288]"  # as is
    frames = fmt.frames_from_arrow(full.with_format("arrow")[0:T]["obs"])
    np.testing.assert_array_equal(frames, _episode(0)["obs"])
    assert m["content_hash"] == fmt.load_manifest(folder / "manifest.json")["content_hash"]
