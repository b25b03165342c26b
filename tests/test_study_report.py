"""studies/report.py on a fake study folder: three version-2 records written with the project's
own record writer (no dataset, a few seconds)."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pytest

import submission_factory as sf
from dcsbench import scoring
from dcsbench.naming import record_name
from dcsbench.results import save_record

REPO = Path(__file__).resolve().parents[1]
RUNS = (("bc", 2, 0, 0.5), ("bc", 2, 1, 0.6), ("laom", 2, 0, 0.1))


def _report():
    spec = importlib.util.spec_from_file_location("study_report", REPO / "studies" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _study(tmp_path: Path) -> tuple[Path, dict]:
    """A study folder in the layout of dcsbench.study: runs/METHOD/DATASET__bB__sS.json."""
    study, records = tmp_path / "fake-study", {}
    dataset = sf.dataset_name("cheetah-run")
    for method, budget, seed, score in RUNS:
        rec = sf.make_record(method, "cheetah-run", budget, seed, score)
        save_record(rec, study / "runs" / method / record_name(None, dataset, None, budget, seed))
        records[(method, budget, seed)] = rec
    (study / "runs" / "bc" / ".work").mkdir()  # checkpoints of unfinished runs: skipped
    return study, records


def test_report_rows_readme_and_plot_with_a_valid_reference(tmp_path, monkeypatch):
    report = _report()
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(sf.write_references(tmp_path / "refs.json")))
    study, records = _study(tmp_path)
    out = tmp_path / "out"
    assert report.main([str(study), "--out", str(out)]) == 0

    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert [(r["method"], int(r["budget"]), int(r["seed"])) for r in rows] == \
        [(m, b, s) for m, b, s, _ in RUNS]
    for r in rows:
        rec = records[(r["method"], int(r["budget"]), int(r["seed"]))]
        assert r["dataset"] == "cheetah-run-distractors-tiny"
        assert float(r["return_mean"]) == pytest.approx(rec.primary.mean_return)
        assert float(r["novel_return_mean"]) == pytest.approx(rec.generalization.mean_return)
        assert float(r["normalized_score"]) == pytest.approx(
            rec.primary.mean_return / sf.REF_RETURN["cheetah-run"])
        for k in ("probe_mse_train", "probe_mse_novel", "action_var_train", "action_var_novel",
                  "probe_mse_train_random"):
            assert float(r[k]) == pytest.approx(rec.offline_metrics[k])
        assert float(r["fit_seconds"]) == rec.stage_seconds["fit"]
        assert r["record_version"] == "2"

    md = (out / "README.md").read_text(encoding="utf-8")
    for method, *_ in RUNS:
        assert f"| {method} | 2 |" in md
    bc = [records[("bc", 2, s)].primary.mean_return for s in (0, 1)]
    mean, std = sum(bc) / 2, abs(bc[0] - bc[1]) / 2
    assert f"{mean:.1f} ± {std:.1f} (n=2)" in md  # mean +- std over seeds
    assert "normalized by the reference return 600.0" in md
    assert "`" + "0" * 40 + "` (3 run(s))" in md and "cpu test" in md  # commit, machine
    assert "25 episodes on train backgrounds + 25 on novel backgrounds" in md
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # hand-written notes below the marker survive a regeneration
    (out / "README.md").write_text(md + "My reading.\n", encoding="utf-8")
    report.write_report(study, out, plot=False)
    assert (out / "README.md").read_text(encoding="utf-8").endswith(
        report.NOTES_MARKER + "\nMy reading.\n")


def test_report_does_not_normalize_on_an_invalid_reference(tmp_path):
    report = _report()
    refs = tmp_path / "refs.json"
    scoring.store_reference({"dataset": "cheetah-run-distractors-tiny", "task": "cheetah-run",
                             "setting": "distractors", "tier": "tiny", "source": "procedural",
                             "return": 50.0, "demonstrator_mean_return": 700.0,
                             "date": "2026-01-01"}, refs)
    study, records = _study(tmp_path)
    res = report.write_report(study, tmp_path / "out", references=refs, plot=False)
    assert all(r["normalized_score"] is None for r in res["rows"])
    r0 = res["rows"][0]
    assert math.isclose(r0["demo_fraction"], r0["return_mean"] / 700.0)
    md = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "not normalized (tiny tier: reference invalid)" in md
    assert all(f"| {m} |" in md for m, *_ in RUNS)
    with pytest.raises(SystemExit) as exc:
        report.main(["--help"])
    assert exc.value.code == 0
    assert report.main([str(tmp_path / "empty")]) == 2
