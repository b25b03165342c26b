"""Plots of scores (rliable's plot utilities over matplotlib's Agg backend): aggregates with
CIs, label-efficiency curves, performance profiles and probability of improvement.

Pure consumers of :mod:`dcsbench.scoring`'s outputs; :func:`write_plots` draws all of them for a
frame of records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from dcsbench.scoring import (DEFAULT_REPS, _as_frame, _groups, _label, aggregate, label_efficiency,
                              performance_profiles, probability_of_improvement)



def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_aggregates(agg, path: str | os.PathLike, by: Sequence[str] = ("method", "budget")) -> Path:
    """Interval-estimate plot (mean, IQM, optimality gap with CIs) of an :func:`aggregate` frame."""
    from rliable import plot_utils

    plt = _pyplot()
    names = ["mean", "iqm", "optimality_gap"]
    agg = agg.dropna(subset=names)
    points, cis, algos = {}, {}, []
    for _, row in agg.iterrows():
        label = _label(by, tuple(row[c] for c in by))
        algos.append(label)
        points[label] = np.array([row[m] for m in names])
        cis[label] = np.array([[row[f"{m}_lo"] for m in names], [row[f"{m}_hi"] for m in names]])
    fig, _ = plot_utils.plot_interval_estimates(points, cis, metric_names=["Mean", "IQM", "Optimality gap"],
                                                algorithms=algos, xlabel="Normalized score",
                                                xlabel_y_coordinate=-0.35)
    return _save(fig, plt, path)


def plot_label_efficiency(curve, path: str | os.PathLike, metric: str = "iqm",
                          by: Sequence[str] = ("method",)) -> Path:
    """Label-efficiency curves (aggregate normalized score vs budget, log2 x axis) with CIs."""
    from rliable import plot_utils

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    budgets = sorted(curve["budget"].unique())
    points, cis, algos = {}, {}, []
    for key, sub in _groups(curve, by):
        sub = sub.set_index("budget").reindex(budgets)
        label = _label(by, key)
        algos.append(label)
        points[label] = sub[metric].to_numpy(dtype=float)
        cis[label] = np.stack([sub[f"{metric}_lo"].to_numpy(dtype=float),
                               sub[f"{metric}_hi"].to_numpy(dtype=float)])
    plot_utils.plot_sample_efficiency_curve(
        np.array(budgets, dtype=float), points, cis, algorithms=algos, ax=ax,
        xlabel="Labeled trajectories (budget)", ylabel=f"{metric.upper()} normalized score",
        labelsize="large", ticklabelsize="large")
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(int(b)) for b in budgets])
    ax.legend(loc="best")
    return _save(fig, plt, path)


def plot_profiles(taus, profiles, cis, path: str | os.PathLike) -> Path:
    """Performance-profile plot (score distributions with CI bands)."""
    from rliable import plot_utils

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax,
                                         xlabel=r"Normalized score ($\tau$)",
                                         labelsize="large", ticklabelsize="large")
    ax.legend(list(profiles), loc="best")
    return _save(fig, plt, path)


def plot_probability_of_improvement(poi, path: str | os.PathLike) -> Path:
    """Horizontal interval plot of P(method > baseline) per (method, budget)."""
    plt = _pyplot()
    labels = [f"{r.method} b={r.budget}" if "budget" in poi else str(r.method)
              for r in poi.itertuples()]
    fig, ax = plt.subplots(figsize=(6, 0.45 * max(len(labels), 2) + 1))
    y = np.arange(len(labels))
    ax.hlines(y, poi["prob_lo"], poi["prob_hi"], lw=6, alpha=0.4)
    ax.plot(poi["prob"], y, "k|", ms=14)
    ax.axvline(0.5, ls="--", c="gray")
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    baseline = poi["baseline"].iloc[0] if len(poi) else "baseline"
    ax.set_xlabel(f"P(method > {baseline})")
    return _save(fig, plt, path)


def _save(fig, plt, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_plots(records_or_frame, out_dir: str | os.PathLike, score: str = "primary_score",
                baseline: str = "bc", reps: int = DEFAULT_REPS, seed: int = 0,
                missing_reference: str = "error") -> list[Path]:
    """Write every plot for a set of records to ``out_dir`` and return the PNG paths.

    ``aggregates.png`` (mean/IQM/optimality gap per method and budget), ``profiles.png``,
    ``label_efficiency.png`` and, when the baseline has runs, ``improvement.png``.
    """
    frame = _as_frame(records_or_frame, missing_reference)
    frame = frame[np.isfinite(frame[score].to_numpy(dtype=float))]
    if frame.empty:
        raise ValueError(f"no run has a finite {score}: nothing to plot")
    out = Path(out_dir)
    written = [plot_aggregates(aggregate(frame, score=score, reps=reps, seed=seed),
                               out / "aggregates.png")]
    taus, profiles, cis = performance_profiles(frame, score=score, reps=reps, seed=seed)
    written.append(plot_profiles(taus, profiles, cis, out / "profiles.png"))
    curve, _ = label_efficiency(frame, score=score, reps=reps, seed=seed)
    written.append(plot_label_efficiency(curve, out / "label_efficiency.png"))
    poi = probability_of_improvement(frame, baseline=baseline, score=score, reps=reps, seed=seed)
    if len(poi):
        written.append(plot_probability_of_improvement(poi, out / "improvement.png"))
    return written
