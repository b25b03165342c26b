"""Tests for data collection: staged episode format, resumption, determinism, workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcsbench import registry
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
    with pytest.raises(registry.UnknownNameError, match="Valid settings"):
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
