"""Aggregate validated submissions into the leaderboard (JSON + CSV + static HTML site).

Pipeline::

    subs = collect("submissions")                      # validate every folder, keep the valid ones
    board = aggregate_board(subs, reps=2000)           # plain dict, written as leaderboard.json
    build_site("submissions", "leaderboard/site")      # JSON, CSV, PNG plots, index.html

Results are grouped into *tracks* ``(setting, tier, source)``: numbers are only comparable inside
a track. Per track and method:

* per budget: mean and IQM of the normalized primary score over tasks x seeds, with 95%
  stratified-bootstrap CIs (rliable via :func:`dcsbench.scoring.aggregate`), over every run
  the method has;
* label-efficiency score: the IQM-vs-budget curve's mean over log2(budget)
  (:func:`dcsbench.scoring.label_efficiency`), computed over **one common set of
  (task, budget, seed) cells** per track: the cells the reference rows cover (the full
  task x budget x seed grid when the track has no reference row);
* generalization score: the same label-efficiency score computed on the novel-background
  evaluation, plus its IQM per budget;
* probability of improvement over BC at each budget when a ``bc`` submission exists;
* per-task breakdown: mean and standard deviation over seeds of the normalized score;
* latent-action probe MSE on the eval split (novel backgrounds, ``probe_mse_novel``), for
  methods with latents;
* coverage: present / expected (task, budget, seed) cells of the full grid; incomplete rows are
  marked.

Ranking: rows that hold every cell of the common set are ranked (1, 2, ...) by label-efficiency;
rows missing any of them are shown *below* all ranked rows, unranked (``rank`` null,
``ranked`` false, ``label_efficiency`` null), ordered by how many common cells they hold. So a
submission cannot climb by holding only the cells where it does well.

Smoke tiers: a track none of whose datasets has a *valid* normalization reference (BC on every
train trajectory at >= 50% of the demonstrators' return, :mod:`dcsbench.scoring`; today the
``tiny`` tier) is shown as a smoke tier (``"smoke": true``), unranked: its numbers are the
fraction of the demonstrators' mean return (``score: "demonstrator_fraction"``), not normalized
scores, and no row has a rank, label-efficiency or generalization summary.

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

from dcsbench import __version__, catalogue
from dcsbench.fileio import atomic_write_text
from dcsbench.submissions import Submission, discover, validate_submission

#: Version of the leaderboard.json layout (2: ranking over common cells, ``rank`` null for
#: unranked rows, ``ranked``/``common_cells`` per row, ``ranking`` per track, probe keys
#: ``probe_mse_novel``/``probe_rel_novel``).
BOARD_FORMAT = 2


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
        known: a prepared :class:`dcsbench.data.known.KnownDatasets` (tests).
        allow_noncompliant: preview mode, see :func:`dcsbench.submissions.validate_submission`.
    """
    from dcsbench.data.known import load_known_datasets

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
                if tf["reference_valid"].astype(bool).any():
                    tracks.append(_track(track, tf, info, subs, reps, seed, baseline))
                else:
                    tracks.append(_smoke_track(track, tf, info, subs, reps, seed, baseline))
    return {
        "format": BOARD_FORMAT,
        "protocol_version": catalogue.PROTOCOL_VERSION,
        "dcsbench_version": __version__,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bootstrap_reps": reps,
        "methods": info,
        "tracks": tracks,
    }


def ranking_cells(tf, info: dict[str, Any], setting: str, tier: str, source: str
                  ) -> tuple[set[tuple[str, int, int]], str]:
    """The common ``(task_key, budget, seed)`` cells a track is ranked on, and their basis.

    The cells the reference rows (allow-listed ``reference: true`` submissions) hold, within
    the track's full task x budget x seed grid; the full grid when no reference row has any.
    Returns ``(cells, basis)`` with ``basis`` ``"reference rows"`` or ``"full grid"``.
    """
    from dcsbench import scoring

    key_of = dict(zip(tf["task"], tf["task_key"]))
    full = {(key_of.get(t, f"{t}-{setting}-{tier}/{source}"), b, s) for t in catalogue.TASKS
            for b in catalogue.TIERS[tier].budgets for s in catalogue.OFFICIAL_SEEDS}
    refs = [m for m in set(tf["method"]) if info.get(m, {}).get("reference")]
    ref_cells = scoring.cells_of(tf[tf["method"].isin(refs)], "primary_score") & full
    return (ref_cells, "reference rows") if ref_cells else (full, "full grid")


def _track(track: str, tf, info, subs, reps, seed, baseline) -> dict[str, Any]:
    from dcsbench import scoring

    setting, tier, source = track.split("/")
    budgets = list(catalogue.TIERS[tier].budgets)
    tasks = [t for t in catalogue.TASKS if t in set(tf["task"])]
    common, basis = ranking_cells(tf, info, setting, tier, source)
    task_of = dict(zip(tf["task_key"], tf["task"]))
    # label-efficiency over the common cells only; when every run lies in them, its curve *is*
    # aggregate(by=(method, budget)) and one bootstrap serves both
    agg, le = scoring.label_efficiency(tf, reps=reps, seed=seed, cells=common)
    if not scoring.in_cells(tf, common).all():
        agg = scoring.aggregate(tf, by=("method", "budget"), reps=reps, seed=seed)
    gen_tf = tf[tf["generalization_score"].notna()]
    gen, gen_le = None, None
    if len(gen_tf):
        gen, gen_le = scoring.label_efficiency(gen_tf, score="generalization_score", reps=reps,
                                               seed=seed, cells=common)
        if not scoring.in_cells(gen_tf, common).all():
            gen = scoring.aggregate(gen_tf, by=("method", "budget"), score="generalization_score",
                                    reps=reps, seed=seed)
    poi = scoring.probability_of_improvement(tf, baseline=baseline, reps=reps, seed=seed)

    rows = []
    for method, mf in tf.groupby("method", sort=True):
        cov = next(s for s in subs if s.metadata.method == method).coverage[(setting, tier, source)]
        held = scoring.cells_of(mf, "primary_score") & common
        row: dict[str, Any] = {
            "method": method, "title": info[method]["title"], "reference": info[method]["reference"],
            "protocol_compliant": bool(mf["protocol_compliant"].all()),
            "episodes_per_run": sorted({int(n) for n in mf["n_episodes"]}),
            "coverage": {"present": len(cov.present & cov.expected), "expected": len(cov.expected),
                         "complete": cov.complete,
                         "missing": [list(c) for c in sorted(cov.missing)]},
            "ranked": held == common,
            "common_cells": {"present": len(held), "expected": len(common),
                             "missing": sorted([task_of.get(k, k.split("/")[0]), b, s]
                                               for k, b, s in common - held)},
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
        le_row = le[le["method"] == method] if len(le) else le
        ranked = row["ranked"] and len(le_row) and bool(le_row.iloc[0]["complete"])
        row["ranked"] = bool(ranked)
        row["label_efficiency"] = _num(le_row.iloc[0]["log_mean"]) if ranked else None
        row["label_efficiency_budgets"] = list(le_row.iloc[0]["budgets"]) if ranked else []
        g = gen_le[gen_le["method"] == method] if gen_le is not None and len(gen_le) else None
        row["generalization"] = (_num(g.iloc[0]["log_mean"])
                                 if ranked and g is not None and len(g) and g.iloc[0]["complete"]
                                 else None)
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
    # ranked rows first (by label-efficiency over the common cells), then the unranked ones by
    # how many common cells they hold: an unranked row is never above a ranked one
    rows.sort(key=lambda r: (not r["ranked"],
                             -(r["label_efficiency"] if r["label_efficiency"] is not None else -math.inf)
                             if r["ranked"] else -r["common_cells"]["present"],
                             r["method"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i if r["ranked"] else None
    return {"track": track, "setting": setting, "tier": tier, "source": source,
            "budgets": budgets, "tasks": tasks, "smoke": False, "score": "normalized",
            "ranking": {"basis": basis, "n_cells": len(common),
                        "budgets": sorted({b for _, b, _ in common}),
                        "tasks": [t for t in catalogue.TASKS
                                  if t in {task_of.get(k, k.split("/")[0]) for k, _, _ in common}]},
            "rows": rows}


def _smoke_track(track: str, tf, info, subs, reps, seed, baseline) -> dict[str, Any]:
    """A track without any valid reference: the fraction of the demonstrators' return in place
    of normalized scores, every row unranked (see the module docstring)."""
    tf = tf.copy()
    tf["primary_score"] = tf["primary_demo_fraction"]
    tf["generalization_score"] = tf["generalization_demo_fraction"]
    out = _track(track, tf, info, subs, reps, seed, baseline)
    for row in out["rows"]:
        row.update(ranked=False, rank=None, label_efficiency=None, label_efficiency_budgets=[],
                   generalization=None)
    out["rows"].sort(key=lambda r: (not r["reference"], r["method"]))
    out["smoke"] = True
    out["score"] = "demonstrator_fraction"
    out["ranking"] = {"basis": "smoke tier: unranked", "n_cells": 0, "budgets": [], "tasks": []}
    return out


def _probe(runs) -> dict[str, Any]:
    """Mean latent-action probe MSE on the eval split (novel backgrounds, ``probe_mse_novel``;
    ``probe_mse_eval`` in version-1 records) over runs that report it, and its mean ratio to the
    constant-predictor MSE (``action_var_novel``); {} if none."""
    if "offline_probe_mse_novel" not in runs.columns:
        return {}
    have = runs[runs["offline_probe_mse_novel"].notna()]
    if have.empty:
        return {}
    out = {"probe_mse_novel": _num(have["offline_probe_mse_novel"].mean())}
    if "offline_action_var_novel" in have.columns and have["offline_action_var_novel"].notna().all():
        out["probe_rel_novel"] = _num((have["offline_probe_mse_novel"]
                                       / have["offline_action_var_novel"]).mean())
    return out


#: Columns of ``leaderboard.csv`` (one row per track x method x budget; ``rank`` is empty for
#: unranked rows).
CSV_COLUMNS = ("track", "rank", "ranked", "method", "reference", "complete", "coverage", "budget",
               "mean", "mean_lo", "mean_hi", "iqm", "iqm_lo", "iqm_hi", "gen_iqm", "poi",
               "probe_mse_novel", "n_runs", "label_efficiency", "generalization")


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
                vals = {"track": tr["track"], "rank": row["rank"], "ranked": row["ranked"],
                        "method": row["method"],
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
