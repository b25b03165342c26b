"""Data checked when it is used (issue 19, item 2): each attack of the hostile tester on a local
dataset, with the outcome now required. Every test works on a copy of the session's tiny dataset
(tests/conftest.py ``tiny_dataset_root``: 4 train + 2 eval trajectories of 20 steps)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dcsbench.data import build as build_mod
from dcsbench.data import cache as cache_mod
from dcsbench.data import format as fmt
from dcsbench.data import store
from dcsbench.data.verify import verify

NAME = "cheetah-run-distractors-tiny"


@pytest.fixture
def home(tiny_dataset_root, tmp_path):
    """A private copy of the tiny dataset: ``(root, dataset folder)``."""
    root = tmp_path / "home"
    shutil.copytree(tiny_dataset_root / "datasets" / NAME, root / "datasets" / NAME)
    return root, root / "datasets" / NAME


def _flip(path, at: int = 1000) -> None:
    """Flip one byte ``at`` bytes into the array data of a ``.npy`` file (after its header)."""
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
    with open(path, "r+b") as f:
        f.seek(offset + at)
        b = f.read(1)
        f.seek(offset + at)
        f.write(bytes([b[0] ^ 0xFF]))


def _edit_manifest(d, change, fix_origin: bool = True) -> None:
    """Rewrite the manifest with ``change(manifest)`` applied; with ``fix_origin`` also the sha256
    in origin.json (a tamperer covering their tracks)."""
    m = json.loads((d / fmt.MANIFEST).read_text())
    change(m)
    text = fmt.manifest_text(m)
    (d / fmt.MANIFEST).write_text(text)
    if fix_origin:
        origin = json.loads((d / "origin.json").read_text())
        origin["manifest_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        (d / "origin.json").write_text(json.dumps(origin))


def _drop_shards(d) -> None:
    shutil.rmtree(d / fmt.DATA_DIR)


def _split_hash(ds) -> str:
    h = fmt.ContentHasher()
    for i in range(ds.n_trajectories):
        h.add(ds.frames(i), ds.actions(i), ds.rewards(i), ds.states(i))
    return h.hexdigest()


# --------------------------------------------------------------------------- corrupt caches


@pytest.mark.parametrize("array", ["frames", "actions"])
def test_flipped_byte_is_redecoded_from_shards(home, tiny_dataset_root, array, capsys):
    root, d = home
    good = store.load_dataset(NAME, "train", root=tiny_dataset_root)
    expected = {k: [np.array(getattr(good, k)(i)) for i in range(len(good))] for k in ("frames", "actions")}
    _flip(d / "cache" / "train" / f"{array}.npy")

    ds = store.load_dataset(NAME, "train", root=root)
    for i in range(len(ds)):
        np.testing.assert_array_equal(ds.frames(i), expected["frames"][i])
        np.testing.assert_array_equal(ds.actions(i), expected["actions"][i])
    err = capsys.readouterr().err
    assert f"{array}.npy" in err and "re-decoding the train split" in err

    _flip(d / "cache" / "train" / f"{array}.npy")  # again, now through prepare
    pd = store.prepare(NAME, 2, root=root)
    m = fmt.load_manifest(d / fmt.MANIFEST)
    assert pd.info["content_hash"] == m["content_hash"]
    for j, i in enumerate(pd.labeled.trajectory_ids):
        np.testing.assert_array_equal(pd.labeled.actions(j), expected["actions"][i])
        np.testing.assert_array_equal(pd.labeled.frames(j), expected["frames"][i])
    assert verify(NAME, root=root).ok


@pytest.mark.parametrize("array", ["frames", "actions"])
def test_flipped_byte_without_shards_is_refused_naming_the_file(home, array):
    root, d = home
    _flip(d / "cache" / "train" / f"{array}.npy")
    _drop_shards(d)
    for call in (lambda: store.load_dataset(NAME, "train", root=root),
                 lambda: store.prepare(NAME, 2, root=root)):
        with pytest.raises(ValueError) as exc:
            call()
        msg = str(exc.value)
        assert f"cache/train/{array}.npy" in msg and "cannot re-decode" in msg
        assert f"dcsbench build {NAME}" in msg and "dcsbench download" not in msg


def test_truncated_frames_named_by_verify_and_redecoded(home, capsys):
    root, d = home
    frames = d / "cache" / "train" / "frames.npy"
    size = frames.stat().st_size
    os.truncate(frames, size - 5000)
    rep = verify(NAME, root=root)  # used to crash: "buffer is smaller than requested size"
    bad = [(item, detail) for item, ok, detail in rep.checks if not ok]
    assert len(bad) == 1 and bad[0][0] == "cache/train"
    assert "cache/train/frames.npy: truncated" in bad[0][1] and str(size - 5000) in bad[0][1]
    ds = store.load_dataset(NAME, "train", root=root)
    assert ds.frames(len(ds) - 1).shape[1:] == (64, 64, 3) and frames.stat().st_size == size
    assert "frames.npy: truncated" in capsys.readouterr().err
    assert verify(NAME, root=root).ok


def test_record_content_hash_is_computed_from_what_was_read(home):
    root, d = home
    pd = store.prepare(NAME, 2, root=root)
    got = fmt.combine_hashes({"train": _split_hash(store.load_dataset(NAME, "train", root=root)),
                              "eval": _split_hash(store.load_dataset(NAME, "eval", root=root))})
    assert pd.info["content_hash"] == got
    # eval data damaged and not repairable: today the record would still cite the manifest's hash
    _flip(d / "cache" / "eval" / "frames.npy", at=7)
    _drop_shards(d)
    with pytest.raises(ValueError, match="cache/eval/frames.npy"):
        store.prepare(NAME, 2, root=root)
    assert pd.info["content_check"] == {"train": "full", "eval": "full"}


def test_sampled_check_above_the_threshold(home, monkeypatch):
    root, d = home
    monkeypatch.setattr(cache_mod, "FULL_CHECK_MAX_BYTES", 0)
    pd = store.prepare(NAME, 2, root=root)
    assert pd.info["content_check"] == {"train": "sampled", "eval": "sampled"}
    _drop_shards(d)
    _flip(d / "cache" / "train" / "actions.npy", at=3)  # small arrays: hashed in full
    with pytest.raises(ValueError, match="actions.npy"):
        store.prepare(NAME, 2, root=root)


def test_old_complete_is_checked_in_full_then_upgraded(home, capsys):
    root, d = home
    for split in ("train", "eval"):
        p = d / "cache" / split / cache_mod.COMPLETE
        rec = json.loads(p.read_text())
        p.write_text(json.dumps({k: rec[k] for k in ("content_hash", "n_trajectories", "n_frames")}))
    _flip(d / "cache" / "eval" / "states.npy", at=11)
    store.prepare(NAME, 2, root=root)
    assert "re-decoding the eval split" in capsys.readouterr().err  # damage found by the full check
    rec = json.loads((d / "cache" / "train" / cache_mod.COMPLETE).read_text())
    assert rec["version"] == cache_mod.COMPLETE_VERSION and set(rec["files"]) == {
        f"{k}.npy" for k in cache_mod.ARRAYS}


# --------------------------------------------------------------------------- tampered manifests


@pytest.mark.parametrize("fix_origin", [False, True])
def test_labeled_subset_listing_every_id_is_refused(home, fix_origin):
    root, d = home

    def all_ids(m):
        n = m["splits"]["train"]["n_trajectories"]
        m["labeled_subsets"]["budgets"]["2"]["ids"] = list(range(n))

    _edit_manifest(d, all_ids, fix_origin=fix_origin)
    for call in (lambda: store.prepare(NAME, 2, root=root),
                 lambda: store.load_dataset(NAME, "labeled-2", root=root)):
        with pytest.raises(ValueError) as exc:
            call()
        msg = str(exc.value)
        assert "manifest.json" in msg and "labeled-2 lists 4 ids" in msg
        assert ("origin.json recorded" in msg) != fix_origin
    rep = verify(NAME, root=root)
    assert not rep.ok and any("labeled-2" in detail for _, ok, detail in rep.checks if not ok)


def test_trajectory_length_999_is_refused(home):
    root, d = home
    _edit_manifest(d, lambda m: m["splits"]["train"].update(trajectory_length=999))
    with pytest.raises(ValueError, match="trajectory_length 999 but the longest"):
        store.prepare(NAME, 2, root=root)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(protocol_compliant=True), "claims protocol_compliant"),
    (lambda m: m["splits"]["train"]["lengths"].__setitem__(0, 19), "does not describe the train"),
    (lambda m: m["labeled_subset_hashes"].update({"2": "0" * 64}), "labeled_subset_hashes"),
    (lambda m: m.update(content_hash="1" * 64), "content_hash is not the combination"),
])
def test_other_manifest_edits_are_refused(home, change, message):
    root, d = home
    _edit_manifest(d, change)
    with pytest.raises(ValueError, match=message):
        store.prepare(NAME, 2, root=root)


def test_committed_known_build_pins_the_labeled_hashes(home, monkeypatch, tmp_path):
    """A build whose content hash is committed as known must carry the known labeled hashes."""
    root, d = home
    m = fmt.load_manifest(d / fmt.MANIFEST)
    known = tmp_path / "known.json"
    known.write_text(json.dumps({"datasets": {NAME: [{
        "revision": "local", "source": m["source"], "content_hash": m["content_hash"],
        "labeled_subset_hashes": {"2": "f" * 64}}]}}))
    import dcsbench.data.known as kd

    monkeypatch.setattr(kd, "KNOWN_DATASETS_FILE", known)
    monkeypatch.setattr(kd.read_committed, "__defaults__", (known,))
    with pytest.raises(ValueError, match="committed known build"):
        store.prepare(NAME, 2, root=root)


# --------------------------------------------------------------------------- budget "all"


def test_budget_all_and_harness_only_train_labels(home):
    root, d = home
    train = store.load_dataset(NAME, "train", root=root)
    n = len(train)
    pd = store.prepare(NAME, "all", root=root)
    assert pd.labeled.trajectory_ids == tuple(range(n)) and pd.info["budget"] == n
    assert pd.info["labeled_subset_hash"] == fmt.labeled_subset_hash(n, list(range(n)))
    pd2 = store.prepare(NAME, 2, root=root)
    assert pd2.labeled.n_trajectories == 2 and pd2.info["budget"] == 2
    assert pd2.info["labeled_subset_hash"] == fmt.load_manifest(d / fmt.MANIFEST)[
        "labeled_subset_hashes"]["2"]
    for p in (pd, pd2):
        assert p.train_labeled.trajectory_ids == tuple(range(n))
        for i in range(n):
            np.testing.assert_array_equal(p.train_labeled.actions(i), train.actions(i))
            np.testing.assert_array_equal(p.train_labeled.frames(i), train.frames(i))
    with pytest.raises(ValueError, match="budget"):
        store.prepare(NAME, "some", root=root)
    with pytest.raises(ValueError, match="budget"):
        store.prepare(NAME, 3, root=root)


# --------------------------------------------------------------------------- temp folders


def test_stale_temp_folders_are_cleaned(home):
    root, d = home
    datasets = root / "datasets"
    # a build killed with SIGKILL while writing (its .owner lock dies with it)
    code = ("import sys, time; from pathlib import Path; from dcsbench.data import cache\n"
            "with cache.owned_tempdir(Path(sys.argv[1]), '.' + sys.argv[2] + '.tmp-') as t:\n"
            "    (t / 'big').write_bytes(b'x' * 1000); print(t, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(datasets), NAME], stdout=subprocess.PIPE,
                            text=True)
    killed = datasets / os.path.basename(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert killed.is_dir()
    old = datasets / f".{NAME}.tmp-legacy"  # left by an older dcsbench: no .owner, an hour old
    old.mkdir()
    os.utime(old, (time.time() - 3600,) * 2)
    young = datasets / f".{NAME}.tmp-young"  # no .owner yet, just created: maybe being written
    young.mkdir()
    split_tmp = d / "cache" / ".train.tmp-dead"
    split_tmp.mkdir()
    (split_tmp / cache_mod.OWNER_FILE).write_text("{}")  # owner file, nobody holds the lock
    other = datasets / "unrelated.tmp-keep"  # not our pattern
    other.mkdir()
    with cache_mod.owned_tempdir(datasets, f".{NAME}.tmp-") as live:  # a writer at work
        store.load_dataset(NAME, "train", root=root)
        assert live.is_dir()
    assert not killed.exists() and not old.exists() and not split_tmp.exists()
    assert young.is_dir() and other.is_dir()
    assert not live.exists()  # the block ended without renaming it: removed by its owner


# --------------------------------------------------------------------------- missing manifest


def test_missing_manifest_one_message_everywhere(home, capsys):
    root, d = home
    (d / fmt.MANIFEST).unlink()
    msgs = set()
    from dcsbench.data import hub

    for call in (lambda: store.load_dataset(NAME, "train", root=root, download=False),
                 lambda: store.prepare(NAME, 2, root=root, download=False),
                 lambda: verify(NAME, root=root),
                 lambda: hub.publish(NAME, "org/none", root=root)):
        with pytest.raises(FileNotFoundError) as exc:
            call()
        msgs.add(str(exc.value))
    import argparse

    from dcsbench.commands import data as data_cmd

    parser = argparse.ArgumentParser()
    data_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["info", NAME, "--root", str(root)])
    with pytest.raises(FileNotFoundError) as exc:
        args.func(args)
    msgs.add(str(exc.value))
    assert len(msgs) == 1, msgs
    msg = msgs.pop()
    assert repr(NAME) in msg and str(d / fmt.MANIFEST) in msg and f"`dcsbench build {NAME}`" in msg


def test_missing_manifest_hint_follows_origin(home, monkeypatch):
    root, d = home
    from dcsbench import catalogue

    monkeypatch.setitem(catalogue.HUB_DATASETS, NAME, catalogue.HubDataset(
        repo_id="org/x", revision="0" * 40, manifest_sha256="0" * 64))
    (d / fmt.MANIFEST).unlink()
    (d / "origin.json").write_text(json.dumps({"kind": "hub"}))
    assert f"`dcsbench download {NAME}`" in str(build_mod.missing_manifest_error(NAME, root))
    (d / "origin.json").write_text(json.dumps({"kind": "local"}))
    assert f"`dcsbench build {NAME}`" in str(build_mod.missing_manifest_error(NAME, root))


# --------------------------------------------------------------------------- complex actions


def test_complex_actions_are_refused_not_truncated(tmp_path):
    t = 4
    ep = {"obs": np.zeros((t, 64, 64, 3), np.uint8), "actions": np.full((t, 2), 1 + 2j),
          "rewards": np.zeros(t, np.float32), "states": np.zeros((t, 3), np.float32), "seed": 0}
    with pytest.raises(ValueError, match="trajectory 0: actions must be real numbers, got dtype complex128"):
        fmt.episode_table(0, ep, fmt.arrow_schema(2, 3))
    import h5py

    from dcsbench.data.hdf5 import import_hdf5

    path = tmp_path / "train.hdf5"
    with h5py.File(path, "w") as f:
        g = f.create_group("0")
        g["obs"] = ep["obs"]
        g["actions"] = ep["actions"]
    with pytest.raises(ValueError, match="actions must be real numbers"):
        import_hdf5(path, "laom-complex", task="cheetah-run", setting="distractors",
                    root=tmp_path / "home")
