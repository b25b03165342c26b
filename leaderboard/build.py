"""Aggregate validated submissions into the leaderboard (JSON + CSV + static HTML site).

Pipeline::

    subs = collect("submissions")                      # validate every folder, keep the valid ones
    board = aggregate_board(subs, reps=2000)           # plain dict, written as leaderboard.json
    build_site("submissions", "leaderboard/site")      # JSON, CSV, PNG plots, index.html

Results are grouped into *tracks* ``(setting, tier, source)``: numbers are only comparable inside
a track. Per track and method:

* per budget: mean and IQM of the normalized primary score over tasks x seeds, with 95%
  stratified-bootstrap CIs (rliable via :func:`dcsbench.scoring.aggregate`);
* label-efficiency score: the IQM-vs-budget curve's mean over log2(budget)
  (:func:`dcsbench.scoring.label_efficiency`);
* generalization score: the same label-efficiency score computed on the novel-background
  evaluation, plus its IQM per budget;
* probability of improvement over BC at each budget when a ``bc`` submission exists;
* per-task breakdown: mean and standard deviation over seeds of the normalized score;
* latent-action probe MSE on the eval split (novel backgrounds), for methods with latents;
* coverage: present / expected (task, budget, seed) cells; incomplete rows are marked.

Only records of submissions without validation errors reach the aggregates; invalid
submissions are listed with their errors. Nothing from a submission is executed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcsbench import __version__, registry
from dcsbench.results import atomic_write_text
from dcsbench.submissions import Submission, discover, validate_submission

#: Version of the leaderboard.json layout.
BOARD_FORMAT = 1


@dataclass
class Collected:
    """Outcome of :func:`collect`: valid and rejected submissions."""

    valid: list[Submission]
    rejected: list[Submission]


def collect(root: str | os.PathLike = "submissions", include_local: bool = False,
            known=None, allow_noncompliant: bool = False) -> Collected:
    """Validate every submission folder under ``root``.

    Args:
        root: the submissions folder.
        include_local: trust datasets known only from the local cache (default False: the
            leaderboard uses committed hashes only, as CI does).
        known: a prepared :class:`dcsbench.known_datasets.KnownDatasets` (tests).
        allow_noncompliant: preview mode, see :func:`dcsbench.submissions.validate_submission`.
    """
    from dcsbench.known_datasets import load_known_datasets

    if known is None:
        known = load_known_datasets(include_local=include_local)
    valid, rejected = [], []
    for folder in discover(root):
        sub = validate_submission(folder, known=known, allow_noncompliant=allow_noncompliant)
        (valid if sub.ok else rejected).append(sub)
    return Collected(valid, rejected)


def _num(x: Any) -> float | None:
    """JSON-safe float (NaN -> None)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _method_info(sub: Submission) -> dict[str, Any]:
    m = sub.metadata
    return {"method": m.method, "title": m.title, "version": m.version, "reference": m.reference,
            "authors": list(m.authors), "paper_url": m.paper_url, "code_url": m.code_url,
            "description": m.description, "labels_used": m.labels_used, "compute": m.compute,
            "n_records": len(sub.records)}


def aggregate_board(subs: list[Submission], reps: int = 2000, seed: int = 0,
                    baseline: str = "bc") -> dict[str, Any]:
    """The leaderboard as a JSON-ready dict (layout in ``submissions/README.md``).

    Args:
        subs: valid submissions (see :func:`collect`).
        reps: bootstrap replications for the CIs.
        seed: bootstrap seed (the board is reproducible).
        baseline: method used for probability of improvement.
    """
    from dcsbench import scoring

    records = [rec for sub in subs for _, rec in sub.records]
    info = {sub.metadata.method: _method_info(sub) for sub in subs}
    tracks = []
    if records:
        frame = scoring.records_to_frame(records, missing_reference="nan", dedupe=False)
        frame["track"] = frame["setting"] + "/" + frame["tier"] + "/" + frame["source"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seeds dropped for rectangles are visible in n_runs
            for track, tf in frame.groupby("track", sort=True):
                tracks.append(_track(track, tf, info, subs, reps, seed, baseline))
    return {
        "format": BOARD_FORMAT,
        "protocol_version": registry.PROTOCOL_VERSION,
        "dcsbench_version": __version__,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bootstrap_reps": reps,
        "methods": info,
        "tracks": tracks,
    }


def _track(track: str, tf, info, subs, reps, seed, baseline) -> dict[str, Any]:
    from dcsbench import scoring

    setting, tier, source = track.split("/")
    budgets = list(registry.TIERS[tier].budgets)
    tasks = [t for t in registry.TASKS if t in set(tf["task"])]
    # label_efficiency's curve *is* aggregate(by=(method, budget)): one bootstrap serves both
    agg, le = scoring.label_efficiency(tf, reps=reps, seed=seed)
    gen_tf = tf[tf["generalization_score"].notna()]
    gen, gen_le = (scoring.label_efficiency(gen_tf, score="generalization_score", reps=reps, seed=seed)
                   if len(gen_tf) else (None, None))
    poi = scoring.probability_of_improvement(tf, baseline=baseline, reps=reps, seed=seed)

    rows = []
    for method, mf in tf.groupby("method", sort=True):
        cov = next(s for s in subs if s.metadata.method == method).coverage[(setting, tier, source)]
        row: dict[str, Any] = {
            "method": method, "title": info[method]["title"], "reference": info[method]["reference"],
            "protocol_compliant": bool(mf["protocol_compliant"].all()),
            "episodes_per_run": sorted({int(n) for n in mf["n_episodes"]}),
            "coverage": {"present": len(cov.present & cov.expected), "expected": len(cov.expected),
                         "complete": cov.complete,
                         "missing": [list(c) for c in sorted(cov.missing)]},
            "budgets": {}, "per_task": {},
        }
        for b in budgets:
            cell: dict[str, Any] = {}
            a = agg[(agg["method"] == method) & (agg["budget"] == b)]
            if len(a):
                r = a.iloc[0]
                cell.update({k: _num(r[k]) for k in ("mean", "mean_lo", "mean_hi", "iqm", "iqm_lo",
                                                     "iqm_hi", "optimality_gap")})
                cell.update(n_runs=int(r["n_runs"]), n_tasks=int(r["n_tasks"]))
            if gen is not None:
                g = gen[(gen["method"] == method) & (gen["budget"] == b)]
                if len(g):
                    cell.update({f"gen_{k}": _num(g.iloc[0][k]) for k in ("mean", "iqm", "iqm_lo", "iqm_hi")})
            probe = _probe(mf[mf["budget"] == b])
            if probe:
                cell.update(probe)
            if len(poi):
                p = poi[(poi["method"] == method) & (poi["budget"] == b)]
                if len(p):
                    cell.update(poi=_num(p.iloc[0]["prob"]), poi_lo=_num(p.iloc[0]["prob_lo"]),
                                poi_hi=_num(p.iloc[0]["prob_hi"]))
            if cell:
                row["budgets"][str(b)] = cell
        le_row = le[le["method"] == method]
        row["label_efficiency"] = _num(le_row.iloc[0]["log_mean"]) if len(le_row) else None
        row["label_efficiency_budgets"] = list(le_row.iloc[0]["budgets"]) if len(le_row) else []
        if gen_le is not None and len(gen_le[gen_le["method"] == method]):
            row["generalization"] = _num(gen_le[gen_le["method"] == method].iloc[0]["log_mean"])
        else:
            row["generalization"] = None
        for task, tfm in mf.groupby("task", sort=False):
            per = {}
            for b, bf in tfm.groupby("budget"):
                s = bf["primary_score"].astype(float)
                gs = bf["generalization_score"].astype(float)
                per[str(int(b))] = {"mean": _num(s.mean()), "std": _num(s.std(ddof=0)),
                                    "gen_mean": _num(gs.mean()), "n_seeds": int(s.notna().sum()),
                                    "mean_return": _num(bf["primary_return"].mean())}
            row["per_task"][task] = per
        rows.append(row)
    rows.sort(key=lambda r: (not r["coverage"]["complete"],
                             -(r["label_efficiency"] if r["label_efficiency"] is not None else -math.inf),
                             r["method"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return {"track": track, "setting": setting, "tier": tier, "source": source,
            "budgets": budgets, "tasks": tasks, "rows": rows}


def _probe(runs) -> dict[str, Any]:
    """Mean latent-action probe MSE on the eval split (novel backgrounds) over runs that report
    it, and its mean ratio to the constant-predictor MSE (``action_var_eval``); {} if none."""
    if "offline_probe_mse_eval" not in runs.columns:
        return {}
    have = runs[runs["offline_probe_mse_eval"].notna()]
    if have.empty:
        return {}
    out = {"probe_mse_eval": _num(have["offline_probe_mse_eval"].mean())}
    if "offline_action_var_eval" in have.columns and have["offline_action_var_eval"].notna().all():
        out["probe_rel_eval"] = _num((have["offline_probe_mse_eval"] / have["offline_action_var_eval"]).mean())
    return out


#: Columns of ``leaderboard.csv`` (one row per track x method x budget).
CSV_COLUMNS = ("track", "rank", "method", "reference", "complete", "coverage", "budget",
               "mean", "mean_lo", "mean_hi", "iqm", "iqm_lo", "iqm_hi", "gen_iqm", "poi",
               "probe_mse_eval", "n_runs", "label_efficiency", "generalization")


def board_to_csv(board: dict[str, Any]) -> str:
    """``leaderboard.csv``: one row per (track, method, budget); empty cells for missing values."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for tr in board["tracks"]:
        for row in tr["rows"]:
            for b in tr["budgets"]:
                cell = row["budgets"].get(str(b), {})
                cov = row["coverage"]
                vals = {"track": tr["track"], "rank": row["rank"], "method": row["method"],
                        "reference": row["reference"], "complete": cov["complete"],
                        "coverage": f"{cov['present']}/{cov['expected']}", "budget": b,
                        "label_efficiency": row["label_efficiency"],
                        "generalization": row["generalization"], **cell}
                w.writerow(["" if vals.get(c) is None else
                            (f"{vals[c]:.6g}" if isinstance(vals[c], float) else vals[c])
                            for c in CSV_COLUMNS])
    return buf.getvalue()


def rejected_summary(rejected: list[Submission], limit: int = 20) -> list[dict[str, Any]]:
    """JSON-ready list of rejected submissions with (up to ``limit``) error lines each."""
    return [{"name": s.name, "n_errors": len(s.errors),
             "errors": [str(p) for p in s.errors[:limit]]} for s in rejected]


def build_site(submissions: str | os.PathLike = "submissions",
               out: str | os.PathLike = "leaderboard/site", reps: int = 2000, seed: int = 0,
               include_local: bool = False, known=None, plots: bool = True,
               allow_noncompliant: bool = False) -> dict[str, Any]:
    """Validate, aggregate and write the whole site to ``out``; returns the board dict.

    Writes ``leaderboard.json``, ``leaderboard.csv``, ``index.html``, ``style.css``,
    ``sort.js`` and, per track, ``plots/<track>-bars.png`` and ``plots/<track>-tasks.png``.
    With ``allow_noncompliant`` the board is a *preview* (``"preview": true``, a banner on the
    page, non-protocol rows marked).
    """
    from leaderboard import plots as plots_mod
    from leaderboard import render

    got = collect(submissions, include_local=include_local, known=known,
                  allow_noncompliant=allow_noncompliant)
    board = aggregate_board(got.valid, reps=reps, seed=seed)
    board["preview"] = bool(allow_noncompliant) and any(
        not r["protocol_compliant"] for t in board["tracks"] for r in t["rows"])
    board["rejected"] = rejected_summary(got.rejected)
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    if plots:
        for tr in board["tracks"]:
            tr["plots"] = plots_mod.write_track_plots(tr, board["methods"], out / "plots")
    atomic_write_text(out / "leaderboard.json", json.dumps(board, indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / "leaderboard.csv", board_to_csv(board))
    render.write_site(board, out)
    return board
