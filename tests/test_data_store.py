"""Local datasets: build (collection -> shards -> cache), prepare/load_dataset, labeled subsets,
eval split, verify, interrupted builds, HDF5 import, CLI. One small dataset is built per module."""

from __future__ import annotations

import argparse
import gc
import json
import os

import numpy as np
import pytest

from dcsbench import catalogue
from dcsbench.data import build as build_mod
from dcsbench.data import cache as cache_mod
from dcsbench.data import format as fmt
from dcsbench.data import store

NAME = "cheetah-run-distractors-tiny"
N_TRAIN, N_EVAL, T = 10, 3, 12


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny random-policy dataset built once through the real collection code; records the
    collect_episodes calls."""
    import dcsbench.data.collect as collect

    os.environ.setdefault("MUJOCO_GL", "egl")
    root = tmp_path_factory.mktemp("dcs_home")
    calls = []
    real = collect.collect_episodes

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(collect, "collect_episodes", spy)
    try:
        d = build_mod.build_dataset(NAME, root=root, policy="random", episode_length=T,
                                    n_train=N_TRAIN, n_eval=N_EVAL, progress=False)
    finally:
        mp.undo()
    return root, d, calls


def _parser():
    from dcsbench.commands import data as data_cmd

    p = argparse.ArgumentParser()
    data_cmd.register(p.add_subparsers(dest="command"))
    return p


def test_build_layout_and_manifest(built):
    root, d, _ = built
    assert {p.name for p in d.iterdir()} >= {"manifest.json", "README.md", "origin.json", "data", "cache"}
    m = fmt.load_manifest(d / "manifest.json")
    assert m["protocol_compliant"] is False  # non-default sizes
    assert m["policy"]["kind"] == "random"
    tr, ev = m["splits"]["train"], m["splits"]["eval"]
    assert tr["n_trajectories"] == N_TRAIN and tr["trajectory_length"] == T
    assert tr["seeds"] == [catalogue.SPLIT_SEED_BASE["train"] + i for i in range(N_TRAIN)]
    assert ev["seeds"] == [catalogue.SPLIT_SEED_BASE["eval"] + i for i in range(N_EVAL)]
    assert tr["pool"] == "train" and ev["pool"] == "novel"
    for e in (tr, ev):
        for sh in e["shards"]:
            assert fmt.sha256_file(d / sh["path"]) == sh["sha256"]
    assert m["content_hash"] == fmt.combine_hashes({"train": tr["content_hash"], "eval": ev["content_hash"]})
    card = (d / "README.md").read_text()
    assert card.startswith("---\n") and "data/train-*.parquet" in card and m["content_hash"] in card
    assert not any(p.name.startswith(".") for p in d.parent.iterdir())  # no temp dirs left
    assert not (root / "staging").exists() or not any((root / "staging").iterdir())


def test_eval_split_uses_novel_pool(built):
    _, _, calls = built
    pools = {args[3]: args[4] for args, _ in calls}  # (task, setting, source, pool, seeds, ...)
    assert [a[3] for a, _ in calls] == ["train", "novel"]
    assert pools["novel"] == [catalogue.SPLIT_SEED_BASE["eval"] + i for i in range(N_EVAL)]
    assert all(kw["episode_length"] == T and kw["policy"] == "random" for _, kw in calls)


def test_labeled_subsets_nested_and_stable(built):
    _, d, _ = built
    m = fmt.load_manifest(d / "manifest.json")
    subsets = m["labeled_subsets"]
    assert subsets["permutation_seed"] == catalogue.LABELED_PERMUTATION_SEED
    perm = fmt.labeled_permutation(N_TRAIN)
    prev = []
    for b in ("2", "4", "8"):
        ids = subsets["budgets"][b]["ids"]
        assert ids == perm[:int(b)] and ids[:len(prev)] == prev  # nested prefixes
        assert subsets["budgets"][b]["sha256"] == fmt.labeled_subset_hash(int(b), ids)
        assert m["labeled_subset_hashes"][b] == subsets["budgets"][b]["sha256"]
        prev = ids
    assert "16" not in subsets["budgets"]  # larger than the train split
    # The published permutation must never change silently (it defines every labeled subset).
    assert fmt.labeled_permutation(16)[:8] == [13, 4, 11, 1, 3, 5, 8, 0]
    assert fmt.labeled_subset_hash(2, [13, 4]) == fmt.labeled_subset_hash(2, [13, 4])
    assert fmt.labeled_subset_hash(2, [13, 4]) != fmt.labeled_subset_hash(2, [4, 13])


def test_load_dataset_splits(built):
    import dcsbench

    root, _, _ = built
    assert dcsbench.load_dataset is store.load_dataset  # the public, lazily imported entry point
    train = store.load_dataset(NAME, split="train", root=root)
    ev = store.load_dataset(NAME, split="eval", root=root)
    lab = store.load_dataset(NAME, split="labeled-4", root=root)
    assert train.n_trajectories == N_TRAIN and ev.n_trajectories == N_EVAL
    assert train.frames(0).shape == (T, 64, 64, 3) and train.frames(0).dtype == np.uint8
    assert train.actions(0).shape == (T, 6) and train.rewards(0).shape == (T,)
    assert lab.trajectory_ids == fmt.labeled_permutation(N_TRAIN)[:4]
    i = lab.trajectory_ids[1]
    np.testing.assert_array_equal(lab.frames(1), train.frames(i))
    np.testing.assert_array_equal(lab.actions(1), train.actions(i))
    assert not train.frames(0).flags.writeable
    assert np.isclose(train.returns[2], float(train.rewards(2).sum()), atol=1e-3)
    assert ev.seeds[0] == catalogue.SPLIT_SEED_BASE["eval"]
    # eval frames differ from train frames (other seeds and background pool)
    assert not np.array_equal(ev.frames(0), train.frames(0))
    with pytest.raises(catalogue.UnknownNameError, match="labeled-4"):
        store.load_dataset(NAME, split="labeled-3", root=root)


def test_unknown_names_list_close_matches(built):
    root, _, _ = built
    with pytest.raises(catalogue.UnknownNameError, match="cheetah-run-distractors-tiny"):
        store.load_dataset("cheetah-run-distractor-tiny", root=root)
    with pytest.raises(FileNotFoundError, match="dcsbench build walker-run-clean-tiny"):
        store.load_dataset("walker-run-clean-tiny", root=root)
    with pytest.raises(catalogue.UnknownNameError, match="Valid budgets"):
        store.prepare(NAME, 3, root=root)


def test_prepare_views_match_data_and_leak_nothing(built):
    root, d, _ = built
    pd = store.prepare(NAME, 4, root=root)
    train = store.load_dataset(NAME, split="train", root=root)
    assert pd.spec.action_dim == 6 and pd.spec.obs_shape == (64, 64, 9)
    assert pd.info["labeled_subset_hash"] == fmt.labeled_subset_hash(4, pd.labeled.trajectory_ids)
    assert pd.info["content_hash"] == fmt.load_manifest(d / "manifest.json")["content_hash"]
    assert pd.unlabeled.n_trajectories == N_TRAIN and pd.labeled.n_trajectories == 4
    assert pd.eval_split.n_trajectories == N_EVAL and pd.eval_split.seeds[0] == 1_000_000
    for j, i in enumerate(pd.labeled.trajectory_ids):
        np.testing.assert_array_equal(pd.labeled.actions(j), train.actions(i))
        np.testing.assert_array_equal(pd.labeled.frames(j), train.frames(i))
    b = pd.unlabeled.sample(64, np.random.default_rng(0), max_offset=3)
    assert b["obs"].shape == (64, 64, 64, 9) and set(b) == {"obs", "next_obs", "offset"}

    # Walk everything reachable from the views: no float arrays beyond the labeled actions, no
    # file names, no strings mentioning the cache folder.
    def reachable(obj):
        seen, stack, out = set(), [obj], []
        while stack:
            o = stack.pop()
            if id(o) in seen or isinstance(o, type):
                continue
            seen.add(id(o))
            out.append(o)
            stack.extend(gc.get_referents(o))
            if isinstance(o, np.ndarray) and o.base is not None:
                stack.append(o.base)
        return out

    for view, max_float in ((pd.unlabeled, 0), (pd.labeled, 4 * T * 6)):
        objs = reachable(view)
        assert not any(hasattr(o, "filename") for o in objs)
        assert not any(isinstance(o, str) and str(root) in o for o in objs)
        floats = [o for o in objs if isinstance(o, np.ndarray) and o.dtype.kind == "f"]
        assert all(o.size <= max_float for o in floats), [o.shape for o in floats]
        if max_float == 0:
            assert not floats


def test_verify_detects_corruption(built, tmp_path):
    import shutil

    root, d, _ = built
    copy_root = tmp_path / "root"
    shutil.copytree(d, copy_root / "datasets" / NAME)
    from dcsbench.data.verify import verify

    rep = verify(NAME, root=copy_root, deep=True)
    assert rep.ok, str(rep)
    m = fmt.load_manifest(d / "manifest.json")
    shard = copy_root / "datasets" / NAME / m["splits"]["train"]["shards"][0]["path"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    shard.write_bytes(bytes(data))
    ev_shard = copy_root / "datasets" / NAME / m["splits"]["eval"]["shards"][0]["path"]
    ev_shard.write_bytes(ev_shard.read_bytes()[:1000])  # truncated
    frames = copy_root / "datasets" / NAME / "cache" / "train" / "frames.npy"
    with open(frames, "r+b") as f:
        f.seek(-5, 2)
        b = f.read(1)
        f.seek(-5, 2)
        f.write(bytes([b[0] ^ 0xFF]))
    rep = verify(NAME, root=copy_root)
    bad = {item for item, ok, _ in rep.checks if not ok}
    assert bad == {shard.relative_to(shard.parents[1]).as_posix(),
                   ev_shard.relative_to(ev_shard.parents[1]).as_posix(), "cache/train"}
    assert "train-00000-of-00001.parquet" in str(rep) and "problem" in str(rep)
    args = _parser().parse_args(["verify", NAME, "--root", str(copy_root)])
    assert args.func(args) == 1


def test_interrupted_write_leaves_nothing_complete(built, tmp_path, monkeypatch):
    """A build killed while writing shards/cache leaves no dataset and no temp folder; the next
    build succeeds (the staged episodes would be reused by collection)."""
    root, d, _ = built
    m = fmt.load_manifest(d / "manifest.json")
    src_train = store.load_dataset(NAME, "train", root=root)
    src_eval = store.load_dataset(NAME, "eval", root=root)

    def source(ds, pool):
        return build_mod.SplitSource(pool, ds.seeds, lambda i: {
            "obs": ds.frames(i), "actions": ds.actions(i), "rewards": ds.rewards(i),
            "states": ds.states(i), "seed": ds.seeds[i]})

    splits = {"train": source(src_train, "train"), "eval": source(src_eval, "novel")}
    kw = dict(name=NAME, task="cheetah-run", setting="distractors", tier="tiny", source="procedural",
              policy=m["policy"], protocol_compliant=False, splits=splits, progress=False)
    final = tmp_path / "datasets" / NAME
    real = cache_mod.write_split_cache
    calls = []

    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # train cache written, killed while writing eval
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cache_mod, "write_split_cache", dying)
    with pytest.raises(KeyboardInterrupt):
        build_mod.write_dataset(final, **kw)
    assert not final.exists() and list(final.parent.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="not in the local cache"):
        store.load_dataset(NAME, "train", root=tmp_path)
    monkeypatch.setattr(cache_mod, "write_split_cache", real)
    m2 = build_mod.write_dataset(final, **kw)
    assert m2["content_hash"] == m["content_hash"]  # deterministic: same bytes from same episodes
    assert (final / "manifest.json").read_text() == (d / "manifest.json").read_text()


def test_corrupt_cache_hash_mismatch_is_rejected(tmp_path):
    rng = np.random.default_rng(0)
    tr = {"obs": rng.integers(0, 255, (5, 64, 64, 3), dtype=np.uint8),
          "actions": np.zeros((5, 2), np.float32), "rewards": np.zeros(5, np.float32),
          "states": np.zeros((5, 3), np.float32)}
    with pytest.raises(ValueError, match="content hash"):
        cache_mod.write_split_cache(tmp_path, "train", [tr], [5], 2, 3, expected_hash="0" * 64)
    assert cache_mod.split_complete(tmp_path, "train") is None
    assert list((tmp_path / "cache").iterdir()) == []
    h = cache_mod.write_split_cache(tmp_path, "train", [tr], [5], 2, 3)
    assert cache_mod.split_complete(tmp_path, "train")["content_hash"] == h
    arr = cache_mod.read_split_arrays(tmp_path, "train", names=("frames",))["frames"]
    np.testing.assert_array_equal(arr, tr["obs"])
    assert not arr.flags.writeable and not hasattr(arr.base, "filename")


def test_parquet_readable_with_datasets(built, tmp_path):
    import datasets

    root, d, _ = built
    ds = datasets.load_dataset("parquet", data_files=str(d / "data" / "train-*.parquet"),
                               split="train", cache_dir=str(tmp_path / "hf_datasets"))
    assert len(ds) == N_TRAIN * T
    train = store.load_dataset(NAME, "train", root=root)
    x = fmt.frames_from_arrow(ds.with_format("arrow")[T + 2:2 * T]["obs"])  # sliced: offsets
    assert x.dtype == np.uint8 and x.shape == (T - 2, 64, 64, 3)
    np.testing.assert_array_equal(x, train.frames(1)[2:])
    row = ds[5]
    np.testing.assert_array_equal(np.frombuffer(row["obs"], np.uint8).reshape(64, 64, 3),
                                  train.frames(0)[5])
    assert row["episode"] == 0 and row["step"] == 5 and len(row["action"]) == 6


def test_hdf5_roundtrip_import(built, tmp_path):
    """Export in the paper's layout (with T+1 frames like a release that keeps the final obs),
    import back: identical decoded content, seeds kept, all budgets' subsets."""
    import h5py

    from dcsbench.data.hdf5 import export_hdf5, import_hdf5

    root, d, _ = built
    src = tmp_path / "train.hdf5"
    export_hdf5(NAME, src, split="train", root=root)
    ev = export_hdf5(NAME, tmp_path / "eval.hdf5", split="eval", root=root)
    with h5py.File(src, "r+") as f:  # add a final observation to every group
        for k in f:
            obs = f[k]["obs"][()]
            del f[k]["obs"]
            f[k].create_dataset("obs", data=np.concatenate([obs, obs[-1:]]))
        f.attrs["env"] = "cheetah-run"
    args = _parser().parse_args(["import-hdf5", str(src), "--name", "paper-cheetah", "--task",
                                 "cheetah-run", "--setting", "distractors", "--eval-file", str(ev),
                                 "--root", str(tmp_path / "imp")])
    assert args.func(args) == 0
    m0 = fmt.load_manifest(d / "manifest.json")
    m1 = fmt.load_manifest(tmp_path / "imp" / "datasets" / "paper-cheetah" / "manifest.json")
    assert m1["splits"]["train"]["content_hash"] == m0["splits"]["train"]["content_hash"]
    assert m1["splits"]["eval"]["content_hash"] == m0["splits"]["eval"]["content_hash"]
    assert m1["splits"]["train"]["seeds"] == m0["splits"]["train"]["seeds"]
    assert m1["policy"]["import"]["train"]["file_attrs"]["env"] == "cheetah-run"
    assert m1["protocol_compliant"] is False and m1["source"] == "davis"
    pd = store.prepare("paper-cheetah", 8, root=tmp_path / "imp")
    assert pd.labeled.n_trajectories == 8
    with pytest.raises(ValueError, match="--task"):
        import_hdf5(src, "paper-x", root=tmp_path / "imp2")
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        f.create_group("0").create_dataset("obs", data=np.zeros((3, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="actions"):
        import_hdf5(tmp_path / "bad.hdf5", "paper-bad", task="cheetah-run", setting="clean",
                    root=tmp_path / "imp3")


def test_cli_list_and_info(built, capsys):
    root, _, _ = built
    p = _parser()
    args = p.parse_args(["list", "--root", str(root)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith(NAME))
    assert "yes" in line and "walker-run-clean-full" in out
    args = p.parse_args(["info", NAME, "--root", str(root)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "labeled-2, labeled-4, labeled-8" in out and "pool novel" in out and "compliant: False" in out
    origin = json.loads((root / "datasets" / NAME / "origin.json").read_text())
    assert origin["kind"] == "local"


def test_killed_build_resumes_from_staged_episodes(tmp_path, monkeypatch):
    """A build interrupted after collection keeps its staged episodes; the next build of the same
    configuration collects nothing again and produces the dataset."""
    import dcsbench.data.collect as collect

    os.environ.setdefault("MUJOCO_GL", "egl")
    name, kw = "walker-run-clean-tiny", dict(policy="random", episode_length=5, n_train=2,
                                             n_eval=1, progress=False)
    real_write = build_mod.write_dataset
    monkeypatch.setattr(build_mod, "write_dataset",
                        lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        build_mod.build_dataset(name, root=tmp_path, **kw)
    staged = sorted((tmp_path / "staging").rglob("ep_*.npz"))
    assert len(staged) == 3 and not (tmp_path / "datasets" / name).exists()
    mtimes = [p.stat().st_mtime_ns for p in staged]
    monkeypatch.setattr(build_mod, "write_dataset", real_write)
    real_collect, seen = collect.collect_episodes, {}

    def spy(*a, **k):
        paths = real_collect(*a, **k)
        seen.update({str(p): p.stat().st_mtime_ns for p in paths})
        return paths

    monkeypatch.setattr(collect, "collect_episodes", spy)
    d = build_mod.build_dataset(name, root=tmp_path, **kw)
    assert seen == {str(p): m for p, m in zip(staged, mtimes)}  # same files, not re-rendered
    assert cache_mod.split_complete(d, "train") and cache_mod.split_complete(d, "eval")
    assert not any((tmp_path / "staging").rglob("ep_*.npz"))  # staging removed after success
