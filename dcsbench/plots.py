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


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt




def plot_aggregates(agg, path: str | os.PathLike, by: Sequence[str] = ("method", "budget")) -> Path:
    """Interval-estimate plot (mean, IQM, optimality gap with CIs) of an :func:`aggregate` frame."""
    from rliable import plot_utils

    pyplot()  # the Agg backend before rliable draws
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
    return save_figure(fig, path)


def plot_label_efficiency(curve, path: str | os.PathLike, metric: str = "iqm",
                          by: Sequence[str] = ("method",)) -> Path:
    """Label-efficiency curves (aggregate normalized score vs budget, log2 x axis) with CIs."""
    from rliable import plot_utils

    plt = pyplot()
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
    return save_figure(fig, path)


def plot_profiles(taus, profiles, cis, path: str | os.PathLike) -> Path:
    """Performance-profile plot (score distributions with CI bands)."""
    from rliable import plot_utils

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax,
                                         xlabel=r"Normalized score ($\tau$)",
                                         labelsize="large", ticklabelsize="large")
    ax.legend(list(profiles), loc="best")
    return save_figure(fig, path)


def plot_probability_of_improvement(poi, path: str | os.PathLike) -> Path:
    """Horizontal interval plot of P(method > baseline) per (method, budget)."""
    plt = pyplot()
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
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (a temporary file, then rename) and close it:
    the one figure writer of dcsbench's plots, the leaderboard's and the study reports'."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    os.replace(tmp, path)
    return path


def figure_png(fig, dpi: int = 110) -> bytes:
    """``fig`` as PNG bytes (closed afterwards), for callers that write atomically themselves."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    pyplot().close(fig)
    return buf.getvalue()


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


def study_results_png(rows: list[dict]) -> bytes:
    """A study report's results.png (:mod:`dcsbench.study_report` rows) as bytes: per dataset, return per method and budget (mean ± std over seeds) and
    probe MSE train vs random features vs the constant predictor for the latent methods."""
    import math

    from dcsbench.study_report import _stats, cells, method_order

    plt = pyplot()

    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 4.2 * len(datasets)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = cells(rows)
    for i, d in enumerate(datasets):
        drs = [r for r in rows if r["dataset"] == d]
        budgets = sorted({r["budget"] for r in drs})
        methods = method_order(r["method"] for r in drs)
        # version-1 records have no probe on train trajectories: their probe on novel backgrounds
        split = "train" if any(r["probe_mse_train"] is not None for r in drs) else "novel"
        probe_key, var_key = f"probe_mse_{split}", f"action_var_{split}"
        probed = [m for m in methods if any(r["method"] == m and r[probe_key] is not None
                                            for r in drs)]
        ax, axp = axes[i]
        width = 0.8 / max(1, len(budgets))
        for j, b in enumerate(budgets):
            c = colors[j % len(colors)]
            off = (j - (len(budgets) - 1) / 2) * width
            s = [_stats([r["return_mean"] for r in groups.get((d, m, b), [])]) for m in methods]
            ax.bar([k + off for k in range(len(methods))], [x[0] if x else math.nan for x in s],
                   width, yerr=[x[1] if x else 0.0 for x in s], capsize=3, color=c,
                   label=f"budget {b}")
            bars = [("trained", probe_key, {})]
            if any(r["probe_mse_train_random"] is not None for r in drs):
                bars.append(("random features", "probe_mse_train_random",
                             {"alpha": 0.45, "hatch": "//"}))
            pw = width / len(bars)
            for n, (kind, key, style) in enumerate(bars):
                p = [_stats([r[key] for r in groups.get((d, m, b), [])]) for m in probed]
                x0 = off + (n - (len(bars) - 1) / 2) * pw
                axp.bar([k + x0 for k in range(len(probed))], [x[0] if x else math.nan for x in p],
                        pw, yerr=[x[1] if x else 0.0 for x in p], capsize=2, color=c,
                        label=f"budget {b}, {kind}", **style)
        ax.set_xticks(range(len(methods)), methods)
        ax.set_ylabel("mean return, train backgrounds")
        ax.set_title(f"{d}: return (mean ± std over seeds)", fontsize=10)
        ax.legend(fontsize=8)
        var = _stats([r[var_key] for r in drs])
        if probed:
            axp.set_xticks(range(len(probed)), probed)
            if var:
                axp.axhline(var[0], color="gray", ls="--", lw=1, label="constant (mean action)")
            axp.legend(fontsize=7)
        else:
            axp.text(0.5, 0.5, "no latent-action probe in these runs", ha="center",
                     va="center", transform=axp.transAxes)
            axp.set_xticks([])
            axp.set_yticks([])
        axp.set_ylabel("probe MSE, " + ("held-out train trajectories" if split == "train" else
                                        "novel backgrounds (version-1 records)"))
        axp.set_title("latent-action linear probe (lower is better)", fontsize=10)
    fig.tight_layout()
    return figure_png(fig)
