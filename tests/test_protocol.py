"""The protocol runner and online evaluation.

Fast unit tests use a toy vector env (seed-determined episodes) and in-memory views; the
real-environment tests use short episodes; the end-to-end test builds a tiny dataset and goes
through ``dcsbench run`` and ``dcsbench score``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import trivial_agents as ta
from dcsbench import rollouts, protocol, catalogue
from dcsbench.agent import EnvSpec
from dcsbench.data import make_views_from_arrays
from dcsbench.results import load_record

A = 2


class ToyEnv(gym.Env):
    """reward_t = 1 - mean |a_t - target(seed)| where target depends on the reset seed only."""

    observation_space = gym.spaces.Box(0, 255, (64, 64, 9), np.uint8)
    action_space = gym.spaces.Box(-1, 1, (A,), np.float32)

    def __init__(self, episode_length=1000):
        self.episode_length = episode_length

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = self.np_random.uniform(-1, 1, size=A)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return np.full((64, 64, 9), int((self.target[0] + 1) * 100), np.uint8)

    def step(self, action):
        assert np.all(np.abs(action) <= 1.0)
        self.t += 1
        reward = 1.0 - float(np.mean(np.abs(action - self.target)))
        return self._obs(), reward, False, self.t >= self.episode_length, {}


@pytest.fixture
def toy_env(monkeypatch):
    """Route the evaluator to ToyEnv; records the size of every vector env built."""
    sizes = []

    def make(task, setting, backgrounds, source, num_envs, davis_dir, frame_stack, mode, length):
        sizes.append(num_envs)
        return gym.vector.SyncVectorEnv([lambda: ToyEnv(length)] * num_envs)

    monkeypatch.setattr(rollouts, "_make_vector_env", make)
    return sizes


def test_waves_keep_per_episode_seeds_exact(toy_env):
    act = lambda obs: np.zeros((len(obs), A), np.float32)  # noqa: E731
    seeds = list(catalogue.EVAL_EPISODE_SEEDS[:7])
    kw = dict(task="cheetah-run", setting="distractors", source="procedural",
              backgrounds="train", episode_length=10, progress=False)
    r1 = rollouts.run_episodes(act, seeds=seeds, num_envs=1, **kw)
    r3 = rollouts.run_episodes(act, seeds=seeds, num_envs=3, **kw)
    assert r1 == pytest.approx(r3) and len(set(np.round(r1, 9))) == 7
    assert toy_env[-2:] == [3, 1]           # waves 3+3, then a smaller env for the last episode
    # episode 3 alone gives the same return as inside a wave
    alone = rollouts.run_episodes(act, seeds=seeds[3:4], num_envs=5, **kw)
    assert alone[0] == pytest.approx(r1[3])


def test_actions_are_clipped_and_checked(toy_env):
    kw = dict(task="cheetah-run", setting="clean", source="procedural", backgrounds="novel",
              seeds=[1, 2], num_envs=2, episode_length=5, progress=False)
    big = rollouts.run_episodes(lambda o: np.full((len(o), A), 7.0), **kw)
    one = rollouts.run_episodes(lambda o: np.ones((len(o), A)), **kw)
    assert big == pytest.approx(one)
    with pytest.raises(ValueError, match="shape"):
        rollouts.run_episodes(lambda o: np.zeros((len(o), A + 1)), **kw)
    with pytest.raises(ValueError, match="non-finite"):
        rollouts.run_episodes(lambda o: np.full((len(o), A), np.nan), **kw)
    with pytest.raises(ValueError, match="Valid background pools"):
        rollouts.run_episodes(lambda o: o, **{**kw, "backgrounds": "val"})


def test_short_env_is_an_error(monkeypatch):
    monkeypatch.setattr(rollouts, "_make_vector_env",
                        lambda *a: gym.vector.SyncVectorEnv([lambda: ToyEnv(3)]))
    with pytest.raises(RuntimeError, match="ended after 3 steps"):
        rollouts.run_episodes(lambda o: np.zeros((len(o), A)), "cheetah-run", "clean",
                                   "procedural", "train", seeds=[0], num_envs=1,
                                   episode_length=10, progress=False)


# ------------------------------------------------------------------ runner with fake data

class FakeData:
    """Stands in for dcsbench.data.ProtocolData (in-memory views, toy spec)."""

    def __init__(self, budget):
        rng = np.random.default_rng(0)
        frames, actions = [], []
        for _ in range(4):
            a = rng.uniform(-1, 1, size=(12, A)).astype(np.float32)
            # frame t+1 minus frame t encodes a_t (channel j <- dim j): the pixel-diff latent predicts the action
            level = np.concatenate([np.zeros((1, A)), np.cumsum(a[:-1], 0)]) * 10 + 128
            level = np.concatenate([level, np.full((12, 1), 128.0)], 1)        # (T, 3) channels
            f = np.broadcast_to(np.round(level)[:, None, None, :], (12, 64, 64, 3)).astype(np.uint8)
            frames.append(f)
            actions.append(a)
        self.unlabeled, self.labeled = make_views_from_arrays(frames, actions, list(range(budget)))
        _, self.train_labeled = make_views_from_arrays(frames, actions, list(range(4)))
        _, self.eval_split = make_views_from_arrays(frames[2:], actions[2:], [0, 1])
        self.spec = EnvSpec("cheetah-run", "distractors", (64, 64, 9), (64, 64, 3), 3, A,
                            episode_length=1000)
        self.info = {"name": "cheetah-run-distractors-tiny", "task": "cheetah-run",
                     "setting": "distractors", "tier": "tiny", "source": "procedural",
                     "revision": "local", "content_hash": "a" * 64,
                     "labeled_subset_hash": "b" * 64, "budget": budget,
                     "protocol_compliant": True}


@pytest.fixture
def fake_data(monkeypatch, toy_env, tmp_path):
    """``dcsbench.data.prepare`` -> :class:`FakeData`, the toy env, and a private references
    file giving the fake dataset a reference return of 5."""
    import dcsbench.data

    monkeypatch.setattr(dcsbench.data, "prepare", lambda name, budget, root=None: FakeData(budget),
                        raising=False)
    refs = tmp_path / "refs.json"
    monkeypatch.setenv("DCSBENCH_REFERENCES", str(refs))
    from dcsbench import scoring
    scoring.store_reference({"dataset": "cheetah-run-distractors-tiny", "task": "cheetah-run",
                             "setting": "distractors", "tier": "tiny", "source": "procedural",
                             "return": 5.0}, refs)
    return refs


def test_runner_writes_a_complete_record(fake_data, tmp_path, monkeypatch):
    tree = {"commit": "a" * 40}  # the tree changes while the run goes on (during evaluation)
    monkeypatch.setattr(protocol, "git_commit", lambda: tree["commit"])
    eval_pool = protocol._eval_pool

    def edited_meanwhile(*args, **kwargs):
        tree["commit"] = "b" * 40 + "-dirty"
        return eval_pool(*args, **kwargs)

    monkeypatch.setattr(protocol, "_eval_pool", edited_meanwhile)
    rec = protocol.evaluate(ta.PixelLatent(), "cheetah-run-distractors-tiny", 2, 1,
                            out=tmp_path / "runs", n_episodes=3, episode_length=6,
                            progress=False, verbose=False)
    path = tmp_path / "runs" / "pixel-latent__cheetah-run-distractors-tiny__procedural__b2__s1.json"
    assert load_record(path) == rec
    assert not (tmp_path / "runs" / protocol.WORK_DIR).exists()      # work folder cleaned up
    assert rec.protocol_compliant is False                            # 3 episodes of 6 steps
    assert rec.primary.episode_seeds == list(catalogue.EVAL_EPISODE_SEEDS[:3])
    assert rec.generalization.backgrounds == "novel"
    # facts only: no normalized score in the record (a reference exists; scoring applies it)
    assert rec.record_version == 2 and rec.episode_length == 6
    assert rec.primary.normalized_score is None and rec.generalization.normalized_score is None
    assert {"prepare", "fit", "probe", "eval_primary", "eval_generalization", "total"} <= set(
        rec.stage_seconds)
    assert rec.hardware["cpu_count"] and rec.dataset.content_hash == "a" * 64
    assert rec.git_commit == "a" * 40  # the code the run started with, not HEAD at the end
    # the probe sees a latent that encodes the action: near-zero error on held-out train
    # trajectories and on the eval split, far below the constant predictor
    m = rec.offline_metrics
    assert m["probe_mse_train"] < 0.01 < m["action_var_train"]
    assert m["probe_mse_novel"] < 0.01 < m["action_var_novel"]


def test_in_process_runs_are_not_protocol_compliant(fake_data):
    """``isolate=False`` (debugging) is recorded as non-compliant even with protocol settings."""
    rec = protocol.evaluate(ta.PixelLatent(), "cheetah-run-distractors-tiny", 2, 0,
                            isolate=False, episode_length=1000, progress=False, verbose=False,
                            vector_mode="sync")
    assert rec.protocol_compliant is False and rec.episode_length == 1000
    assert rec.offline_metrics["probe_mse_train"] < 0.01


def test_the_runner_in_workers_mode_gives_the_sync_returns(tiny_dataset_home):
    """One set of environment workers serves both pools; returns equal the sync path's."""
    kw = dict(n_episodes=3, episode_length=8, num_envs=2, progress=False, verbose=False)
    a = protocol.evaluate(ta.ConstantAgent(value=0.3), "cheetah-run-distractors-tiny", 2, 0,
                          vector_mode="sync", **kw)
    b = protocol.evaluate(ta.ConstantAgent(value=0.3), "cheetah-run-distractors-tiny", 2, 0,
                          vector_mode="workers", **kw)
    assert a.primary.returns == b.primary.returns
    assert a.generalization.returns == b.generalization.returns


def test_killed_run_resumes_without_partial_record(fake_data, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    fits = tmp_path / "fits.txt"
    kw = dict(out=out, n_episodes=4, episode_length=3, num_envs=2, progress=False, verbose=False)
    real_wave = rollouts.run_wave
    calls = {"n": 0}

    def dying_wave(*a, **k):        # the harness is killed in the second primary wave
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt("killed")
        return real_wave(*a, **k)

    monkeypatch.setattr(rollouts, "run_wave", dying_wave)
    with pytest.raises(KeyboardInterrupt):
        protocol.evaluate(ta.MeanAction(fits_file=str(fits)), "cheetah-run-distractors-tiny",
                          2, 0, **kw)
    assert not list(out.glob("*.json"))                           # no partial record
    work = next((out / protocol.WORK_DIR).iterdir())
    assert (work / "checkpoint" / "mean.json").exists()
    assert json.loads((work / "eval_train.json").read_text()).keys() == {"2000000", "2000001"}

    monkeypatch.setattr(rollouts, "run_wave", real_wave)
    seen = []
    orig = rollouts.run_episodes
    monkeypatch.setattr(rollouts, "run_episodes",
                        lambda act, *a, seeds, **k: seen.append(list(seeds)) or orig(act, *a, seeds=seeds, **k))
    rec = protocol.evaluate(ta.MeanAction(fits_file=str(fits)), "cheetah-run-distractors-tiny",
                            2, 0, **kw)
    assert fits.read_text().count("fit") == 1                     # fit restored from checkpoint
    assert seen[0] == [2000002, 2000003]                          # only the missing episodes
    fresh = protocol.evaluate(ta.MeanAction(fits_file=str(fits)), "cheetah-run-distractors-tiny",
                              2, 0, **{**kw, "out": tmp_path / "fresh"})
    assert rec.primary.returns == pytest.approx(fresh.primary.returns)
    # an existing record of the same run is returned as is (no refit)
    again = protocol.evaluate(ta.MeanAction(fits_file=str(fits)), "cheetah-run-distractors-tiny",
                              2, 0, **kw)
    assert again == rec and fits.read_text().count("fit") == 2


def test_changed_config_restarts_cleanly(tmp_path):
    out = tmp_path / "runs"
    work = out / protocol.WORK_DIR / "stale"
    w = protocol._Work(work, {"a": 1})
    w.write("fit_done.json", {"seconds": 1.0})
    w2 = protocol._Work(work, {"a": 2})
    assert w2.read("fit_done.json") is None


def test_agent_loading_and_overrides(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("value: 0.25\nnested: {x: 1}\n")
    agent = protocol.make_agent("trivial_agents:ConstantAgent", cfg, ["value=0.5", "nested.y=true"])
    assert agent.config == {"value": 0.5, "nested": {"x": 1, "y": True}}
    with pytest.raises(ValueError, match="not a dcsbench.agent.Agent"):
        protocol.make_agent("trivial_agents:np")
    with pytest.raises(ValueError, match="Valid methods"):
        protocol.make_agent("lapp")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        protocol.parse_overrides(["novalue"])


def test_reference_verdict_follows_the_validity_rule():
    from dcsbench.commands.runs import reference_verdict

    assert "VALID" in reference_verdict(400.0, 800.0) and "INVALID" not in reference_verdict(400.0, 800.0)
    assert "INVALID" in reference_verdict(1.2, 800.0) and "BC did not learn" in reference_verdict(1.2, 800.0)
    assert "INVALID" in reference_verdict(0.0, 800.0)


def test_default_preset_fits_the_machine(capsys):
    import baselines

    assert baselines.choose_preset("laom", None, cuda=False)[:2] == (
        "tiny", baselines.choose_preset("laom", None, cuda=False)[1])
    assert "no CUDA" in baselines.choose_preset("laom", None, cuda=False)[1]
    assert baselines.choose_preset("laom", None, cuda=True)[0] == "paper"
    preset, reason, warning = baselines.choose_preset("laom", "paper", cuda=False)
    assert (preset, reason) == ("paper", "given explicitly")
    assert "years" in warning and "0.2 samples/s" in warning and "--preset tiny" in warning
    assert baselines.choose_preset("bc", "tiny", cuda=False)[2] is None
    assert "hours" in baselines.choose_preset("bc", "small", cuda=False)[2]
    with pytest.raises(ValueError, match="Valid presets"):
        baselines.choose_preset("bc", "huge", cuda=False)
    import torch

    if not torch.cuda.is_available():  # this machine: the default is tiny, said on stderr
        agent = protocol.make_agent("laom")
        assert agent.config["lam"]["encoder_scale"] == baselines.load_config("laom", "tiny")["lam"]["encoder_scale"]
        assert "laom: preset tiny (no CUDA device" in capsys.readouterr().err
        protocol.make_agent("bc", preset="paper")
        assert "warning: preset paper on a machine without CUDA" in capsys.readouterr().err


# ------------------------------------------------------------------ real environments

@pytest.mark.parametrize("agent", [ta.RandomAgent(), ta.ConstantAgent(value=0.0)])
def test_trivial_agents_score_low_in_real_env(agent):
    spec = EnvSpec("cheetah-run", "distractors", (64, 64, 9), (64, 64, 3), 3, 6)
    agent.fit(None, None, spec, 0, 0, None)
    rets = rollouts.run_episodes(agent.act, "cheetah-run", "distractors", "procedural",
                                      "train", seeds=catalogue.EVAL_EPISODE_SEEDS[:2], num_envs=2,
                                      episode_length=60, progress=False)
    # reward in [0, 1] per step; the expert averages ~0.8/step, these should be near zero
    assert all(0.0 <= r / 60 < 0.1 for r in rets)


@pytest.mark.slow
@pytest.mark.parametrize("agent", [ta.RandomAgent(), ta.ConstantAgent(value=0.0)])
def test_trivial_agents_full_protocol_episodes_score_low(agent):
    spec = EnvSpec("cheetah-run", "distractors", (64, 64, 9), (64, 64, 3), 3, 6)
    agent.fit(None, None, spec, 0, 0, None)
    rets = rollouts.run_episodes(agent.act, "cheetah-run", "distractors", "procedural",
                                      "train", seeds=catalogue.EVAL_EPISODE_SEEDS[:5], num_envs=5,
                                      progress=False)
    paper_ref = catalogue.REFERENCES[("cheetah-run", "distractors", "davis")].ret
    assert np.mean(rets) / paper_ref < 0.1


# ------------------------------------------------------------------ end to end

def test_end_to_end_run_and_score(tiny_dataset_home, tmp_path, monkeypatch, capsys):
    """A tiny dataset -> `dcsbench run` (trivial agent) -> `dcsbench reference` (BC) ->
    `dcsbench score`, through the CLI entry point."""
    from dcsbench.cli import main

    monkeypatch.setenv("DCSBENCH_REFERENCES", str(tmp_path / "refs.json"))
    name = "cheetah-run-distractors-tiny"
    short = ["--episodes", "2", "--episode-length", "20", "--num-envs", "2"]
    assert main(["run", "--agent", "trivial_agents:MeanAction", "--dataset", name,
                 "--budget", "2", "--seed", "0", "--out", str(tmp_path / "runs"),
                 "--no-progress", *short]) == 0
    assert main(["reference", name, "--preset", "tiny", "--set", "bc.updates=2",
                 "--set", "bc.batch_size=8", "--out", str(tmp_path / "ref"),
                 "--no-progress", *short]) == 0
    capsys.readouterr()
    refs = json.loads((tmp_path / "refs.json").read_text())["references"]
    entry = refs[f"{name}/procedural"]
    assert entry["budget"] == "all" and len(entry["record_sha256"]) == 64
    assert entry["method"] == "bc" and entry["return"] >= 0
    # stored with its validity (>= 50% of the demonstrators' mean return); on this random-policy
    # 20-step build both are ~0, and an invalid reference leaves the score un-normalized
    from dcsbench import scoring

    valid = scoring.reference_validity(entry["return"], entry["demonstrator_mean_return"])[1]
    assert entry["valid"] is valid
    assert main(["score", str(tmp_path / "runs"), "--format", "json", "--reps", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    run = out["runs"][0]
    assert run["method"] == "mean-action" and run["protocol_compliant"] is False
    assert (run["primary_score"] is None) is (not valid) and run["reference_valid"] is valid
    # the same reference made valid (a stronger BC): now the run is normalized by it
    refs[f"{name}/procedural"].update({"return": 10.0, "demonstrator_mean_return": 12.0})
    (tmp_path / "refs.json").write_text(json.dumps({"format": 1, "references": refs}))
    assert main(["score", str(tmp_path / "runs"), "--format", "json", "--reps", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    run = out["runs"][0]
    assert run["primary_score"] == pytest.approx(run["primary_return"] / 10.0)
    assert run["primary_demo_fraction"] == pytest.approx(run["primary_return"] / 12.0)
    assert math.isfinite(out["aggregates"][0]["iqm"])


# ------------------------------------------------------------------ sweeps

def test_local_sweep_runs_missing_cells_only(tiny_dataset_home, tmp_path, monkeypatch):
    from dcsbench.sweep import expand, run_sweep

    # worker processes are spawned: make trivial_agents importable there too
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    specs = expand(["trivial_agents:MeanAction", "trivial_agents:ConstantAgent"],
                   ["cheetah-run-distractors-tiny"], [2], [0], tmp_path / "sweep",
                   evaluate_kwargs={"n_episodes": 1, "episode_length": 10, "num_envs": 1,
                                    "generalization": False, "verbose": False},
                   threads=1)
    assert [Path(s.record).parent.name for s in specs] == ["MeanAction", "ConstantAgent"]
    first = Path(specs[0].record)
    first.parent.mkdir(parents=True)
    first.write_text("{}")          # pretend this cell is done: the sweep must skip it
    results = run_sweep(specs, workers=2, verbose=False)
    assert results == {s.record: None for s in specs}
    assert first.read_text() == "{}"
    assert load_record(specs[1].record).method.name == "constant"
    with pytest.raises(ValueError, match="budget"):
        expand(["bc"], ["cheetah-run-distractors-tiny"], [128], [0], tmp_path)


def test_sweep_failure_is_reported_not_fatal(tiny_dataset_home, tmp_path, monkeypatch):
    from dcsbench.sweep import expand, run_sweep

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    specs = expand(["trivial_agents:NoSuchAgent"], ["cheetah-run-distractors-tiny"], [2], [0],
                   tmp_path)
    results = run_sweep(specs, workers=1, verbose=False)
    assert "NoSuchAgent" in results[specs[0].record]


def test_cluster_executors_need_their_package(tmp_path):
    import importlib.util

    from dcsbench.sweep import RunSpec, run_sweep

    spec = RunSpec("bc", "cheetah-run-distractors-tiny", 2, 0, str(tmp_path / "r.json"))
    for name in ("ray", "submitit"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(RuntimeError, match=f"pip install {name}"):
                run_sweep([spec], executor=name, verbose=False)
    with pytest.raises(ValueError, match="Valid executors"):
        run_sweep([spec], executor="dask", verbose=False)


def test_submitit_executor_debug_cluster(tiny_dataset_home, tmp_path):
    pytest.importorskip("submitit")
    from dcsbench.sweep import expand, run_sweep

    specs = expand(["trivial_agents:ConstantAgent"], ["cheetah-run-distractors-tiny"], [2], [0, 1],
                   tmp_path / "runs", evaluate_kwargs={"n_episodes": 1, "episode_length": 5,
                                                       "num_envs": 1, "generalization": False,
                                                       "verbose": False})
    results = run_sweep(specs, executor="submitit", submitit_folder=str(tmp_path / "logs"),
                        submitit_cluster="debug", verbose=False)
    assert results == {s.record: None for s in specs}
    assert sorted(load_record(s.record).seed for s in specs) == [0, 1]


def test_quickstart_on_an_existing_tiny_dataset(tiny_dataset_home, tmp_path, monkeypatch, capsys):
    from dcsbench.cli import main

    monkeypatch.setenv("DCSBENCH_REFERENCES", str(tmp_path / "refs.json"))
    out = tmp_path / "qs"
    assert main(["quickstart", "--set", "bc.updates=2", "--set", "bc.batch_size=8",
                 "--episodes", "1", "--num-envs", "1", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    # no reference in this private file: the quickstart says the run is not normalized
    assert "NOT NORMALIZED" in text and "not a normalized score" in text and "record: " in text
    assert "Primary score" not in text
    assert len(list(out.glob("bc__cheetah-run-distractors-tiny__*.json"))) == 1


def test_ray_executor_wiring(tmp_path, monkeypatch):
    """The Ray executor with a stand-in ``ray`` module (Ray itself is an optional extra):
    each run becomes one ``ray.remote`` task with the requested resources, failures are
    collected per run."""
    import types

    from dcsbench import sweep

    calls = {}

    class Ref:
        def __init__(self, fn, spec):
            self.fn, self.spec = fn, spec

    def remote(**resources):
        calls["resources"] = resources

        def wrap(fn):
            return types.SimpleNamespace(remote=lambda spec: Ref(fn, spec))
        return wrap

    def get(ref):
        return ref.fn(ref.spec)

    fake = types.SimpleNamespace(is_initialized=lambda: False,
                                 init=lambda address=None: calls.setdefault("address", address),
                                 remote=remote, get=get,
                                 wait=lambda refs, num_returns=1: (refs[:1], refs[1:]))
    monkeypatch.setitem(sys.modules, "ray", fake)
    ran = []

    def fake_run_one(spec):
        ran.append(spec.seed)
        if spec.seed == 1:
            raise RuntimeError("boom")
        return spec.record

    monkeypatch.setattr(sweep, "run_one", fake_run_one)
    specs = [sweep.RunSpec("bc", "cheetah-run-distractors-tiny", 2, s, str(tmp_path / f"{s}.json"))
             for s in (0, 1)]
    results = sweep.run_sweep(specs, executor="ray", num_gpus=0.5, num_cpus=2,
                              ray_address="auto", verbose=False)
    assert calls["resources"] == {"num_gpus": 0.5, "num_cpus": 2, "max_retries": 0}
    assert calls["address"] == "auto" and sorted(ran) == [0, 1]
    assert results[specs[0].record] is None and "boom" in results[specs[1].record]


def test_agent_module_in_working_directory_is_importable(tmp_path, monkeypatch):
    """`dcsbench run --agent my_method:Cls` finds ./my_method.py, as the README promises."""
    import sys

    from dcsbench.protocol import import_agent_class

    (tmp_path / "readme_style_method.py").write_text(
        "import numpy as np\n"
        "from dcsbench import Agent\n"
        "class Zero(Agent):\n"
        "    name = 'zero'\n"
        "    def fit(self, unlabeled, labeled, spec, budget, seed, logger):\n"
        "        self.dim = spec.action_dim\n"
        "    def act(self, obs):\n"
        "        return np.zeros((len(obs), self.dim), np.float32)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    cls = import_agent_class("readme_style_method:Zero")
    assert cls.name == "zero"
    with pytest.raises(ValueError, match="not_a_module"):
        import_agent_class("not_a_module:Zero")
