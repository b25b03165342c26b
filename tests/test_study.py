"""Studies: plan validation, packing within a lent machine's limits, the deadline (stop, keep
finished records, resume from the work folder), the real Ray executor, and
benchmarks/device_study.sh end to end at tiny scale on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from dcsbench import catalogue, study
from dcsbench.results import load_record

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import trivial_agents as ta  # noqa: E402

DATASET = "cheetah-run-distractors-tiny"
SHORT_EVAL = {"episodes": 2, "episode_length": 20, "num_envs": 1, "generalization": False}


class SlowAct(ta.MeanAction):
    """MeanAction whose ``act`` sleeps the seconds written in ``sleep_file`` (read at each call,
    so a test can slow the first study call and speed up the resumed one without changing the
    run's configuration, which is part of its fingerprint)."""

    name = "slow-act"

    def act(self, obs):
        try:
            time.sleep(float(Path(self.config["sleep_file"]).read_text()))
        except (OSError, ValueError, KeyError):
            pass
        return super().act(obs)


def _plan(**kw) -> study.Plan:
    data = {"name": "t", "datasets": [DATASET], "methods": ["bc"], "budgets": [2], "seeds": [0],
            "reference": False, "evaluation": dict(SHORT_EVAL),
            "executor": {"kind": "local", "workers": 1, "grace_s": 3}, "min_start_minutes": 0.05}
    data.update(kw)
    return study.parse_plan(data)


# ------------------------------------------------------------------ plans


def test_committed_plans_parse_and_the_first_shard_is_the_issue_s():
    first = study.load_plan(REPO / "studies/plans/first-shard.yaml")
    assert first.datasets == ("cheetah-run-distractors-small",)
    assert first.methods == ("bc", "idm", "lapo", "laom", "laom-sup")
    assert first.budgets == (16, 128) and first.seeds == (0,) and first.preset == "small"
    assert first.reference is not None and first.reference["method"] == "bc"
    specs = study.plan_specs(first, "/tmp/s")
    assert [s.kind for s in specs] == ["reference"] + ["run"] * 10   # references first
    ref = specs[0]
    assert ref.budget == "all" and ref.references == "/tmp/s/references.json"
    assert ref.record == "/tmp/s/reference/cheetah-run-distractors-small__ball__s0.json"
    assert specs[1].record == "/tmp/s/runs/bc/cheetah-run-distractors-small__b16__s0.json"
    ci = study.load_plan(REPO / "studies/plans/ci-tiny.yaml")
    assert ci.datasets == (DATASET,) and "laom" in ci.methods and ci.preset == "tiny"
    assert "lam.epochs=0.25" in ci.method_overrides("laom")
    assert "runtime.device=cpu" in ci.method_overrides("bc")
    for path in sorted((REPO / "studies/plans").glob("*.yaml")):  # every committed plan loads
        study.plan_specs(study.load_plan(path), "/tmp/s")
    full = study.load_plan(REPO / "studies/plans/reference-small.yaml")
    assert {d.split("-distractors")[0] for d in full.datasets} == set(catalogue.TASKS)  # all four
    assert set(first.datasets) <= set(full.datasets) and set(first.methods) == set(full.methods)


@pytest.mark.parametrize("change, match", [
    ({"colour": 1}, "unknown plan key"),
    ({"budgets": [16]}, r"budget\(s\) \[16\] not offered"),
    ({"methods": ["lapp"]}, "Did you mean"),
    ({"overrides": {"laom": ["lam.lr=1"]}}, "not a method of the plan"),
    ({"reference": {"method": "laom"}}, "method bc"),
    ({"evaluation": {"episodez": 1}}, "unknown evaluation key"),
    ({"seeds": [-1]}, "integers >= 0"),
    ({"name": "a/b"}, "letters, digits"),
])
def test_plan_errors_name_the_problem(change, match):
    with pytest.raises(ValueError, match=match):
        _plan(**change)


def test_max_minutes_too_small_is_refused(tmp_path):
    """Refused before any work: no study folder, no data check (the plan's dataset need not be
    built: the test does not depend on another test having built it)."""
    with pytest.raises(ValueError, match="leaves no time"):
        study.run_study(_plan(), tmp_path / "s", max_minutes=0.1, root=str(tmp_path / "empty-cache"))
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ pack / unpack


def _fake_study(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "runs/bc").mkdir(parents=True)
    (root / "runs/bc/x__b2__s0.json").write_text('{"record": 1}')
    (root / "references.json").write_text('{"format": 1, "references": {}}')
    for name, size in (("small", 20_000), ("big", 300_000)):
        w = root / f"runs/laom/.work/{name}__b2__s0-0123456789abcdef/checkpoint"
        w.mkdir(parents=True)
        (w / "weights.bin").write_bytes(rng.bytes(size))  # incompressible
        (w.parent / "fit_done.json").write_text('{"seconds": 1.0}')


def test_pack_fits_the_file_limits_and_unpacks(tmp_path):
    src = tmp_path / "study"
    _fake_study(src)
    files = study.pack(src, tmp_path / "out", max_files=8, max_bytes=64 * 1024)
    names = sorted(p.name for p in files)
    assert names[0] == "records.tar.gz" and all(".part" in n for n in names[1:])
    assert len(files) <= 8 and all(p.stat().st_size <= 64 * 1024 for p in files)
    assert all(all(c.isalnum() or c in "._-" for c in p.name) for p in files)
    dst = tmp_path / "elsewhere"
    (dst / "runs/bc").mkdir(parents=True)
    (dst / "runs/bc/x__b2__s0.json").write_text('{"record": "local"}')  # a local record wins
    restored = study.unpack(tmp_path / "out", dst)
    assert (dst / "runs/bc/x__b2__s0.json").read_text() == '{"record": "local"}'
    assert (dst / "references.json").is_file()
    for name in ("small", "big"):
        got = next((dst / "runs/laom/.work").glob(f"{name}__*")) / "checkpoint/weights.bin"
        want = next((src / "runs/laom/.work").glob(f"{name}__*")) / "checkpoint/weights.bin"
        assert got.read_bytes() == want.read_bytes()
    assert len(restored) == 5


def test_pack_drops_the_largest_checkpoints_over_the_budget(tmp_path):
    src = tmp_path / "study"
    _fake_study(src)
    files = study.pack(src, tmp_path / "out", max_files=2, max_bytes=64 * 1024)
    assert len(files) <= 2 and all(p.stat().st_size <= 64 * 1024 for p in files)
    with tarfile.open(tmp_path / "out/records.tar.gz") as tar:
        meta = json.load(tar.extractfile("pack.json"))
    assert len(meta["dropped_work_folders"]) == 1 and "big__" in meta["dropped_work_folders"][0]
    assert any("small__" in w for w in meta["work_folders"])


def test_unpack_refuses_paths_leaving_the_study(tmp_path):
    bad = tmp_path / "p/records.tar.gz"
    bad.parent.mkdir()
    payload = tmp_path / "evil.json"
    payload.write_text("{}")
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(payload, arcname="../evil.json")
    with pytest.raises(tarfile.TarError):
        study.unpack(bad.parent, tmp_path / "s")
    assert not (tmp_path / "evil.json.x").exists()


# ------------------------------------------------------------------ the deadline


def test_deadline_keeps_records_and_resumes_the_run_in_flight(tiny_dataset_home, tmp_path,
                                                              monkeypatch):
    """Call 1: the run in flight at the deadline is stopped after its fit (checkpointed), the
    next one is not started; call 2 resumes: no second fit, both records written."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(REPO)]))
    monkeypatch.setattr(study, "RESERVE_S", 1.0)
    sleep, fits = tmp_path / "sleep", tmp_path / "fits"
    sleep.write_text("1.0")  # 20 steps per episode: 20 s per episode, 2 episodes
    plan = _plan(methods=["test_study:SlowAct"], budgets=[2, 4],
                 overrides={"test_study:SlowAct": [f"sleep_file={sleep}", f"fits_file={fits}"]})
    out = tmp_path / "s"
    t0 = time.time()
    res = study.run_study(plan, out, max_minutes=0.7, verbose=False)
    assert time.time() - t0 < 0.7 * 60 + 15
    by_budget = {r["budget"]: r for r in res.status["runs"]}
    assert by_budget[2]["state"] == "partial" and by_budget[2]["fit_done"]
    assert by_budget[4]["state"] == "todo"
    assert sorted(res.results.values()) == ["deadline: interrupted in flight",
                                            "deadline: not started"]
    assert not res.failed and fits.read_text().count("fit") == 1
    st = json.loads((out / "status.json").read_text())
    assert (st["done"], st["partial"], st["todo"]) == (0, 1, 1)
    assert "remaining (2)" in study.format_status(st)

    sleep.write_text("0")
    res = study.run_study(plan, out, verbose=False)
    assert res.status["done"] == 2 and not res.failed
    assert fits.read_text().count("fit") == 2          # budget 2 resumed: its fit did not rerun
    recs = [load_record(r) for r in sorted((out / "runs/SlowAct").glob("*.json"))]
    assert [r.budget for r in recs] == [2, 4] and all(len(r.primary.returns) == 2 for r in recs)


# ------------------------------------------------------------------ Ray, for real


@pytest.mark.slow
def test_ray_executor_on_a_real_local_ray(tiny_dataset_home, tmp_path, monkeypatch):
    """`dcsbench study --executor ray` against ray.init(num_cpus=2) on 127.0.0.1: runs as Ray
    tasks with per-method resources, records written; then a deadline stops a slow run."""
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(REPO)]))
    monkeypatch.setattr(study, "RESERVE_S", 1.0)
    ray.init(num_cpus=2, include_dashboard=False, address="local",
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"],
                                       "DCSBENCH_HOME": str(tiny_dataset_home)}})
    try:
        plan = _plan(methods=["trivial_agents:MeanAction", "trivial_agents:ConstantAgent"],
                     resources={"trivial_agents:MeanAction": {"num_cpus": 1}},
                     executor={"kind": "ray", "num_cpus": 1, "grace_s": 3})
        res = study.run_study(plan, tmp_path / "s", verbose=False)
        assert not res.failed and res.status["done"] == 2
        assert sorted(p.parent.name for p in (tmp_path / "s/runs").rglob("*.json")) == [
            "ConstantAgent", "MeanAction"]

        sleep = tmp_path / "sleep"
        sleep.write_text("2.0")
        plan = _plan(methods=["test_study:SlowAct"],
                     overrides={"test_study:SlowAct": [f"sleep_file={sleep}"]},
                     executor={"kind": "ray", "num_cpus": 1, "grace_s": 3})
        t0 = time.time()
        res = study.run_study(plan, tmp_path / "slow", max_minutes=0.6, verbose=False)
        assert time.time() - t0 < 0.6 * 60 + 30
        assert list(res.results.values()) == ["deadline: interrupted in flight"]
        assert res.status["runs"][0]["state"] in ("partial", "todo") and not res.failed
    finally:
        ray.shutdown()


# ------------------------------------------------------------------ the device script


def _script(plan: Path, out: Path, home: Path, study_dir: Path, minutes: float, resume=None,
            extra_env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "PY": sys.executable, "DCSBENCH_HOME": str(home),
           "STUDY_DIR": str(study_dir), "TOTAL_MINUTES": str(minutes), "WHEELS": "/nonexistent",
           "RESUME": str(resume or "/nonexistent"),
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)]), **(extra_env or {})}
    return subprocess.run(["bash", str(REPO / "benchmarks/device_study.sh"), str(plan)], env=env,
                          capture_output=True, text=True, timeout=minutes * 60 + 120)


def _check_returned(out: Path) -> list[Path]:
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert 1 <= len(files) <= 8
    assert all(p.stat().st_size <= 16 * 2**20 for p in files)
    assert sum(p.stat().st_size for p in files) <= 64 * 2**20
    assert all(all(c.isalnum() or c in "._-" for c in p.name) for p in files)
    assert (out / "records.tar.gz").is_file() and (out / "device_study.log").is_file()
    return files


def test_device_script_fast_variant(tiny_dataset_root, tmp_path):
    """The script on an already-built dataset, one trivial run: packed files within the limits;
    a second session resuming from them has nothing left to run."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(json.dumps({"name": "fast", "datasets": [DATASET],
                                "methods": ["trivial_agents:ConstantAgent"], "budgets": [2],
                                "seeds": [0], "reference": False, "evaluation": SHORT_EVAL,
                                "executor": {"kind": "local", "workers": 1, "grace_s": 3},
                                "min_start_minutes": 0.05}))
    p = _script(plan, tmp_path / "out1", tiny_dataset_root, tmp_path / "s1", 2.0)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "already built" in p.stdout and "1/1 done" in p.stdout
    _check_returned(tmp_path / "out1")
    p = _script(plan, tmp_path / "out2", tiny_dataset_root, tmp_path / "s2", 2.0,
                resume=tmp_path / "out1")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "resuming from" in p.stdout and "before: 1 done, 0 partial, 0 not started" in p.stdout
    assert (tmp_path / "s2/runs/ConstantAgent" / f"{DATASET}__b2__s0.json").is_file()


@pytest.mark.slow
def test_device_script_end_to_end_ci_tiny(tmp_path):
    """benchmarks/device_study.sh with studies/plans/ci-tiny.yaml from a bare cache: builds the
    small tiny dataset, runs BC's reference + BC + LAOM, returns <= 8 files that restore into a
    complete study elsewhere."""
    home = tmp_path / "home"
    p = _script(REPO / "studies/plans/ci-tiny.yaml", tmp_path / "out", home, tmp_path / "s", 4.0)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "building cheetah-run-distractors-tiny" in p.stdout and "3/3 done" in p.stdout
    _check_returned(tmp_path / "out")
    elsewhere = tmp_path / "restored"
    study.unpack(tmp_path / "out", elsewhere)
    st = study.study_status(study.load_plan(REPO / "studies/plans/ci-tiny.yaml"), elsewhere)
    assert st["done"] == 3
    ref = st["references"][f"{DATASET}/procedural"]
    assert ref["valid"] is False  # a random-policy, 20-step build: nothing to normalize by
