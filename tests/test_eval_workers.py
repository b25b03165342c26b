"""``run_episodes(mode="workers")``: sub-envs in worker processes, observations in shared memory.

Real cheetah-run environments with short episodes. One worker pool (module fixture) serves the
equality tests, so the suite pays the spawn start-up (a few seconds on 2 cores) few times.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import dcsbench.envs as envs
from dcsbench import rollouts
from dcsbench.envs.workers import EnvWorkerError, EnvWorkers, split_round_robin

TASK, SETTING, LENGTH = "cheetah-run", "distractors", 12
SEEDS = [101, 102, 103]


def pixel_policy(obs: np.ndarray) -> np.ndarray:
    """A deterministic policy that depends on the pixels (so the returns check the frames too)."""
    newest = obs[..., -3:].astype(np.float64)
    feats = newest.reshape(len(obs), -1, 3).mean(axis=1) / 64.0 - 2.0        # (B, 3)
    return np.tanh(np.concatenate([feats, -feats], axis=1)).astype(np.float32)  # (B, 6)


def _eval(mode, seeds=SEEDS, num_envs=2, backgrounds="train", **kw):
    return rollouts.run_episodes(pixel_policy, TASK, SETTING, "procedural", backgrounds,
                                      seeds=seeds, num_envs=num_envs, episode_length=LENGTH,
                                      mode=mode, progress=False, **kw)


@pytest.fixture(scope="module")
def pool():
    with EnvWorkers(TASK, SETTING, "train", capacity=3, workers=2, episode_length=LENGTH) as p:
        yield p
    assert not any(proc.is_alive() for proc in p.processes)


def test_default_worker_count(monkeypatch):
    from dcsbench.envs.workers import default_workers

    monkeypatch.setenv("DCSBENCH_EVAL_WORKERS", "3")
    assert default_workers(25) == 3 and default_workers(2) == 2
    monkeypatch.delenv("DCSBENCH_EVAL_WORKERS")
    assert default_workers(1000) == (os.cpu_count() or 1) and default_workers(1) == 1


def test_round_robin_groups_are_balanced():
    assert split_round_robin(5, 2) == [[0, 2, 4], [1, 3]]
    assert split_round_robin(2, 4) == [[0], [1], [], []]
    assert sorted(i for g in split_round_robin(25, 16) for i in g) == list(range(25))
    assert rollouts.resolve_mode("sync", 5) == "sync"
    assert rollouts.resolve_mode("auto", 1) == "sync"
    assert rollouts.resolve_mode("auto", 5, total_steps=100) == "sync"     # start-up not repaid
    expect = "workers" if (os.cpu_count() or 1) > 1 else "sync"
    assert rollouts.resolve_mode("auto", 5, total_steps=25_000) == expect
    with pytest.raises(Exception, match="vector mode"):
        rollouts.resolve_mode("threads", 5)


def test_frames_and_rewards_equal_single_envs_with_the_same_seeds(pool):
    obs, info = pool.reset(seed=SEEDS)
    assert obs.shape == (3, 64, 64, 9) and pool.num_envs == 3 and info == {}
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(LENGTH, 3, 6)).astype(np.float32)
    frames, rewards, truncs = [obs], [], []
    for a in actions:
        o, r, term, trunc, _ = pool.step(a)
        frames.append(o)
        rewards.append(r)
        truncs.append(trunc)
        assert not term.any()
    assert truncs[-1].all() and not np.any(truncs[:-1])
    env = envs.make_env(TASK, SETTING, backgrounds="train", episode_length=LENGTH)
    for i, seed in enumerate(SEEDS):
        o, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(o, frames[0][i])
        for t, a in enumerate(actions):
            o, r, *_ = env.step(a[i])
            np.testing.assert_array_equal(o, frames[t + 1][i])
            assert r == rewards[t][i]          # bit-identical, not approximately
    env.close()
    # the step after truncation auto-resets (next-step mode, as SyncVectorEnv)
    o, r, term, trunc, _ = pool.step(np.zeros((3, 6), np.float32))
    assert not trunc.any() and np.all(r == 0.0)
    with pytest.raises(ValueError, match="explicit list of seeds"):
        pool.reset()
    with pytest.raises(ValueError, match="actions of shape"):
        pool.step(np.zeros((2, 6), np.float32))


def test_returns_bit_identical_to_sync_for_any_wave_split(pool):
    sync = _eval("sync", num_envs=2)                         # waves [101, 102], [103]
    workers = _eval("workers", num_envs=2, env_pool=pool)     # same waves, spare sub-env idle
    assert workers == sync and len(set(sync)) == 3
    alone = _eval("workers", seeds=SEEDS[2:], num_envs=2, env_pool=pool)
    assert alone == sync[2:]                                  # episode 103 alone, in worker 0
    novel = _eval("workers", num_envs=2, backgrounds="novel", env_pool=pool)  # reconfigured
    assert pool.cfg["backgrounds"] == "novel"
    assert novel == _eval("sync", num_envs=2, backgrounds="novel") and novel != sync
    assert all(p.is_alive() for p in pool.processes)          # env_pool is left running
    with pytest.raises(ValueError, match="need 5"):
        _eval("workers", num_envs=5, seeds=list(range(5)), env_pool=pool)
    with pytest.raises(ValueError, match="cannot change task"):
        pool.configure(task="hopper-hop")


def _record_envs(monkeypatch) -> list:
    made = []
    real = rollouts._workers_env

    def spy(*args, **kwargs):
        env = real(*args, **kwargs)
        made.append(env)
        return env

    monkeypatch.setattr(rollouts, "_workers_env", spy)
    return made


def test_agent_error_mid_episode_closes_the_workers(monkeypatch):
    from dcsbench.isolation import AgentError

    made = _record_envs(monkeypatch)
    calls = []

    def failing(obs):
        calls.append(len(obs))
        if len(calls) == 5:
            raise AgentError("act crashed (test)")
        return pixel_policy(obs)

    with pytest.raises(AgentError, match="crashed"):
        rollouts.run_episodes(failing, TASK, SETTING, "procedural", "train", seeds=SEEDS,
                                   num_envs=3, episode_length=LENGTH, mode="workers", workers=2,
                                   progress=False)
    assert calls == [3] * 5                                   # one batched act per step
    (env,) = made
    assert env.closed and not any(p.is_alive() for p in env.processes)
    assert env._shms == {}


def test_dead_or_hung_worker_raises_and_stops_the_others():
    with EnvWorkers(TASK, SETTING, "train", capacity=2, workers=2, episode_length=LENGTH,
                    timeout=3.0) as env:
        env.reset(seed=[1, 2])
        procs = env.processes
        os.kill(procs[1].pid, signal.SIGSTOP)                 # hung: no answer within timeout
        with pytest.raises(EnvWorkerError, match="longer than 3 s"):
            env.step(np.zeros((2, 6), np.float32))
        assert env.closed and not any(p.is_alive() for p in procs)
        with pytest.raises(EnvWorkerError, match="closed"):
            env.step(np.zeros((2, 6), np.float32))


def test_worker_start_up_error_carries_the_traceback(tmp_path):
    with pytest.raises(EnvWorkerError, match="(?s)start-up.*Traceback"):
        EnvWorkers(TASK, SETTING, "train", source="davis", davis_dir=tmp_path / "missing",
                   capacity=1, workers=1)


def test_cli_vector_modes_match_the_evaluator():
    from dcsbench.commands import runs as cli

    assert cli.VECTOR_MODES == rollouts.VECTOR_MODES
