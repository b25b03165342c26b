"""Leaderboard plots (PNG, matplotlib Agg), drawn from one track of ``leaderboard.json``.

* ``<track>-bars.png`` - Figure-1 style: IQM normalized score per method at each budget, bars
  grouped by budget, 95% bootstrap CIs as error bars.
* ``<track>-tasks.png`` - Figure-8 style: normalized score vs label budget (log2 axis) per task,
  one line per method, mean over seeds with a +-1 std band.

Method names drawn into images come from validated metadata; matplotlib renders them as text
(``usetex`` off, mathtext disabled by escaping ``$``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dcsbench.plots import pyplot, save_figure

#: Colour cycle (colour-blind friendly, Okabe-Ito order).
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _text(s: str) -> str:
    """Plain text for matplotlib (no mathtext)."""
    return s.replace("$", r"\$")


def _label(row: dict[str, Any]) -> str:
    label = _text(row["title"])
    return label if row["coverage"]["complete"] else label + " (incomplete)"


def _score_name(track: dict[str, Any]) -> str:
    """The plotted quantity: normalized score, or (smoke tier, no valid reference) the fraction
    of the demonstrators' return, as the page's text says."""
    return ("fraction of demonstrators' return" if track.get("score") == "demonstrator_fraction"
            else "normalized score")


def plot_bars(track: dict[str, Any], path: str | os.PathLike) -> Path:
    """Grouped bar chart of IQM normalized score with 95% CIs per method at each budget."""
    plt = pyplot()
    rows, budgets = track["rows"], track["budgets"]
    n = max(len(rows), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 + 0.35 * n * len(budgets)), 3.8))
    x = np.arange(len(budgets))
    for i, row in enumerate(rows):
        vals, lo, hi = [], [], []
        for b in budgets:
            c = row["budgets"].get(str(b), {})
            v = c.get("iqm")
            vals.append(np.nan if v is None else v)
            lo.append(0.0 if v is None or c.get("iqm_lo") is None else v - c["iqm_lo"])
            hi.append(0.0 if v is None or c.get("iqm_hi") is None else c["iqm_hi"] - v)
        color = COLORS[i % len(COLORS)]
        ax.bar(x + (i - (n - 1) / 2) * width, vals, width * 0.92, yerr=[lo, hi], capsize=3,
               color=color, alpha=0.9 if row["coverage"]["complete"] else 0.45,
               hatch=None if row["coverage"]["complete"] else "//", edgecolor="white",
               label=_label(row), error_kw={"elinewidth": 1, "ecolor": "#333333"})
    ax.set_xticks(x, [f"{b} labeled traj." for b in budgets])
    ax.set_ylabel(f"IQM {_score_name(track)}")
    ax.axhline(1.0, color="#888888", lw=0.8, ls="--")
    ax.set_title(_text(f"{track['track']}: {_score_name(track)} (IQM, 95% CI)"), fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=9, ncol=min(n, 4), loc="upper center",
              bbox_to_anchor=(0.5, -0.12))
    save_figure(fig, Path(path), dpi=110)
    return Path(path)


def plot_task_curves(track: dict[str, Any], path: str | os.PathLike) -> Path:
    """Per-task normalized score vs budget (log2 x axis), mean over seeds with a +-1 std band."""
    plt = pyplot()
    tasks, budgets = track["tasks"], track["budgets"]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(3.0 * max(len(tasks), 1), 2.9),
                             squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks):
        for i, row in enumerate(track["rows"]):
            per = row["per_task"].get(task, {})
            bs = [b for b in budgets if str(b) in per and per[str(b)]["mean"] is not None]
            if not bs:
                continue
            m = np.array([per[str(b)]["mean"] for b in bs])
            s = np.array([per[str(b)]["std"] or 0.0 for b in bs])
            color = COLORS[i % len(COLORS)]
            ax.plot(bs, m, marker="o", ms=4, color=color, label=_label(row),
                    ls="-" if row["coverage"]["complete"] else ":")
            ax.fill_between(bs, m - s, m + s, color=color, alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("labeled trajectories")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel(_score_name(track))
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), frameon=False,
                   fontsize=8, bbox_to_anchor=(0.5, -0.12))
    save_figure(fig, Path(path), dpi=110)
    return Path(path)


def write_track_plots(track: dict[str, Any], methods: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, str]:
    """Write both plots of one track; returns ``{"bars": rel_path, "tasks": rel_path}`` relative
    to the site root."""
    stem = track["track"].replace("/", "-")
    out_dir = Path(out_dir)
    plot_bars(track, out_dir / f"{stem}-bars.png")
    plot_task_curves(track, out_dir / f"{stem}-tasks.png")
    return {"bars": f"plots/{stem}-bars.png", "tasks": f"plots/{stem}-tasks.png"}
