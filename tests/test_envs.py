"""Tests of dcsbench.envs: the Distracting Control Suite environments (fast, CPU, EGL)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import dcsbench.envs as envs
from dcsbench.envs import backgrounds, procedural
from dcsbench.envs.distractors import CameraShake, CameraShakeParams, ColorChange, _spherical
from dcsbench.catalogue import SETTINGS, TASKS, UnknownNameError

ACTION_DIMS = {"cheetah-run": 6, "walker-run": 6, "hopper-hop": 4, "humanoid-walk": 21}


def rollout(env, seed, n_steps, action_seed=0):
    """Frames, rewards and states of one seeded episode under a seeded random policy."""
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    frames, rewards, states = [obs], [], [info["state"]]
    for _ in range(n_steps):
        action = rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        assert not terminated
        frames.append(obs)
        rewards.append(reward)
        states.append(info["state"])
    return np.stack(frames), np.array(rewards), np.stack(states)


@pytest.fixture(scope="module")
def cheetah():
    env = envs.make_env("cheetah-run", "distractors", frame_stack=1)
    yield env
    env.close()


def test_shapes_and_spaces(cheetah):
    obs, info = cheetah.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert cheetah.observation_space.contains(obs)
    assert cheetah.action_space == gym.spaces.Box(-1, 1, (6,), np.float32)
    state = info["state"]
    assert state.dtype == np.float32 and state.shape == (17,)
    # info["state"] is exactly flatten_state of the dm_control observation (sorted keys).
    dm_obs = cheetah.unwrapped._env.task.get_observation(cheetah.unwrapped.physics)
    np.testing.assert_array_equal(state, envs.flatten_state(dm_obs))
    obs, reward, terminated, truncated, info = cheetah.step(cheetah.action_space.sample())
    assert isinstance(reward, float) and terminated is False and truncated is False

    stacked = envs.make_env("cheetah-run", "clean", seed=0)
    obs, _ = stacked.reset()
    assert obs.shape == (64, 64, 9) and stacked.observation_space.shape == (64, 64, 9)
    stacked.close()


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_constructs_and_steps(task):
    env = envs.make_env(task, "distractors", frame_stack=1)
    obs, info = env.reset(seed=1)
    assert env.action_space.shape == (ACTION_DIMS[task],)
    assert info["state"].shape == (env.unwrapped.state_dim,)
    for _ in range(3):
        obs, reward, *_ = env.step(env.action_space.sample())
    assert obs.shape == (64, 64, 3) and np.isfinite(reward)
    assert obs.std() > 5  # not a blank frame
    env.close()


def test_same_seed_bit_identical_different_seed_differs(cheetah):
    a = rollout(cheetah, seed=7, n_steps=50)
    other = envs.make_env("cheetah-run", "distractors", frame_stack=1)
    b = rollout(other, seed=7, n_steps=50)  # a fresh env, same seed
    c = rollout(cheetah, seed=8, n_steps=50)
    other.close()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])  # physics init differs too


def test_reset_without_seed_follows_constructor_seed():
    e1 = envs.make_env("hopper-hop", "distractors", seed=5, frame_stack=1)
    e2 = envs.make_env("hopper-hop", "distractors", seed=5, frame_stack=1)
    firsts = [(e1.reset()[0], e2.reset()[0]) for _ in range(2)]
    for x, y in firsts:
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(firsts[0][0], firsts[1][0])  # consecutive episodes differ
    e1.close()
    e2.close()


def test_clean_differs_from_distractors_and_video_is_visible(cheetah):
    clean = envs.make_env("cheetah-run", "clean", frame_stack=1)
    obs_c, _ = clean.reset(seed=3)
    obs_d, _ = cheetah.reset(seed=3)
    assert not np.array_equal(obs_c, obs_d)
    env = cheetah.unwrapped
    for _ in range(5):
        obs_d, *_ = cheetah.step(np.zeros(6, np.float32))
    sky = env._renderer.background
    assert sky.mean() > 0.2  # the sky covers a good part of the cheetah view
    # Every sky pixel shows the current video frame ...
    np.testing.assert_array_equal(obs_d[sky], env._player.frame[sky])
    # ... and differs from the clean render's skybox.
    obs_c, *_ = clean.step(np.zeros(6, np.float32))
    assert np.abs(obs_d[sky].astype(int) - obs_c[sky]).mean() > 10
    # The video moves: the background changes from step to step.
    before = env._player.frame.copy()
    cheetah.step(np.zeros(6, np.float32))
    assert not np.array_equal(before, env._player.frame)
    clean.close()


def test_humanoid_ground_is_blended_with_video():
    env = envs.make_env("humanoid-walk", "distractors", frame_stack=1)
    obs, _ = env.reset(seed=0)
    u = env.unwrapped
    floor = u._renderer.floor
    assert floor.any()
    rgb, video = u._renderer.rgb[floor].astype(float), u._player.frame[floor].astype(float)
    np.testing.assert_allclose(obs[floor], 0.3 * rgb + 0.7 * video, atol=1.0)
    env.close()


@pytest.mark.parametrize("task", ["cheetah-run", "humanoid-walk"])
def test_depth_masks_match_segmentation_masks(task):
    """The default one-pass (depth) masks agree with the exact segmentation-pass masks."""
    env = envs.make_env(task, "distractors", frame_stack=1)
    env.reset(seed=1)
    r = env.unwrapped._renderer
    rng = np.random.default_rng(0)
    sky_diff = floor_diff = total = 0
    for _ in range(15):
        env.step(rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32))
        r.render("segmentation")
        sky, floor = r.background.copy(), r.floor.copy()
        r.render("depth")
        sky_diff += int((sky != r.background).sum())
        floor_diff += int((floor != r.floor).sum())
        total += sky.size
    assert sky_diff == 0
    assert floor_diff / total < 1e-3
    assert floor.any()
    with pytest.raises(ValueError, match="depth"):
        r.render("stencil")
    env.close()


def test_clean_setting_is_deterministic_and_has_no_distractors():
    env = envs.make_env("walker-run", "clean", frame_stack=1)
    a = rollout(env, seed=2, n_steps=10)
    b = rollout(env, seed=2, n_steps=10)
    np.testing.assert_array_equal(a[0], b[0])
    assert not env.unwrapped.distractors
    env.close()


def test_frame_stack_semantics():
    env = envs.make_env("cheetah-run", "distractors", frame_stack=3)
    obs, _ = env.reset(seed=0)
    first = env.unwrapped.render()
    for k in range(3):
        np.testing.assert_array_equal(obs[..., 3 * k:3 * k + 3], first)
    prev = obs
    for _ in range(4):
        obs, *_ = env.step(env.action_space.sample())
        np.testing.assert_array_equal(obs[..., 6:9], env.unwrapped.render())  # newest last
        np.testing.assert_array_equal(obs[..., 0:6], prev[..., 3:9])  # shifted by one frame
        prev = obs
    env.close()


def test_truncation_at_episode_length():
    env = envs.make_env("cheetah-run", "clean", episode_length=5, frame_stack=1)
    env.reset(seed=0)
    flags = [env.step(np.zeros(6, np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]
    env.close()


def test_vector_env_with_explicit_seeds_equals_single_envs():
    seeds = [11, 12]
    vec = envs.make_vector_env("cheetah-run", "distractors", "novel", "procedural", num_envs=2,
                               frame_stack=3)
    obs, info = vec.reset(seed=seeds)
    assert obs.shape == (2, 64, 64, 9) and info["state"].shape == (2, 17)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(6, 2, 6)).astype(np.float32)
    vec_frames = [obs]
    for a in actions:
        vec_frames.append(vec.step(a)[0])
    vec.close()
    for i, seed in enumerate(seeds):
        env = envs.make_env("cheetah-run", "distractors", backgrounds="novel", frame_stack=3)
        o, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(o, vec_frames[0][i])
        for t, a in enumerate(actions):
            o = env.step(a[i])[0]
            np.testing.assert_array_equal(o, vec_frames[t + 1][i])
        env.close()


def test_gym_make_ids_registered():
    for task in TASKS:
        for setting in SETTINGS:
            assert envs.env_id(task, setting) in gym.registry
    env = gym.make("dcsbench/cheetah-run-distractors-v1", backgrounds="novel", frame_stack=1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3)
    assert env.unwrapped.backgrounds == "novel"
    env.close()


@pytest.mark.parametrize("kwargs, valid", [
    (dict(task="cheetah-runn"), "cheetah-run"),
    (dict(task="cheetah-run", setting="noisy"), "distractors"),
    (dict(task="cheetah-run", source="youtube"), "procedural"),
    (dict(task="cheetah-run", backgrounds="test"), "novel"),
])
def test_unknown_names_list_valid_ones(kwargs, valid):
    with pytest.raises(UnknownNameError, match=valid):
        envs.make_env(**kwargs)
    with pytest.raises(UnknownNameError, match=valid):
        envs.make_vector_env(**{"task": "cheetah-run", **kwargs})


def test_procedural_pools_disjoint_deterministic_and_different_in_style():
    src = backgrounds.get_source("procedural")
    train, novel = src.videos("train"), src.videos("novel")
    assert len(train) == 60 and len(novel) == 30 and not set(train) & set(novel)
    a = procedural.generate_clip("train", 3)
    np.testing.assert_array_equal(a, procedural.generate_clip("train", 3))
    assert a.shape == (procedural.CLIP_LENGTH, 64, 64, 3) and a.dtype == np.uint8
    b = procedural.generate_clip("novel", 3)
    assert not np.array_equal(a, b)
    # Videos move, smoothly: consecutive frames differ but only a little on average.
    step = np.abs(np.diff(a.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert (step > 0).all() and step.mean() < 20
    # Styles differ in kind: novel clips are more saturated and have sharper edges.
    def saturation(x):
        x = x.astype(float)
        return (x.max(-1) - x.min(-1)).mean()
    def edges(x):
        return np.abs(np.diff(x.astype(float), axis=2)).mean()
    tr = [procedural.generate_clip("train", i)[::10] for i in range(4)]
    nv = [procedural.generate_clip("novel", i)[::10] for i in range(4)]
    assert np.mean([saturation(x) for x in nv]) > np.mean([saturation(x) for x in tr])
    assert np.mean([edges(x) for x in nv]) > np.mean([edges(x) for x in tr])


def test_player_ping_pong():
    class Tiny(backgrounds.BackgroundSource):
        def videos(self, pool):
            return ["v"]

        def _load(self, pool, video):
            return np.arange(3, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3),
                                                                             np.uint8)

    player = backgrounds.BackgroundPlayer(Tiny(size=2), "train")
    player.reset(np.random.default_rng(0))
    seq = [int(player.frame[0, 0, 0])]
    for _ in range(8):
        player.step()
        seq.append(int(player.frame[0, 0, 0]))
    assert all(abs(x - y) == 1 for x, y in zip(seq, seq[1:]))  # moves one frame a step
    assert set(seq) == {0, 1, 2}  # bounces, never leaves the clip


def test_camera_shake_stays_within_paper_limits(cheetah):
    cheetah.reset(seed=0)
    physics = cheetah.unwrapped.physics
    params = CameraShakeParams(scale=0.1)
    shake = CameraShake(0, params)
    rng = np.random.default_rng(0)
    shake.reset(physics, rng)
    r0, az0, el0 = shake._base
    states = []
    for _ in range(3000):
        shake.step(rng)
        states.append(shake.state)
    states = np.array(states)
    sph = np.array([_spherical(s[:3]) for s in states])
    eps = 1e-9
    assert np.all(np.abs(sph[:, 1] - az0) <= params.angle_delta + eps)
    assert np.all(sph[:, 2] >= min(0.0, el0) - eps)  # upper quadrant
    assert np.all(sph[:, 2] <= el0 + params.angle_delta + eps)
    assert np.all(sph[:, 0] >= r0 * (1 - 0.05) - eps) and np.all(sph[:, 0] <= r0 * 1.15 + eps)
    assert np.all(np.abs(states[:, 3]) <= math.pi / 20 + eps)
    speeds = np.linalg.norm(np.diff(states[:, :3], axis=0), axis=1)
    # (projection back into the allowed set is not exactly non-expansive: 1% slack)
    assert speeds.max() <= params.max_vel * 1.01 and speeds.mean() > 1e-3  # it moves


def test_colour_change_bounded_and_dynamic(cheetah):
    physics = cheetah.unwrapped.physics
    color = ColorChange(physics, scale=0.1)
    rng = np.random.default_rng(0)
    color.reset(rng)
    deltas = []
    for _ in range(500):
        color.step(rng)
        deltas.append(color.delta)
    deltas = np.array(deltas)
    assert np.all(np.abs(deltas) <= 0.1 + 1e-12)
    assert np.abs(np.diff(deltas, axis=0)).max() > 0
    color.restore()


def _write_fake_davis(root, train=("bear", "camel", "dog"), val=("cows", "goat")):
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("\n".join(train) + "\n")
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(val) + "\n")
    colours = {}
    for name in (*train, *val):
        folder = root / "JPEGImages" / "480p" / name
        folder.mkdir(parents=True)
        colours[name] = rng.integers(30, 225, size=3)
        for i in range(4):
            img = np.broadcast_to(colours[name], (48, 80, 3)).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{i:05d}.jpg", quality=95)
    return colours


def test_davis_source_on_fake_folder(tmp_path):
    colours = _write_fake_davis(tmp_path)
    src = backgrounds.DavisSource(tmp_path)
    assert src.videos("train") == ["bear", "camel", "dog"]
    clip = src.clip("train", 1)
    assert clip.shape == (4, 64, 64, 3) and not clip.flags.writeable
    env = envs.make_env("cheetah-run", "distractors", backgrounds="novel", source="davis",
                        davis_dir=tmp_path, frame_stack=1)
    obs, info = env.reset(seed=0)
    u = env.unwrapped
    assert u._player.source.videos("novel") == ["cows", "goat"]
    video = u._player.source.videos("novel")[info["video"]]
    sky = u._renderer.background
    assert np.abs(obs[sky].astype(int) - colours[video]).max() <= 3  # JPEG round trip
    env.close()

    # A wrong folder names what is missing.
    with pytest.raises(FileNotFoundError, match="ImageSets/2017/train.txt"):
        backgrounds.DavisSource(tmp_path / "nowhere")
    import shutil
    shutil.rmtree(tmp_path / "JPEGImages" / "480p" / "goat")
    with pytest.raises(FileNotFoundError, match="goat"):
        backgrounds.DavisSource(tmp_path)


def test_show_env_writes_png(tmp_path):
    import argparse

    from PIL import Image

    from dcsbench.commands import envs as envs_cmd

    parser = argparse.ArgumentParser()
    envs_cmd.register(parser.add_subparsers())
    out = tmp_path / "grid.png"
    args = parser.parse_args(["show-env", "hopper-hop", "--episodes", "1", "--steps", "0,3",
                              "--scale", "1", "-o", str(out)])
    assert args.func(args) == 0
    with Image.open(out) as im:
        assert im.size == (64 * 2 + 2, 64 * 2 + 8)  # 2 steps x (train, novel) rows
    args = parser.parse_args(["show-env", "hopper-hopp", "-o", str(out)])
    with pytest.raises(UnknownNameError, match="hopper-hop"):  # the CLI prints it, exit 2
        args.func(args)


def test_procedural_clips_disk_cache_is_exact_and_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("DCSBENCH_CLIP_CACHE", str(tmp_path / "clips"))
    first = backgrounds.ProceduralSource(64).clip("novel", 3)        # generates and stores
    files = list((tmp_path / "clips").glob("procedural-*/novel-003-64.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(first, procedural.generate_clip("novel", 3, size=64))
    again = backgrounds.ProceduralSource(64).clip("novel", 3)        # another process's view
    assert isinstance(again.base, np.memmap) or isinstance(again, np.memmap)
    np.testing.assert_array_equal(again, first)
    files[0].write_bytes(b"damaged")                                 # damaged: regenerated
    np.testing.assert_array_equal(backgrounds.ProceduralSource(64).clip("novel", 3), first)
    monkeypatch.setenv("DCSBENCH_CLIP_CACHE", "off")
    assert backgrounds.clip_cache_dir() is None
