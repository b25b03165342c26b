"""Tamper-proof runs: each attack a hostile submitter tried on the runner, as a test.

The agents (tests/hostile_agents.py) run through the real runner on a tiny dataset built by the
test session (4 train + 2 eval trajectories of 20 steps) with real environments and short
episodes. Before the agent ran in its own process, every test here failed: ``act`` could add
12345 to the evaluation loop's returns, ``latent_actions`` could reach the eval split, a name
like ``../../escape`` created folders outside ``out``, and a rerun with other settings kept the
old record. Data-side attacks are in test_tamper_data.py, validator attacks in
test_tamper_validator.py.
"""

from __future__ import annotations

import json

import hostile_agents as ha
import pytest
import trivial_agents as ta

from dcsbench import protocol
from dcsbench.isolation import AgentError

NAME = "cheetah-run-distractors-tiny"
KW = dict(n_episodes=2, episode_length=5, num_envs=2, progress=False, verbose=False)


def _report(path):
    return json.loads(path.read_text()) if path.exists() else {}


def test_act_cannot_rewrite_the_returns(tiny_dataset_home, tmp_path):
    report = tmp_path / "report.json"
    rec = protocol.evaluate(ha.ReturnRewriter(report=str(report)), NAME, 2, 0,
                            out=tmp_path / "runs", **KW)
    honest = protocol.evaluate(ta.ConstantAgent(value=0.0), NAME, 2, 0, **KW)
    assert report.exists(), "the attack did not run"
    assert _report(report).get("act", []) == []          # no returns, env or data in reach
    assert rec.primary.returns == pytest.approx(honest.primary.returns)
    assert max(rec.primary.returns) <= 5.0                # 5 steps, reward <= 1 per step


def test_latent_actions_cannot_reach_the_eval_split(tiny_dataset_home, tmp_path):
    report = tmp_path / "report.json"
    rec = protocol.evaluate(ha.LatentSnoop(report=str(report)), NAME, 2, 0, **KW)
    assert "probe_mse_train" in rec.offline_metrics       # the probe stage did call it
    assert report.exists() and _report(report).get("latents", []) == []


def test_agent_process_does_not_see_where_the_data_lives(tiny_dataset_home, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("DCSBENCH_REFERENCES", str(tmp_path / "refs.json"))
    report = tmp_path / "report.json"
    protocol.evaluate(ha.EnvSnoop(report=str(report), root=str(tiny_dataset_home)), NAME, 2, 0,
                      **KW)
    got = _report(report)
    assert got.get("ran") == ["fit"] and got.get("fit") == []


@pytest.mark.parametrize("agent, match", [
    (ha.Crasher(), "died"),
    (ha.Garbage(kind="string"), "not an array|expected real"),
    (ha.Garbage(kind="complex"), "complex"),
    (ha.Garbage(kind="shape"), "shape"),
])
def test_crash_or_garbage_ends_the_run_without_a_record(tiny_dataset_home, tmp_path, agent,
                                                        match):
    out = tmp_path / "runs"
    with pytest.raises((AgentError, ValueError), match=match):
        protocol.evaluate(agent, NAME, 2, 0, out=out, **KW)
    assert not list(out.glob("*.json"))


def test_a_hung_agent_times_out_without_a_record(tiny_dataset_home, tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(AgentError, match="no answer within 3 s"):
        protocol.evaluate(ha.Hanger(), NAME, 2, 0, out=out, call_timeout_s=3, **KW)
    assert not list(out.glob("*.json"))


def test_the_harness_never_unpickles_what_the_agent_sends(tiny_dataset_home, tmp_path):
    marker, report = tmp_path / "pwned", tmp_path / "report.json"
    with pytest.raises(AgentError, match="malformed reply"):
        protocol.evaluate(ha.PickleSender(marker=str(marker), report=str(report)), NAME, 2, 0,
                          **KW)
    assert _report(report).get("act") == ["sent"]         # the attack ran ...
    assert not marker.exists()                            # ... and no code of it did


def test_names_are_checked_before_any_work(tiny_dataset_home, tmp_path):
    report, out = tmp_path / "report.json", tmp_path / "a" / "b" / "runs"
    with pytest.raises(ValueError, match="not a valid method name"):
        protocol.evaluate(ha.Escaper(report=str(report)), NAME, 2, 0, out=out, **KW)
    assert not report.exists()                            # fit never ran
    assert sorted(p.name for p in tmp_path.iterdir()) == []   # no folder anywhere
    with pytest.raises(ValueError, match="not a valid method name"):
        protocol.record_path(tmp_path, "../x", NAME, "procedural", 2, 0)


def test_rerun_compares_fingerprints(tiny_dataset_home, tmp_path):
    out = tmp_path / "runs"
    first = protocol.evaluate(ta.ConstantAgent(value=0.0), NAME, 2, 0, out=out, **KW)
    again = protocol.evaluate(ta.ConstantAgent(value=0.0), NAME, 2, 0, out=out, **KW)
    assert again == first                                 # the same run: the record is returned
    with pytest.raises(protocol.RecordExistsError, match="config"):
        protocol.evaluate(ta.ConstantAgent(value=0.5), NAME, 2, 0, out=out, **KW)
    with pytest.raises(protocol.RecordExistsError, match="seeds"):
        protocol.evaluate(ta.ConstantAgent(value=0.0), NAME, 2, 0, out=out,
                          **{**KW, "n_episodes": 1})
    replaced = protocol.evaluate(ta.ConstantAgent(value=0.5), NAME, 2, 0, out=out,
                                 overwrite=True, **KW)
    assert replaced.method.config == {"value": 0.5}
    assert protocol.load_record(next(out.glob("*.json"))) == replaced


def test_an_unknown_budget_lists_the_valid_ones_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="Valid budgets: 2, 4, 8"):
        protocol.evaluate(ta.ConstantAgent(), NAME, 3, 0, out=tmp_path / "runs", **KW)
    assert not (tmp_path / "runs").exists()
