"""Scoring: references, normalized scores, rliable aggregates cross-checked by hand, plots, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dcsbench import catalogue, scoring
from dcsbench.results import ResultRecord, save_record

HASH = "0" * 64


def make_record(method="m", task="cheetah-run", setting="distractors", tier="tiny",
                source="procedural", budget=2, seed=0, returns=(100.0,), gen_returns=None,
                dataset=None, timestamp="2026-01-01T00:00:00+00:00") -> ResultRecord:
    """A valid record with given per-episode returns (scores are recomputed from them)."""
    def ev(bg, rets):
        rets = [float(r) for r in rets]
        return {"backgrounds": bg, "episode_seeds": list(range(len(rets))), "returns": rets,
                "mean_return": sum(rets) / len(rets)}
    data = {
        "protocol_version": catalogue.PROTOCOL_VERSION, "dcsbench_version": "0.1.0",
        "method": {"name": method, "version": "1"}, "task": task, "setting": setting,
        "tier": tier, "source": source, "budget": budget, "seed": seed,
        "dataset": {"name": dataset or f"{task}-{setting}-{tier}", "revision": "local",
                    "content_hash": HASH, "labeled_subset_hash": HASH},
        "primary": ev("train", returns),
        "generalization": ev("novel", gen_returns) if gen_returns is not None else None,
        "timestamp": timestamp,
    }
    return ResultRecord.model_validate(data)


@pytest.fixture
def refs(tmp_path, monkeypatch):
    """A private references file with reference 100 for every tiny dataset of cheetah/walker."""
    path = tmp_path / "references.json"
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(path))
    for task in ("cheetah-run", "walker-run", "hopper-hop"):
        scoring.store_reference({"dataset": f"{task}-distractors-tiny", "task": task,
                                 "setting": "distractors", "tier": "tiny", "source": "procedural",
                                 "return": 100.0, "date": "2026-01-01"}, path)
    return path


def test_reference_lookup_order(refs):
    # 1. exact measured dataset, 3. paper values for DAVIS, missing -> clear error
    assert scoring.get_reference("cheetah-run", "distractors", "procedural",
                                 "cheetah-run-distractors-tiny").ret == 100.0
    assert scoring.normalized_score(823.0, "cheetah-run", "distractors", "davis") == 1.0
    assert scoring.normalized_score(50.0, "cheetah-run", "distractors", "procedural",
                                    "cheetah-run-distractors-tiny") == 0.5
    with pytest.raises(scoring.MissingReferenceError, match="dcsbench reference humanoid-walk"):
        scoring.get_reference("humanoid-walk", "distractors", "procedural",
                              "humanoid-walk-distractors-tiny")
    with pytest.raises(ValueError, match="Valid tasks"):
        scoring.get_reference("cheetah-walk", "distractors", "procedural")
    # 2. a full-tier measured reference serves other tiers of the same task/setting/source
    scoring.store_reference({"dataset": "humanoid-walk-clean-full", "task": "humanoid-walk",
                             "setting": "clean", "tier": "full", "source": "procedural",
                             "return": 400.0}, refs)
    assert scoring.get_reference("humanoid-walk", "clean", "procedural",
                                 "humanoid-walk-clean-small").ret == 400.0


def test_missing_reference_modes(refs):
    rec = make_record(task="humanoid-walk", returns=[10.0])
    with pytest.raises(scoring.MissingReferenceError):
        scoring.records_to_frame([rec])
    with pytest.warns(UserWarning, match="no reference"):
        frame = scoring.records_to_frame([rec], missing_reference="nan")
    assert math.isnan(frame.loc[0, "primary_score"]) and frame.loc[0, "primary_return"] == 10.0


def test_frame_recomputes_scores_and_dedupes(refs):
    recs = [make_record(returns=[10.0, 30.0], gen_returns=[5.0, 5.0]),
            make_record(returns=[90.0], timestamp="2026-02-01T00:00:00+00:00")]
    with pytest.warns(UserWarning, match="duplicate"):
        frame = scoring.records_to_frame(recs)
    assert len(frame) == 1 and frame.loc[0, "primary_score"] == pytest.approx(0.9)
    frame = scoring.records_to_frame(recs[:1])
    assert frame.loc[0, "primary_score"] == pytest.approx(0.2)
    assert frame.loc[0, "generalization_score"] == pytest.approx(0.05)


# A known runs x tasks matrix of normalized scores (3 seeds x 3 tasks).
KNOWN = np.array([[0.1, 0.5, 1.2],
                  [0.3, 0.7, 0.9],
                  [0.2, 0.4, 1.5]])
TASKS = ("cheetah-run", "walker-run", "hopper-hop")


def known_records(method="m", matrix=KNOWN, budget=2):
    return [make_record(method=method, task=TASKS[j], budget=budget, seed=i,
                        returns=[100.0 * matrix[i, j]])
            for i in range(matrix.shape[0]) for j in range(matrix.shape[1])]


def test_aggregates_match_hand_computation(refs):
    agg = scoring.aggregate(known_records(), reps=300, seed=1)
    assert len(agg) == 1
    row = agg.iloc[0]
    flat = np.sort(KNOWN.ravel())                       # 9 scores
    assert row["mean"] == pytest.approx(flat.mean())
    # IQM = 25% trimmed mean: trim int(0.25*9)=2 from each end, mean of the middle 5
    assert row["iqm"] == pytest.approx(flat[2:7].mean())
    assert row["iqm"] == pytest.approx((0.3 + 0.4 + 0.5 + 0.7 + 0.9) / 5)
    # optimality gap = mean of (1 - min(score, 1))
    assert row["optimality_gap"] == pytest.approx(np.mean(1 - np.minimum(flat, 1.0)))
    assert row["n_tasks"] == 3 and row["n_runs"] == 3
    for m in ("mean", "iqm", "optimality_gap"):
        assert row[f"{m}_lo"] <= row[m] <= row[f"{m}_hi"]
    # stratified bootstrap resamples seeds *within* tasks: the mean's CI stays inside the
    # range of per-seed means of task-wise resamples
    assert row["mean_lo"] >= np.mean(KNOWN.min(0)) - 1e-9
    assert row["mean_hi"] <= np.mean(KNOWN.max(0)) + 1e-9
    # reproducible with the same seed
    again = scoring.aggregate(known_records(), reps=300, seed=1).iloc[0]
    assert again["iqm_lo"] == row["iqm_lo"] and again["mean_hi"] == row["mean_hi"]


def test_probability_of_improvement_and_label_efficiency(refs):
    better = KNOWN + 2.0            # dominates on every task
    recs = known_records("bc") + known_records("good", better) + known_records("same")
    recs += known_records("bc", budget=8) + known_records("good", KNOWN + 0.5, budget=8)
    poi = scoring.probability_of_improvement(recs, baseline="bc", reps=200)
    good2 = poi[(poi.method == "good") & (poi.budget == 2)].iloc[0]
    assert good2["prob"] == pytest.approx(1.0)
    same2 = poi[(poi.method == "same") & (poi.budget == 2)].iloc[0]
    assert same2["prob"] == pytest.approx(0.5)          # identical scores -> 0.5 by definition
    assert set(poi.budget) == {2, 8}
    curve, summary = scoring.label_efficiency(recs, metric="mean", reps=100)
    good = summary.set_index("method").loc["good"]
    m2, m8 = (KNOWN + 2.0).mean(), (KNOWN + 0.5).mean()
    # two budgets 2 and 8 -> the log-axis mean is the average of the two end points
    assert good["log_mean"] == pytest.approx((m2 + m8) / 2)
    assert good["budgets"] == [2, 8]


def test_ragged_seeds_are_dropped_with_warning(refs):
    recs = known_records()[:-1]     # last (seed 2, hopper) missing
    with pytest.warns(UserWarning, match="dropped"):
        agg = scoring.aggregate(recs, reps=50)
    assert agg.iloc[0]["n_runs"] == 2


def test_plots_and_cli(refs, tmp_path, capsys):
    from dcsbench.cli import main

    recs = known_records("bc") + known_records("laom", KNOWN * 1.1)
    run_dir = tmp_path / "runs"
    for i, r in enumerate(recs):
        save_record(r, run_dir / f"r{i}.json")
    paths = scoring.write_plots(scoring.load_records([run_dir]), tmp_path / "plots", reps=50)
    assert {p.name for p in paths} == {"aggregates.png", "profiles.png", "label_efficiency.png",
                                       "improvement.png"}
    assert all(p.stat().st_size > 1000 for p in paths)

    assert main(["score", str(run_dir), "--format", "json", "--reps", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["method"] for r in out["aggregates"]} == {"bc", "laom"}
    assert len(out["runs"]) == len(recs)
    assert main(["score", str(run_dir), "--format", "csv", "--reps", "50"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("method,budget,n_tasks")
    assert main(["score", str(run_dir), "--reps", "50"]) == 0
    table = capsys.readouterr().out
    assert "laom" in table and "IQM" in table
    # a malformed record is rejected naming the field
    bad = json.loads((run_dir / "r0.json").read_text())
    bad["budget"] = -1
    (run_dir / "bad.json").write_text(json.dumps(bad))
    assert main(["score", str(run_dir)]) == 2
    assert "budget" in capsys.readouterr().err


# ----------------------------------------------------------------------- reference validity


def _store(path, dataset, ret, demo, tier="tiny", task="cheetah-run"):
    return scoring.store_reference({"dataset": dataset, "task": task, "setting": "distractors",
                                    "tier": tier, "source": "procedural", "return": ret,
                                    "demonstrator_mean_return": demo}, path)


def test_reference_validity_rule():
    assert scoring.reference_validity(400.0, 800.0) == (0.5, True)      # the boundary counts
    assert scoring.reference_validity(399.0, 800.0)[1] is False
    assert scoring.reference_validity(50.0, None) == (None, True)       # hand-written, unknown
    assert scoring.reference_validity(0.0, 800.0) == (None, False)      # nothing to divide by
    assert scoring.reference_validity(5.0, 0.0) == (None, False)        # random-policy build


def test_invalid_reference_is_stored_skipped_and_reports_the_demo_fraction(tmp_path, monkeypatch):
    path = tmp_path / "refs.json"
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(path))
    _store(path, "cheetah-run-distractors-tiny", 54.3, 730.3)
    entry = json.loads(path.read_text())["references"]["cheetah-run-distractors-tiny/procedural"]
    assert entry["valid"] is False and entry["demonstrator_fraction"] == pytest.approx(0.0744, abs=1e-4)
    ref = scoring.load_measured_references()["cheetah-run-distractors-tiny/procedural"]
    assert (ref.valid, round(ref.fraction, 4), ref.demonstrator_return) == (False, 0.0744, 730.3)
    with pytest.raises(scoring.InvalidReferenceError, match="7.4% of the demonstrators") as err:
        scoring.get_reference("cheetah-run", "distractors", "procedural", "cheetah-run-distractors-tiny")
    assert err.value.reference.dataset == "cheetah-run-distractors-tiny"
    rec = make_record(returns=[73.03, 73.03], gen_returns=[36.515, 36.515])
    row = scoring.records_to_frame([rec]).iloc[0]
    assert math.isnan(row["primary_score"]) and math.isnan(row["generalization_score"])
    assert not row["reference_valid"] and row["demonstrator_return"] == 730.3
    assert row["primary_demo_fraction"] == pytest.approx(0.1)
    assert row["generalization_demo_fraction"] == pytest.approx(0.05)
    # a tampered "valid": true in the file is ignored: validity is recomputed on load
    data = json.loads(path.read_text())
    data["references"]["cheetah-run-distractors-tiny/procedural"]["valid"] = True
    path.write_text(json.dumps(data))
    assert not scoring.load_measured_references()["cheetah-run-distractors-tiny/procedural"].valid
    # a valid full-tier reference of the same task serves the tier instead of the invalid one
    _store(path, "cheetah-run-distractors-full", 700.0, 730.3, tier="full")
    row = scoring.records_to_frame([rec]).iloc[0]
    assert row["reference_valid"] and row["primary_score"] == pytest.approx(73.03 / 700.0)
    assert row["primary_demo_fraction"] == pytest.approx(0.1)   # its own dataset's demonstrators


def test_packaged_tiny_reference_loads_as_invalid(monkeypatch):
    monkeypatch.delenv(scoring.REFERENCES_ENV, raising=False)
    ref = scoring.load_measured_references()["cheetah-run-distractors-tiny/procedural"]
    assert ref.ret == pytest.approx(54.305, abs=1e-3) and not ref.valid
    assert ref.fraction == pytest.approx(54.305 / 730.256, abs=1e-4)


def test_score_cli_does_not_call_an_invalid_reference_normalized(tmp_path, monkeypatch, capsys):
    from dcsbench.cli import main
    from dcsbench.results import parse_record

    path = tmp_path / "refs.json"
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(path))
    _store(path, "cheetah-run-distractors-tiny", 54.3, 730.3)
    runs = tmp_path / "runs"
    runs.mkdir()
    for seed in (0, 1):
        save_record(make_record(seed=seed, returns=[146.06] * 3, gen_returns=[73.03] * 3),
                    runs / f"r{seed}.json")
    assert main(["score", str(runs), "--reps", "50"]) == 0
    text = capsys.readouterr().out
    assert "NOT NORMALIZED" in text and "7.4% of the demonstrators' 730.3" in text
    assert "Fraction of the demonstrators' return" in text
    assert "Primary score (train backgrounds, normalized)" not in text
    assert "demo_fraction" in text and "0.200" in text
