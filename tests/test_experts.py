"""Tests for the expert policies: export equals SB3, loading errors, exact resumable training."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from dcsbench import catalogue
from dcsbench.experts import ExpertPolicy, available_experts, load_expert
from dcsbench.experts import train as tr
from dcsbench.experts.policy import from_sb3
from dcsbench.experts.stateenv import StateEnv
from dcsbench.envs.state import flatten_state

torch.set_num_threads(1)
TASK = "cheetah-run"


def _small_sac(**changes):
    """A SAC config small enough for tests: 200-step episodes (a checkpoint every 200 steps),
    32x32 networks, updates from step 300; ``changes`` override any field."""
    return tr.SACConfig(**{**dict(learning_starts=300, buffer_size=5000, batch_size=32,
                                  net_arch=[32, 32], episode_length=200), **changes})


def _cli(argv):
    from dcsbench.commands import experts
    parser = argparse.ArgumentParser()
    experts.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_state_env_matches_flatten_state_and_is_seeded():
    env = StateEnv(TASK)
    s0, _ = env.reset(seed=7)
    s1, _ = env.reset(seed=7)
    np.testing.assert_array_equal(s0, s1)
    assert s0.dtype == np.float32 and s0.shape == env.observation_space.shape
    # The observation is flatten_state of the dm_control observation (sorted keys).
    obs = env._env.task.get_observation(env._env.physics)
    np.testing.assert_array_equal(s0, flatten_state(obs))
    steps = 0
    while True:
        _, _, term, trunc, _ = env.step(np.zeros(6, np.float32))
        steps += 1
        if term or trunc:
            break
    assert steps == catalogue.EPISODE_LENGTH and trunc and not term


def test_exported_policy_equals_sb3_deterministic_action(tmp_path):
    model, env = tr._build(TASK, 1, 0, tr.PPOConfig(), episodes_done=0)
    try:
        rng = np.random.default_rng(0)
        env.obs_rms.update(rng.normal(2.0, 3.0, (500, 17)))  # non-trivial normalisation
        states = rng.normal(2.0, 5.0, (64, 17)).astype(np.float32)
        expected, _ = model.predict(env.normalize_obs(states), deterministic=True)
        expected = np.clip(expected, -1, 1)
        policy = from_sb3(model, env, TASK)
        np.testing.assert_allclose(policy(states), expected, atol=1e-5)
        np.testing.assert_allclose(policy(states[0]), expected[0], atol=1e-5)
        loaded = ExpertPolicy.load(policy.save(tmp_path / "p.safetensors"))
        np.testing.assert_array_equal(loaded(states), policy(states))
        assert loaded(states).dtype == np.float32 and np.abs(loaded(states)).max() <= 1
    finally:
        env.close()


def test_load_expert_errors(tmp_path, monkeypatch):
    with pytest.raises(catalogue.UnknownNameError, match="Valid tasks"):
        load_expert("cheetah-walk")
    monkeypatch.setattr("dcsbench.experts.EXPERTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="Available experts: none"):
        load_expert("hopper-hop")
    with pytest.raises(ValueError, match="not a dcsbench expert"):
        from safetensors.numpy import save_file
        save_file({"x": np.zeros(2)}, str(tmp_path / "bad.safetensors"))
        load_expert("hopper-hop", path=tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="expected a state"):
        ExpertPolicy("cheetah-run", np.zeros(3), np.ones(3), [np.zeros((2, 3))], [np.zeros(2)])(np.zeros(4))


def test_train_resume_is_exact_and_exports(tmp_path, monkeypatch):
    once = tr.train_expert(TASK, tmp_path / "once", total_steps=3000, n_envs=1, export=False,
                           log=lambda *_: None)
    assert once["finished"] and once["num_timesteps"] == 3000
    chunks = []
    for _ in range(4):  # a tiny time limit stops after every update
        chunks.append(tr.train_expert(TASK, tmp_path / "chunks", total_steps=3000, n_envs=1,
                                      max_minutes=1e-4, eval_episodes=1, log=lambda *_: None))
    assert [c["num_timesteps"] for c in chunks] == [1000, 2000, 3000, 3000]
    assert [c["finished"] for c in chunks] == [False, False, True, True]
    a, b = tr.policy_from_checkpoint(tmp_path / "once"), tr.policy_from_checkpoint(tmp_path / "chunks")
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.obs_var, b.obs_var)
    # Export: weights + card; installing and re-evaluating reproduces the card.
    card = json.loads((tmp_path / "chunks/export/cheetah-run.json").read_text())
    assert card["steps"] == 3000 and card["eval"]["episodes"] == 1
    assert card["command"] == "dcsbench train-expert cheetah-run --total-steps 3000 --n-envs 1 --seed 0"
    monkeypatch.setattr("dcsbench.experts.EXPERTS_DIR", tmp_path / "installed")
    (tmp_path / "installed").mkdir()
    tr.install_export(tmp_path / "chunks", tmp_path / "installed")
    assert _cli(["expert-eval", TASK, "--episodes", "1"]) == 0
    # A different configuration in the same folder is refused.
    with pytest.raises(ValueError, match="seed"):
        tr.train_expert(TASK, tmp_path / "chunks", total_steps=3000, n_envs=1, seed=1)


def test_train_checkpoints_on_sigterm(tmp_path):
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        status = tr.train_expert(TASK, tmp_path, total_steps=20_000, n_envs=1, log=lambda *_: None)
    finally:
        timer.cancel()
    assert not status["finished"] and 1000 <= status["num_timesteps"] < 20_000
    assert (tmp_path / "checkpoints" / f"step_{status['num_timesteps']:012d}" / "state.json").is_file()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["chunks"][-1]["reason"] == "SIGTERM"


def test_stop_at_exports_an_intermediate_expert(tmp_path):
    status = tr.train_expert(TASK, tmp_path, total_steps=3000, n_envs=1, stop_at=1000,
                             eval_episodes=1, log=lambda *_: None)
    assert status["num_timesteps"] == 1000 and not status["finished"] and "export" in status
    card = json.loads((tmp_path / "export" / f"{TASK}.json").read_text())
    assert card["steps"] == 1000 and card["command"].endswith("--seed 0 --stop-at 1000")
    assert "--stop-at 1000" in (tmp_path / "export" / f"{TASK}.md").read_text()
    # Same weights as the first update of an uninterrupted run with the same total.
    other = tr.train_expert(TASK, tmp_path / "b", total_steps=3000, n_envs=1, max_minutes=1e-4,
                            export=False, log=lambda *_: None)
    assert other["num_timesteps"] == 1000
    a, b = tr.policy_from_checkpoint(tmp_path), tr.policy_from_checkpoint(tmp_path / "b")
    np.testing.assert_array_equal(a.weights[0], b.weights[0])


def test_sac_resume_is_exact_and_export_matches(tmp_path):
    cfg = _small_sac()  # short episodes: checkpoints every 200 steps
    quiet = lambda *_: None  # noqa: E731
    tr.train_expert(TASK, tmp_path / "once", total_steps=600, n_envs=1, config=cfg,
                    export=False, log=quiet)
    for _ in range(3):
        status = tr.train_expert(TASK, tmp_path / "chunks", total_steps=600, n_envs=1, config=cfg,
                                 max_minutes=1e-4, export=False, log=quiet)
    assert status["finished"] and status["num_timesteps"] == 600
    a, b = tr.policy_from_checkpoint(tmp_path / "once"), tr.policy_from_checkpoint(tmp_path / "chunks")
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)
    assert b.output == "tanh"
    model, env = tr._build(TASK, 1, 0, cfg, 0)
    ckpt = tr._latest_checkpoint(tmp_path / "chunks")
    model.policy.load_state_dict(torch.load(ckpt / "policy.pt", weights_only=True))
    states = np.random.default_rng(0).normal(size=(16, 17)).astype(np.float32)
    expected, _ = model.predict(states, deterministic=True)
    np.testing.assert_allclose(b(states), expected, atol=1e-5)
    env.close()
    with pytest.raises(ValueError, match="one env"):
        tr.train_expert(TASK, tmp_path / "x", total_steps=2000, n_envs=2, config=cfg)


def test_snapshots_change_nothing_and_select_best_exports_the_best_on_other_seeds(tmp_path, monkeypatch):
    """Snapshots keep the policy every N steps without changing training; --select-best scores
    every snapshot and the last checkpoint on the selection seeds, caches the scores, exports
    the best and evaluates it for the card on the card's (disjoint) seeds."""
    from dcsbench.experts import stateenv
    from dcsbench.experts.cards import render_card

    cfg = _small_sac()
    quiet = lambda *_: None  # noqa: E731
    run = tmp_path / "run"
    tr.train_expert(TASK, run, total_steps=600, n_envs=1, config=cfg, export=False,
                    snapshot_every=200, log=quiet)
    tr.train_expert(TASK, tmp_path / "plain", total_steps=600, n_envs=1, config=cfg, export=False,
                    snapshot_every=0, log=quiet)
    assert not (tmp_path / "plain" / tr.SNAPSHOT_DIR).exists()
    snaps = tr._snapshots(run)
    assert [json.loads((p / "state.json").read_text())["num_timesteps"] for p in snaps] == [200, 400, 600]
    final, plain = tr.policy_from_checkpoint(run), tr.policy_from_checkpoint(tmp_path / "plain")
    for a, b, c in zip(final.weights + final.biases, plain.weights + plain.biases,
                       (p := tr.policy_from_checkpoint(run, snaps[-1])).weights + p.biases):
        np.testing.assert_array_equal(a, b)  # snapshots change nothing in training
        np.testing.assert_array_equal(a, c)  # the last snapshot is the final policy
    assert set(tr.SELECTION_SEEDS).isdisjoint(tr.EXPERT_EVAL_SEEDS)

    seen = []
    real = stateenv.evaluate_state_policy

    score = {tr.policy_from_checkpoint(run, p).weights[0].tobytes(): v for p, v in zip(snaps, (1, 3, 2))}

    def fake(policy, task, seeds, **kw):  # scores 1, 3, 2 for 200/400/600 steps on the selection seeds
        seen.append(list(seeds))
        if list(seeds) == list(tr.SELECTION_SEEDS[:2]):
            return [float(score[policy.weights[0].tobytes()])] * len(seeds)
        return real(policy, task, seeds, **kw)

    monkeypatch.setattr(stateenv, "evaluate_state_policy", fake)
    dest = tr.select_run(run, episodes=2, eval_episodes=1, log=quiet)
    card = json.loads((dest / f"{TASK}.json").read_text())
    assert card["steps"] == 400 and card["command"].endswith("--stop-at 400")
    assert card["eval"]["seeds"] == [tr.EXPERT_EVAL_SEEDS[0]] and seen[-1] == card["eval"]["seeds"]
    assert card["selection"]["candidates"] == [[200, 1.0], [400, 3.0], [600, 2.0]]
    assert card["selection"]["chosen_steps"] == 400 and card["selection"]["seeds"] == [4_000_000, 4_000_001]
    exported = load_expert(TASK, path=dest / f"{TASK}.safetensors")
    np.testing.assert_array_equal(exported.weights[0], tr.policy_from_checkpoint(run, snaps[1]).weights[0])
    text = render_card(card)
    assert "among 3 policies" in text and "selection seeds 4000000..4000001" in text
    # cached: a second selection evaluates nothing new on the selection seeds
    n = len(seen)
    assert _cli(["train-expert", TASK, "--out", str(run), "--select-best", "--select-episodes", "2",
                 "--eval-episodes", "1"]) == 0
    assert len(seen) == n + 1  # only the card's evaluation
    scores = json.loads((run / "selection.json").read_text())["scores"]
    scores["200"]["sha256"] = "0" * 64  # as if step 200 had been trained again differently
    (run / "selection.json").write_text(json.dumps({"seeds": list(tr.SELECTION_SEEDS[:2]), "scores": scores}))
    tr.select_run(run, episodes=2, eval_episodes=1, log=quiet)
    assert len(seen) == n + 3  # step 200 scored again, then the card's evaluation
    with pytest.raises(ValueError, match="--select-episodes"):
        tr.select_run(run, episodes=0)
    with pytest.raises(FileNotFoundError, match="nothing|no snapshot"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "run.json").write_text(json.dumps({"task": TASK}))
        tr.select_run(tmp_path / "empty")


def test_overrides_are_parsed_checked_and_recorded(tmp_path):
    assert tr.parse_overrides("sac", ["n_step=3", "net_arch=[64,64]", "activation=tanh"]) == {
        "n_step": 3, "net_arch": [64, 64], "activation": "tanh"}
    with pytest.raises(ValueError, match="valid: .*n_step"):
        tr.parse_overrides("sac", ["nstep=3"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        tr.parse_overrides("ppo", ["n_epochs"])
    with pytest.raises(ValueError, match="unknown ppo"):  # n_step is SAC's, not PPO's
        tr.parse_overrides("ppo", ["n_step=3"])
    cfg = tr.SACConfig(n_step=3, torch_threads=2)
    assert tr.config_overrides(cfg) == {"n_step": 3}  # speed-only fields are not part of a run
    assert tr.canonical_command(TASK, 1000, 1, 0, "sac", {"n_step": 3, "net_arch": [64, 64]}) == (
        "dcsbench train-expert cheetah-run --total-steps 1000 --n-envs 1 --seed 0 --algo sac"
        " --set n_step=3 --set net_arch=[64,64]")


def test_sac_n_step_resume_is_exact_and_old_runs_still_resume(tmp_path):
    quiet = lambda *_: None  # noqa: E731
    cfg = _small_sac(n_step=3)
    tr.train_expert(TASK, tmp_path / "once", total_steps=600, n_envs=1, config=cfg, export=False,
                    log=quiet)
    for _ in range(3):
        tr.train_expert(TASK, tmp_path / "chunks", total_steps=600, n_envs=1, config=cfg,
                        max_minutes=1e-4, export=False, log=quiet)
    a, b = tr.policy_from_checkpoint(tmp_path / "once"), tr.policy_from_checkpoint(tmp_path / "chunks")
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)
    run = json.loads((tmp_path / "once" / "run.json").read_text())
    assert "--algo sac --set batch_size=32 " in run["command"]  # every non-default field
    assert " --set n_step=3 --set net_arch=[32,32]" in run["command"]
    # n-step targets change training: a 1-step run of the same seed ends elsewhere.
    one = tr.train_expert(TASK, tmp_path / "one", total_steps=400, n_envs=1,
                          config=_small_sac(), export=False, log=quiet)
    assert one["num_timesteps"] == 400
    # A run folder written before `n_step` existed resumes as a 1-step run; n_step=3 is refused.
    run_file = tmp_path / "one" / "run.json"
    old = json.loads(run_file.read_text())
    del old["config"]["n_step"]
    run_file.write_text(json.dumps(old))
    status = tr.train_expert(TASK, tmp_path / "one", total_steps=600, n_envs=1,
                             config=_small_sac(torch_threads=2), export=False, log=quiet)
    assert status["finished"]
    with pytest.raises(ValueError, match="n_step=1"):
        tr.train_expert(TASK, tmp_path / "one", total_steps=800, n_envs=1, config=cfg, log=quiet)
    c = tr.policy_from_checkpoint(tmp_path / "one")
    assert not np.array_equal(c.weights[0], b.weights[0])


def test_sac_warm_start_from_a_checkpoint_without_its_replay_buffer(tmp_path):
    """A SAC checkpoint copied without replay.npz (e.g. moved between machines) resumes: the
    policy refills the buffer with no updates, and run.json and the card say so."""
    from dcsbench.experts.cards import render_card

    quiet = lambda *_: None  # noqa: E731
    cfg = _small_sac()
    run = tmp_path / "run"
    tr.train_expert(TASK, run, total_steps=1000, n_envs=1, config=cfg, stop_at=400, export=False,
                    log=quiet)
    ckpt = tr._latest_checkpoint(run)
    updates_before = json.loads((ckpt / "state.json").read_text())["n_updates"]
    assert updates_before > 0
    assert _cli(["train-expert", TASK, "--out", str(run), "--pack", str(tmp_path / "packed")]) == 0
    packed = tmp_path / "packed"
    assert sorted(p.name for p in (packed / "checkpoints" / ckpt.name).iterdir()) == [
        "optimizer.pt", "policy.pt", "state.json", "torch_rng.pt"]
    assert (packed / "run.json").read_bytes() == (run / "run.json").read_bytes()
    run = packed  # continue on the packed copy, as another machine would
    lines = []
    tr.train_expert(TASK, run, total_steps=1000, n_envs=1, config=cfg, stop_at=800, export=False,
                    log=lines.append)
    assert any("warm start" in line and "400 steps" in line for line in lines)
    at_800 = json.loads((tr._latest_checkpoint(run) / "state.json").read_text())
    assert at_800["num_timesteps"] == 800 and at_800["n_updates"] == updates_before  # refill only
    status = tr.train_expert(TASK, run, total_steps=1000, n_envs=1, config=cfg, eval_episodes=1,
                             log=quiet)
    assert status["finished"]
    final = json.loads((tr._latest_checkpoint(run) / "state.json").read_text())
    assert final["n_updates"] == updates_before + 200  # updates resumed after the refill
    chunks = json.loads((run / "run.json").read_text())["chunks"]
    assert [bool(c.get("warm_start")) for c in chunks] == [False, True, False]
    card = json.loads((run / "export" / f"{TASK}.json").read_text())
    assert card["warm_starts"] == [{"at_steps": 400, "refill_steps": 400,
                                    "reason": f"{ckpt.name} has no replay buffer (replay.npz)"}]
    assert "Warm-started (not an exact resume): at 400 steps" in render_card(card)


def _side_by_side(steps: int, seed: int, rng_seed: int, **shaping):
    """Step a plain and a shaped hopper-hop env with the same seeded random actions; yields
    (task reward, shaped reward, truncated, shaped env's physics) after checking that the shaped
    env reports the same task reward as the plain one (same physics)."""
    plain, shaped = StateEnv("hopper-hop"), StateEnv("hopper-hop", **shaping)
    plain.reset(seed=seed)
    shaped.reset(seed=seed)
    rng = np.random.default_rng(rng_seed)
    try:
        for _ in range(steps):
            a = rng.uniform(-1, 1, size=plain.action_space.shape)
            _, r0, _, _, i0 = plain.step(a)
            _, r1, _, trunc, i1 = shaped.step(a)
            assert i1["task_reward"] == r0 == i0["task_reward"]  # the task reward is untouched
            yield r0, r1, trunc, shaped._env.physics
    finally:
        plain.close()
        shaped.close()


def test_stand_bonus_shapes_training_reward_only():
    for r0, r1, trunc, physics in _side_by_side(200, seed=7, rng_seed=0, stand_bonus=0.5):
        assert r1 == pytest.approx(r0 + 0.5 * min(max(physics.height() / 0.6, 0.0), 1.0))
    assert not trunc
    short = StateEnv("hopper-hop", stand_bonus=0.5, episode_length=3)
    short.reset(seed=1)
    infos = [short.step(np.zeros(4))[4] for _ in range(3)]
    assert "task_return" not in infos[0]
    assert infos[-1]["task_return"] == pytest.approx(sum(i["task_reward"] for i in infos))
    with pytest.raises(ValueError, match="hopper-hop"):
        StateEnv("cheetah-run", stand_bonus=0.1)
    short.close()


def test_soft_stand_margin_gives_partial_credit_below_stand_height_only():
    """hopper-hop's soft standing test equals the task reward whenever the task pays anything,
    never pays less, and pays for hopping a little too low (where the task pays nothing)."""
    from dm_control.utils import rewards

    extra = 0
    for r0, r1, _, physics in _side_by_side(300, seed=3, rng_seed=1, soft_stand_margin=0.3):
        h, v = float(physics.height()), float(physics.speed())
        hop = rewards.tolerance(v, bounds=(2.0, float("inf")), margin=1.0, value_at_margin=0.5,
                                sigmoid="linear")
        assert r1 == pytest.approx(rewards.tolerance(h, (0.6, 2.0), margin=0.3) * hop)
        assert r1 >= r0 - 1e-12
        if r0 > 0:
            assert r1 == pytest.approx(r0)
        extra += r1 > r0 + 1e-9
    assert extra > 0, "random actions should move the hopper while it is below 0.6"
    with pytest.raises(ValueError, match="soft_stand_margin must be >= 0"):
        StateEnv("hopper-hop", soft_stand_margin=-0.1)
    with pytest.raises(ValueError, match="soft_stand_margin is defined for hopper-hop"):
        StateEnv("walker-run", soft_stand_margin=0.3)


def test_fork_changes_config_from_a_parents_checkpoint_and_records_it(tmp_path):
    """--fork-from starts a new run from another run's last checkpoint with a changed config,
    leaves the parent untouched, warm-starts SAC (empty buffer), resumes with the same command,
    and the card says how to reproduce it."""
    from dcsbench.experts.cards import render_card

    quiet = lambda *_: None  # noqa: E731
    parent, child = tmp_path / "parent", tmp_path / "child"
    tr.train_expert("hopper-hop", parent, total_steps=1000, n_envs=1,
                    config=_small_sac(n_step=3, stand_bonus=0.1), stop_at=400, export=False, log=quiet)
    before = {p.relative_to(parent): p.read_bytes() for p in parent.rglob("*") if p.is_file()}
    ckpt = tr._latest_checkpoint(parent)
    updates = json.loads((ckpt / "state.json").read_text())["n_updates"]
    new = _small_sac(n_step=3, stand_bonus=0.1, soft_stand_margin=0.3)
    with pytest.raises(ValueError, match="seed=0, not 5"):
        tr.train_expert("hopper-hop", tmp_path / "bad", total_steps=1000, n_envs=1, seed=5,
                        config=new, fork_from=parent, log=quiet)
    assert not list((tmp_path / "bad").rglob("state.json"))  # nothing half-forked
    lines = []
    tr.train_expert("hopper-hop", child, total_steps=1000, n_envs=1, config=new, stop_at=800,
                    export=False, fork_from=parent, log=lines.append)
    assert any("forked" in line and "soft_stand_margin 0.0 -> 0.3" in line for line in lines)
    assert any("warm start" in line for line in lines)
    run = json.loads((child / "run.json").read_text())
    assert run["forked_from"]["at_steps"] == 400 and run["forked_from"]["run"] == str(parent)
    assert run["forked_from"]["changes"] == {"soft_stand_margin": [0.0, 0.3]}
    assert run["forked_from"]["replay_kept"] is False  # a reward change: stored rewards are stale
    assert run["config"]["soft_stand_margin"] == 0.3
    assert run["command"].endswith(f"--set soft_stand_margin=0.3 --set stand_bonus=0.1 --fork-from {parent}")
    at_800 = json.loads((tr._latest_checkpoint(child) / "state.json").read_text())
    assert at_800["n_updates"] == updates  # 400 refill steps with no updates
    # same command again: resumes the fork (no second fork), finishes and exports
    status = tr.train_expert("hopper-hop", child, total_steps=1000, n_envs=1, config=new,
                             eval_episodes=1, fork_from=parent, log=quiet)
    assert status["finished"]
    final = json.loads((tr._latest_checkpoint(child) / "state.json").read_text())
    assert final["n_updates"] == updates + 200  # updates resumed after the refill
    assert {p.relative_to(parent): p.read_bytes() for p in parent.rglob("*") if p.is_file()} == before
    card = json.loads((child / "export" / "hopper-hop.json").read_text())
    assert card["forked_from"]["changes"] == {"soft_stand_margin": [0.0, 0.3]}
    assert [w["at_steps"] for w in card["warm_starts"]] == [400]
    text = render_card(card)
    assert f"--stop-at 400 --out {parent}" in text and "soft standing test" in text
    assert "`soft_stand_margin` 0.0 -> 0.3" in text
    with pytest.raises(FileNotFoundError, match="no run.json"):
        tr.train_expert("hopper-hop", tmp_path / "c2", total_steps=1000, n_envs=1, config=new,
                        fork_from=tmp_path / "nowhere", log=quiet)


def test_sac_fork_that_changes_only_the_learner_keeps_the_replay_buffer(tmp_path):
    """A fork that changes only how stored transitions are used (here the learning rate) keeps
    the parent's replay buffer: no warm start, updates continue at once, the optimizers run at
    the new rate, and run.json and the card say the buffer was kept."""
    import torch

    from dcsbench.experts.cards import render_card

    quiet = lambda *_: None  # noqa: E731
    parent, child = tmp_path / "parent", tmp_path / "child"
    tr.train_expert("hopper-hop", parent, total_steps=1000, n_envs=1,
                    config=_small_sac(n_step=3, stand_bonus=0.1), stop_at=400, export=False, log=quiet)
    pckpt = tr._latest_checkpoint(parent)
    updates = json.loads((pckpt / "state.json").read_text())["n_updates"]
    lines = []
    new = _small_sac(n_step=3, stand_bonus=0.1, learning_rate=1e-4)
    tr.train_expert("hopper-hop", child, total_steps=1000, n_envs=1, config=new, stop_at=600,
                    export=False, fork_from=parent, log=lines.append)
    assert any("learning_rate 0.0003 -> 0.0001; replay buffer kept" in line for line in lines)
    assert not any("warm start" in line for line in lines)
    run = json.loads((child / "run.json").read_text())
    assert run["forked_from"]["replay_kept"] is True
    assert not any(c.get("warm_start") for c in run["chunks"])
    ckpt = tr._latest_checkpoint(child)
    assert json.loads((ckpt / "state.json").read_text())["n_updates"] == updates + 200
    with np.load(pckpt / tr.REPLAY_FILE) as a, np.load(ckpt / tr.REPLAY_FILE) as b:
        pos = int(a["pos"])
        assert int(b["pos"]) == pos + 200  # the parent's transitions, then the fork's
        np.testing.assert_array_equal(a["rewards"][:pos], b["rewards"][:pos])
    opt = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True)
    assert {g["lr"] for k in ("actor", "critic", "ent_coef") for g in opt[k]["param_groups"]} == {1e-4}
    status = tr.train_expert("hopper-hop", child, total_steps=1000, n_envs=1, config=new,
                             eval_episodes=1, fork_from=parent, log=quiet)
    card = json.loads((child / "export" / "hopper-hop.json").read_text())
    assert status["finished"] and card["warm_starts"] == []
    assert card["forked_from"]["replay_kept"] is True
    assert "keeping the parent's replay buffer" in render_card(card)


def test_card_says_when_training_reward_was_shaped():
    from dcsbench.experts import expert_card
    from dcsbench.experts.cards import render_card

    card = expert_card("walker-run")
    assert "training-only standing term" not in render_card(card)
    card["hyperparameters"] = {**card["hyperparameters"], "stand_bonus": 0.1}
    text = render_card(card)
    assert "training-only standing term (`stand_bonus` 0.1" in text and "| stand_bonus | 0.1 |" in text


def test_committed_paused_runs_are_small_and_loadable():
    """Every run packed under expert-runs/ loads (its policy acts on the task's state) and holds
    no replay buffer, and all of them together fit in 4 MiB."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "expert-runs"
    if not root.is_dir():
        pytest.skip("no paused run is committed (expert-runs/ absent)")
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert total <= 4 * 2**20, f"expert-runs/ holds {total} bytes; at most 4 MiB of paused runs"
    for run in sorted(p for p in root.iterdir() if (p / "run.json").is_file()):
        meta = json.loads((run / "run.json").read_text())
        assert meta["task"] in catalogue.TASKS and meta["command"].startswith("dcsbench train-expert")
        assert not list(run.rglob("replay.npz")), run
        policy = tr.policy_from_checkpoint(run)
        state, _ = StateEnv(meta["task"]).reset(seed=0)
        action = policy(state[None])
        assert action.shape == (1, policy.action_dim) and np.all(np.abs(action) <= 1)


@pytest.mark.parametrize("task", available_experts())
def test_committed_expert_matches_its_card_and_expert_eval_reproduces_it(task, capsys):
    """Each committed expert: the weights are the ones the card names (sha256), the card is
    complete, and `dcsbench expert-eval TASK` (20 deterministic episodes on the card's seeds)
    lands within its tolerance of the card's mean return."""
    from dcsbench.data.format import sha256_file
    from dcsbench.experts import EXPERTS_DIR, expert_card

    card = expert_card(task)
    assert sha256_file(EXPERTS_DIR / f"{task}.safetensors") == card["sha256"]
    assert card["task"] == task and card["command"].startswith(f"dcsbench train-expert {task} ")
    assert card["eval"]["episodes"] == len(card["eval"]["returns"]) == 20
    assert np.isclose(np.mean(card["eval"]["returns"]), card["eval"]["mean"], atol=1e-3)
    assert f"{card['eval']['mean']:.1f}" in (EXPERTS_DIR / f"{task}.md").read_text()
    assert _cli(["expert-eval", task]) == 0, capsys.readouterr().out


# ------------------------------------------------------------------ JAX learners (sbx-rl)
@pytest.fixture(scope="module")
def _jax_compile_cache(tmp_path_factory):
    """One persistent XLA compilation cache for this module's JAX tests: every train_expert
    call builds a new model whose jitted update would otherwise be compiled again."""
    jax = pytest.importorskip("jax")
    pytest.importorskip("sbx")
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _small_jax(algo: str = "crossq", **changes):
    """A CrossQ / JAX-SAC config small enough for tests: 100-step episodes, 32x32 networks,
    updates from step 100; ``changes`` override any field."""
    from dcsbench.experts.jaxtrain import JAX_ALGOS

    return JAX_ALGOS[algo](**{**dict(learning_starts=100, buffer_size=2000, batch_size=32,
                                     net_arch=[32, 32], qf_net_arch=[32, 32], episode_length=100),
                              **changes})


@pytest.mark.parametrize("algo", ["crossq", "sac-jax"])
def test_jax_learner_resume_is_exact_and_export_matches_its_actor(tmp_path, algo, _jax_compile_cache):
    """N steps in one go == the same N steps in chunks (train states, PRNG keys, replay buffer
    and counters are all in the checkpoint); the exported MLP (CrossQ: batch renormalisation
    folded into the dense layers) gives the learner's own deterministic action; run.json and
    the card name the route and its library versions."""
    cfg = _small_jax(algo)
    quiet = lambda *_: None  # noqa: E731
    tr.train_expert(TASK, tmp_path / "once", total_steps=300, n_envs=1, config=cfg, export=False,
                    log=quiet)
    tr.train_expert(TASK, tmp_path / "chunks", total_steps=300, n_envs=1, config=cfg,
                    stop_at=200, export=False, log=quiet)
    status = tr.train_expert(TASK, tmp_path / "chunks", total_steps=300, n_envs=1, config=cfg,
                             eval_episodes=1, log=quiet)
    assert status["finished"] and status["num_timesteps"] == 300
    a, b = tr.policy_from_checkpoint(tmp_path / "once"), tr.policy_from_checkpoint(tmp_path / "chunks")
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)
    state = json.loads((tr._latest_checkpoint(tmp_path / "chunks") / "state.json").read_text())
    assert state["n_updates"] == 200
    model, env = tr._build(TASK, 1, 0, cfg, 0)
    tr._load_checkpoint(tr._latest_checkpoint(tmp_path / "chunks"), model, env)
    states = np.random.default_rng(0).normal(size=(16, 17)).astype(np.float32)
    expected, _ = model.predict(states, deterministic=True)
    np.testing.assert_allclose(b(states), expected, atol=1e-5)
    env.close()
    run = json.loads((tmp_path / "chunks" / "run.json").read_text())
    assert run["algo"] == algo and run["route"]["library"] == "sbx-rl (JAX)"
    assert run["route"]["versions"]["jax"] and all(c["versions"]["sbx-rl"] for c in run["chunks"])
    assert run["command"].startswith(f"dcsbench train-expert {TASK} --total-steps 300 --n-envs 1 "
                                     f"--seed 0 --algo {algo} ")
    card = json.loads((tmp_path / "chunks" / "export" / f"{TASK}.json").read_text())
    assert card["algorithm"].startswith("CrossQ (sbx-rl" if algo == "crossq" else "SAC (sbx-rl")
    assert card["route"]["versions"]["sbx-rl"] and card["steps"] == 300 and card["seed"] == 0
    assert card["command"] == run["command"] and card["warm_starts"] == []
    assert ExpertPolicy.load(tmp_path / "chunks" / "export" / f"{TASK}.safetensors")(states).shape == (16, 6)


def test_crossq_pack_resumes_by_a_recorded_warm_start_and_select_best_reads_snapshots(
        tmp_path, _jax_compile_cache):
    """A packed CrossQ run (no replay buffer) continues elsewhere through the CLI: the policy
    refills the buffer, updates resume, and the warm start is on the card; snapshots of a JAX
    run are policy arrays that --select-best evaluates."""
    run = tmp_path / "run"
    flags = ["--total-steps", "400", "--algo", "crossq", "--snapshot-every", "100",
             "--eval-episodes", "1"] + [f"--set={k}={json.dumps(v)}" for k, v in dict(
                 learning_starts=100, buffer_size=2000, batch_size=32, net_arch=[32, 32],
                 qf_net_arch=[32, 32], episode_length=100).items()]
    assert _cli(["train-expert", TASK, "--out", str(run), "--stop-at", "200", *flags]) == 0
    assert _cli(["train-expert", TASK, "--out", str(run), "--pack", str(tmp_path / "packed")]) == 0
    ckpt = tr._latest_checkpoint(tmp_path / "packed")
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "jax_keys.npz", "jax_state.msgpack", "policy.npz", "state.json", "torch_rng.pt"]
    run = tmp_path / "packed"
    assert _cli(["train-expert", TASK, "--out", str(run), *flags]) == 0
    final = json.loads((tr._latest_checkpoint(run) / "state.json").read_text())
    assert final["num_timesteps"] == 400 and final["n_updates"] == 100 + 100  # 100 refill steps
    card = json.loads((run / "export" / f"{TASK}.json").read_text())
    assert card["warm_starts"][0]["at_steps"] == 200 and card["warm_starts"][0]["refill_steps"] == 100
    assert sorted(p.name for p in (run / tr.SNAPSHOT_DIR).iterdir())[-1].endswith("400")
    assert _cli(["train-expert", TASK, "--out", str(run), "--select-best", "--select-episodes", "1",
                 "--eval-episodes", "1"]) == 0
    card = json.loads((run / "export" / f"{TASK}.json").read_text())
    assert card["selection"]["chosen_steps"] in (300, 400)


def test_warm_start_refill_defaults_to_learning_starts_and_can_be_set():
    """``refill_steps`` (``--refill-steps``) replaces ``learning_starts`` as the refill length,
    rounded up to whole episodes either way."""
    cfg = _small_sac()
    ep = cfg.episode_length
    default = tr._warm_start(Path("step_1"), cfg, lambda *_: None)
    assert default["refill_steps"] == -(-cfg.learning_starts // ep) * ep
    lines: list[str] = []
    chosen = tr._warm_start(Path("step_1"), cfg, lines.append, refill_steps=ep + 1)
    assert chosen["refill_steps"] == 2 * ep
    assert f"{2 * ep} steps" in lines[0]
