"""Tests for data collection: staged episode format, resumption, determinism, workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcsbench import catalogue
from dcsbench.data.collect import collect_episodes, episode_path, read_staged_episode
from dcsbench.experts import available_experts

T = 12  # short episodes keep the tests fast
TASK = "cheetah-run"


def _collect(out, seeds, workers=1, setting="distractors", policy="random"):
    return collect_episodes(TASK, setting, "procedural", "train", seeds, out, workers=workers,
                            policy=policy, episode_length=T, progress=False)


def test_staged_episodes_are_valid(tmp_path):
    paths = _collect(tmp_path, [3, 5])
    assert paths == [episode_path(tmp_path, 3), episode_path(tmp_path, 5)]
    ep = read_staged_episode(paths[1])
    assert ep["seed"] == 5
    assert ep["obs"].shape == (T, 64, 64, 3) and ep["obs"].dtype == np.uint8
    assert ep["actions"].shape == (T, 6) and ep["actions"].dtype == np.float32
    assert ep["rewards"].shape == (T,) and ep["states"].shape == (T, 17)
    assert ep["obs"].std() > 0  # rendered something
    summary = json.loads((tmp_path / "collect.json").read_text())
    assert summary["seeds"] == [3, 5] and summary["episodes"] == 2
    assert summary["mean_return"] == pytest.approx(np.mean(summary["returns"]), abs=1e-3)


def test_first_frame_and_state_match_the_env(tmp_path):
    """o_0 and s_0 are what make_env(frame_stack=1).reset(seed) gives."""
    from dcsbench.envs import make_env
    ep = read_staged_episode(_collect(tmp_path, [9], setting="clean")[0])
    env = make_env(TASK, "clean", frame_stack=1, episode_length=T)
    obs, info = env.reset(seed=9)
    np.testing.assert_array_equal(ep["obs"][0], obs)
    np.testing.assert_array_equal(ep["states"][0], info["state"])
    obs, reward, *_ = env.step(ep["actions"][0])
    np.testing.assert_array_equal(ep["obs"][1], obs)
    assert ep["rewards"][0] == np.float32(reward)


def test_same_command_same_bytes_and_workers_do_not_matter(tmp_path):
    # With the committed expert where there is one (covers loading it in worker processes).
    policy = "expert" if TASK in available_experts() else "random"
    seeds = [0, 1, 2]
    a = _collect(tmp_path / "a", seeds, workers=1, policy=policy)
    b = _collect(tmp_path / "b", seeds, workers=1, policy=policy)
    c = _collect(tmp_path / "c", seeds, workers=2, policy=policy)
    for pa, pb, pc in zip(a, b, c):
        assert pa.read_bytes() == pb.read_bytes() == pc.read_bytes()
    # collect.json says where the time went: start-up, steady rate, the workers' time split
    for folder, procs in (("a", 1), ("c", 2)):
        run = json.loads((tmp_path / folder / "collect.json").read_text())["last_run"]
        assert run["worker_processes"] == procs and run["frames"] == 3 * T
        assert set(run["worker_seconds"]) == {"env", "policy", "write"}
        assert run["worker_seconds"]["env"] > 0 and run["worker_seconds"]["write"] > 0
        assert run["steady_frames_per_second"] >= run["frames_per_second"]
        assert run["startup_s"] > 0 if procs > 1 else run["startup_s"] >= 0


def test_resume_keeps_finished_episodes_and_drops_partial_files(tmp_path):
    first = _collect(tmp_path, [0, 1])
    mtimes = [p.stat().st_mtime_ns for p in first]
    stale = tmp_path / "episodes" / ".ep_0000002.npz.999.tmp"
    stale.write_bytes(b"partial write of a killed run")
    paths = _collect(tmp_path, [0, 1, 2])
    assert [p.stat().st_mtime_ns for p in paths[:2]] == mtimes
    assert not stale.exists()
    assert read_staged_episode(paths[2])["seed"] == 2
    # A damaged final file (e.g. copied partially by hand) is redone.
    paths[2].write_bytes(b"garbage")
    _collect(tmp_path, [0, 1, 2])
    assert read_staged_episode(paths[2])["seed"] == 2


def test_callable_policy_and_errors(tmp_path):
    const = lambda state: np.full(6, 0.5, np.float32)  # noqa: E731
    ep = read_staged_episode(_collect(tmp_path / "c", [0], policy=const)[0])
    assert np.all(ep["actions"] == 0.5)
    with pytest.raises(ValueError, match="another configuration"):
        _collect(tmp_path / "c", [1], policy="random")
    with pytest.raises(ValueError, match="picklable"):
        _collect(tmp_path / "d", [0, 1], workers=2, policy=const)
    with pytest.raises(catalogue.UnknownNameError, match="Valid settings"):
        collect_episodes(TASK, "noisy", "procedural", "train", [0], tmp_path / "e", policy="random")
    with pytest.raises(ValueError, match="distinct"):
        _collect(tmp_path / "f", [0, 0])
    bad = tmp_path / "bad.npz"
    np.savez(bad, obs=np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="missing arrays"):
        read_staged_episode(bad)


def test_expert_policy_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("dcsbench.experts.EXPERTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="Available experts"):
        collect_episodes(TASK, "clean", "procedural", "train", [0], tmp_path / "x", progress=False)


def test_parallel_shard_encoding_writes_the_same_dataset(tmp_path, monkeypatch):
    """write_dataset(workers=2) encodes shards in worker processes: same manifest and bytes."""
    from dcsbench.data import build as build_mod
    from dcsbench.data import format as fmt

    seeds = [0, 1, 2]
    paths = _collect(tmp_path / "staged", seeds)
    monkeypatch.setattr(fmt, "SHARD_TARGET_BYTES", T * fmt.FRAME_BYTES)  # one episode per shard

    def write(name, workers):
        src = build_mod.SplitSource("train", seeds, lambda i: read_staged_episode(paths[i]),
                                    paths=paths)
        ev = build_mod.SplitSource("novel", seeds[:1], lambda i: read_staged_episode(paths[0]))
        return build_mod.write_dataset(
            tmp_path / name, name="cheetah-run-distractors-tiny", task=TASK,
            setting="distractors", tier="tiny", source="procedural", policy={"kind": "random"},
            protocol_compliant=False, splits={"train": src, "eval": ev}, budgets=[1],
            progress=False, workers=workers)

    one, two = write("one", 1), write("two", 2)
    assert len(one["splits"]["train"]["shards"]) == 3
    assert fmt.manifest_text(one) == fmt.manifest_text(two)
    for sh in one["splits"]["train"]["shards"]:
        assert (tmp_path / "one" / sh["path"]).read_bytes() == (tmp_path / "two" / sh["path"]).read_bytes()
