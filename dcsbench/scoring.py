"""Scores from result records: normalized scores, rliable aggregates and plots (PROTOCOL.md section 5).

Everything here is a function of result records (or of the one-row-per-record frame built from
them); nothing imports an agent. The pipeline is::

    records = load_records(["runs/"])                 # validated ResultRecords
    frame = records_to_frame(records)                 # pandas, one row per run
    aggregate(frame)                                  # mean / IQM / optimality gap + 95% CIs
    probability_of_improvement(frame, baseline="bc")  # P(method > BC) at the same budget
    label_efficiency(frame)                           # score vs budget + mean over log2(budget)
    write_plots(frame, "plots/")                      # PNGs (dcsbench.plots)

Normalized score = mean return / reference return; the references and their validity are
:mod:`dcsbench.references` (re-exported here). A run whose only reference is invalid gets no
normalized score (NaN): it reports its return and the fraction of the demonstrators' return
(``primary_demo_fraction``) instead. Records hold raw returns only (record version 2 has no ``normalized_score``; a
version-1 record's stored value is ignored): :func:`record_scores` computes a record's
normalized scores from its raw returns with the references known *now*. It is the one place
that normalizes: :func:`records_to_frame` and the submission validator
(:mod:`dcsbench.submissions`) both call it. Pass ``missing_reference="nan"`` to
:func:`records_to_frame` to keep runs without a reference with NaN scores instead of failing.

Offline metrics appear in the frame as ``offline_<name>`` under the version-2 names
(``probe_mse_train``, ``probe_mse_novel``, ``action_var_train``, ``action_var_novel``,
``probe_mse_train_random``); version-1 names are renamed
(:func:`dcsbench.results.offline_metrics_v2`).

The generalization score (novel backgrounds) is normalized by the same reference as the
primary score (BC with train backgrounds), so it shows the drop under unseen distractors.

Comparing methods over different cells is not a comparison: :func:`label_efficiency` takes
``cells``, one common set of ``(task_key, budget, seed)`` cells; every group is scored on exactly
those cells and a group that lacks any of them gets no summary score (``complete`` False).

Aggregates follow rliable (Agarwal et al., 2021): a group's scores form a matrix of
``runs x tasks`` (tasks = dataset + source, runs = seeds present for every task); point
estimates and 95% stratified-bootstrap percentile CIs come from
:func:`rliable.library.get_interval_estimates`.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from dcsbench.results import ResultRecord, load_record, offline_metrics_v2

from dcsbench.references import (_ref_key, MIN_REFERENCE_FRACTION, REFERENCES_ENV, REFERENCES_FILE,  # noqa: F401
                                 InvalidReferenceError, MeasuredReference, MissingReferenceError,
                                 get_reference, load_measured_references, normalized_score,
                                 reference_entry, reference_validity, references_path,
                                 store_reference)


#: Default number of bootstrap replications (rliable recommends >= 2000 for 95% CIs).
DEFAULT_REPS = 2000

def _rliable_metrics() -> dict[str, Callable[[np.ndarray], float]]:
    """The aggregate metrics of :func:`aggregate`: name -> function of a runs x tasks matrix."""
    from rliable import metrics

    return {
        "mean": metrics.aggregate_mean,
        "iqm": metrics.aggregate_iqm,
        "optimality_gap": metrics.aggregate_optimality_gap,
    }


# --------------------------------------------------------------------------- records -> frame


def load_records(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, ResultRecord]]:
    """Load and validate records from files and folders (folders: every ``*.json`` below,
    hidden paths excluded).

    Returns ``(path, record)`` pairs sorted by path. A malformed file raises
    :class:`dcsbench.results.RecordError` naming the file and field.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # hidden files and folders (e.g. the runner's ``.work/`` checkpoints) are skipped
            files.extend(sorted(q for q in p.rglob("*.json")
                                if not any(part.startswith(".") for part in q.relative_to(p).parts)))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such record file or folder: {p}")
    return [(f, load_record(f)) for f in sorted(set(files))]


#: Columns of :func:`records_to_frame` (offline metrics are appended as ``offline_<name>``).
FRAME_COLUMNS = (
    "method", "method_version", "dataset", "task", "setting", "tier", "source", "task_key",
    "budget", "seed", "n_episodes", "episode_length", "record_version", "protocol_compliant",
    "primary_return", "generalization_return", "reference_return", "reference_valid",
    "demonstrator_return", "primary_score", "generalization_score", "primary_demo_fraction",
    "generalization_demo_fraction", "timestamp", "path",
)


def record_scores(record: ResultRecord,
                  references: dict[str, MeasuredReference] | None = None) -> dict[str, float]:
    """Normalized scores of one record, from its raw mean returns and the reference known now.

    The only normalization in dcsbench (see the module docstring): a stored
    ``normalized_score`` (version-1 records) is never read.

    Returns:
        ``{"reference_return", "reference_valid", "demonstrator_return", "primary_score",
        "generalization_score", "primary_demo_fraction", "generalization_demo_fraction"}``;
        the generalization values are NaN when the record has no generalization evaluation.
        When the only reference is invalid (:data:`MIN_REFERENCE_FRACTION`) the scores are
        NaN, ``reference_valid`` is False and the ``*_demo_fraction`` values (return / the
        demonstrators' mean return) are what the run reports.

    Raises:
        MissingReferenceError: no reference for the record's dataset and source.
    """
    refs = load_measured_references() if references is None else references
    gen = record.generalization.mean_return if record.generalization is not None else math.nan
    prim = record.primary.mean_return
    try:
        found = get_reference(record.task, record.setting, record.source, record.dataset.name,
                              refs)
    except InvalidReferenceError as err:
        m = err.reference
        demo = m.demonstrator_return if m.demonstrator_return is not None else math.nan
        return {"reference_return": m.ret, "reference_valid": False, "demonstrator_return": demo,
                "primary_score": math.nan, "generalization_score": math.nan,
                "primary_demo_fraction": prim / demo, "generalization_demo_fraction": gen / demo}
    ref = found.ret
    own = refs.get(_ref_key(record.dataset.name, record.source))
    demo = own.demonstrator_return if own is not None and own.demonstrator_return else math.nan
    return {"reference_return": ref, "reference_valid": True, "demonstrator_return": demo,
            "primary_score": prim / ref, "generalization_score": gen / ref,
            "primary_demo_fraction": prim / demo, "generalization_demo_fraction": gen / demo}


def records_to_frame(records: Iterable[ResultRecord | tuple[Any, ResultRecord] | str | os.PathLike],
                     missing_reference: str = "error", dedupe: bool = True):
    """One row per record, with normalized scores recomputed from the raw returns.

    Args:
        records: :class:`ResultRecord` objects, ``(path, record)`` pairs from
            :func:`load_records`, or paths of record files/folders.
        missing_reference: ``"error"`` (default) raises :class:`MissingReferenceError`;
            ``"nan"`` keeps the run with NaN scores and warns once per dataset.
        dedupe: drop repeated runs of the same (method, version, dataset, source, budget,
            seed), keeping the newest timestamp (with a warning).

    Returns:
        ``pandas.DataFrame`` with :data:`FRAME_COLUMNS` (+ ``offline_*`` columns).
    """
    import pandas as pd

    if missing_reference not in ("error", "nan"):
        raise ValueError(f"missing_reference must be 'error' or 'nan', got {missing_reference!r}")
    items: list[tuple[str | None, ResultRecord]] = []
    paths = []
    for r in records:
        if isinstance(r, ResultRecord):
            items.append((None, r))
        elif isinstance(r, tuple):
            items.append((str(r[0]), r[1]))
        else:
            paths.append(r)
    items += [(str(p), r) for p, r in load_records(paths)] if paths else []

    refs = load_measured_references()
    warned: set[str] = set()
    rows = []
    for path, r in items:
        try:
            scores = record_scores(r, refs)
        except MissingReferenceError:
            if missing_reference == "error":
                raise
            if r.dataset.name not in warned:
                warnings.warn(f"no reference for {r.dataset.name} ({r.source}): "
                              f"normalized scores are NaN", stacklevel=2)
                warned.add(r.dataset.name)
            scores = {"reference_return": math.nan, "reference_valid": False,
                      "demonstrator_return": math.nan, "primary_score": math.nan,
                      "generalization_score": math.nan, "primary_demo_fraction": math.nan,
                      "generalization_demo_fraction": math.nan}
        gen = r.generalization.mean_return if r.generalization is not None else math.nan
        row = {
            "method": r.method.name, "method_version": r.method.version,
            "dataset": r.dataset.name, "task": r.task, "setting": r.setting, "tier": r.tier,
            "source": r.source, "task_key": f"{r.dataset.name}/{r.source}",
            "budget": r.budget, "seed": r.seed, "n_episodes": len(r.primary.returns),
            "episode_length": r.episode_length, "record_version": r.record_version,
            "protocol_compliant": r.protocol_compliant,
            "primary_return": r.primary.mean_return, "generalization_return": gen,
            **scores, "timestamp": r.timestamp, "path": path,
        }
        row.update({f"offline_{k}": v for k, v in offline_metrics_v2(r).items()})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else list(FRAME_COLUMNS))
    if dedupe and len(frame):
        key = ["method", "method_version", "dataset", "source", "budget", "seed"]
        frame = frame.sort_values("timestamp")
        dup = frame.duplicated(key, keep="last")
        if dup.any():
            warnings.warn(f"{int(dup.sum())} duplicate run(s) dropped (kept the newest): "
                          + "; ".join(frame.loc[dup, "path"].astype(str).head(5)), stacklevel=2)
            frame = frame[~dup]
    return frame.sort_values(["method", "task_key", "budget", "seed"]).reset_index(drop=True)


def _as_frame(records_or_frame, missing_reference: str = "error"):
    import pandas as pd

    if isinstance(records_or_frame, pd.DataFrame):
        return records_or_frame
    return records_to_frame(records_or_frame, missing_reference=missing_reference)


def score_matrix(frame, score: str = "primary_score") -> tuple[np.ndarray, list[str], list[int]]:
    """The ``runs x tasks`` matrix of one group (rliable's layout).

    Tasks are ``task_key`` values; runs are the seeds present for *every* task (seeds missing
    for some task are dropped with a warning, since stratified bootstrap needs a rectangle).
    Returns ``(matrix, tasks, seeds)``.
    """
    frame = frame[np.isfinite(frame[score].to_numpy(dtype=float))]
    tasks = sorted(frame["task_key"].unique())
    per_task = [set(frame.loc[frame["task_key"] == t, "seed"]) for t in tasks]
    seeds = sorted(set.intersection(*per_task)) if per_task else []
    dropped = sum(len(s) for s in per_task) - len(seeds) * len(tasks)
    if dropped:
        warnings.warn(f"{dropped} run(s) dropped: seeds {seeds} are the ones present for every "
                      f"task of the group", stacklevel=2)
    pivot = frame.pivot_table(index="seed", columns="task_key", values=score, aggfunc="mean")
    mat = pivot.loc[seeds, tasks].to_numpy(dtype=float) if seeds else np.zeros((0, len(tasks)))
    return mat, tasks, seeds


class _seeded_global_rng:
    """rliable's bootstrap draws from numpy's *global* RNG: seed it, then restore it."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.state = np.random.get_state()
        np.random.seed(self.seed)

    def __exit__(self, *exc):
        np.random.set_state(self.state)


def _interval(score_dict, func, reps: int, seed: int, confidence: float):
    from rliable import library

    with _seeded_global_rng(seed):
        point, ci = library.get_interval_estimates(
            score_dict, func, reps=reps, confidence_interval_size=confidence)
    return ({k: float(np.ravel(v)[0]) for k, v in point.items()},
            {k: np.ravel(v) for k, v in ci.items()})


def _groups(frame, by: Sequence[str]):
    by = list(by)
    for col in by:
        if col not in frame.columns:
            raise ValueError(f"cannot group by {col!r}; columns: {', '.join(frame.columns)}")
    if not by:
        yield (), frame
        return
    for key, sub in frame.groupby(by, sort=True):
        yield (key if isinstance(key, tuple) else (key,)), sub


def aggregate(records_or_frame, by: Sequence[str] = ("method", "budget"),
              score: str = "primary_score", reps: int = DEFAULT_REPS, seed: int = 0,
              confidence: float = 0.95, missing_reference: str = "error"):
    """Mean, IQM and optimality gap of normalized scores with stratified-bootstrap CIs.

    Args:
        records_or_frame: records (see :func:`records_to_frame`) or its frame.
        by: columns defining a group (one output row each).
        score: ``"primary_score"`` or ``"generalization_score"`` (or any numeric column).
        reps: bootstrap replications (tests use a few hundred; reports 2000+).
        seed: seed of the bootstrap (results are reproducible).
        confidence: CI coverage.

    Returns:
        ``DataFrame`` with the ``by`` columns, ``n_tasks``, ``n_runs`` and for each metric
        ``m`` in (mean, iqm, optimality_gap): ``m``, ``m_lo``, ``m_hi``.
    """
    import pandas as pd

    frame = _as_frame(records_or_frame, missing_reference)
    metrics = _rliable_metrics()
    rows = []
    for key, sub in _groups(frame, by):
        mat, tasks, seeds = score_matrix(sub, score)
        row = dict(zip(by, key), n_tasks=len(tasks), n_runs=len(seeds))
        if mat.size == 0:
            for m in metrics:
                row.update({m: math.nan, f"{m}_lo": math.nan, f"{m}_hi": math.nan})
        else:
            for m, fn in metrics.items():
                point, ci = _interval({"g": mat}, fn, reps, seed, confidence)
                row.update({m: float(point["g"]), f"{m}_lo": float(ci["g"][0]),
                            f"{m}_hi": float(ci["g"][1])})
        rows.append(row)
    return pd.DataFrame(rows)


def probability_of_improvement(records_or_frame, baseline: str = "bc",
                               by: Sequence[str] = ("budget",), score: str = "primary_score",
                               reps: int = DEFAULT_REPS, seed: int = 0, confidence: float = 0.95,
                               missing_reference: str = "error"):
    """P(method > baseline) at the same budget (rliable's average probability of improvement).

    For every group of ``by`` (default: each budget) and every method other than ``baseline``,
    both methods' ``runs x tasks`` matrices are restricted to the tasks they share, and
    ``P(X > Y)`` (Mann-Whitney statistic averaged over tasks) is estimated with a 95%
    stratified independent bootstrap CI. Groups where the baseline has no runs are skipped.

    Returns:
        ``DataFrame`` with the ``by`` columns, ``method``, ``baseline``, ``n_tasks``,
        ``prob``, ``prob_lo``, ``prob_hi``.
    """
    import pandas as pd
    from rliable import metrics

    frame = _as_frame(records_or_frame, missing_reference)
    rows = []
    for key, sub in _groups(frame, [c for c in by if c != "method"]):
        base = sub[sub["method"] == baseline]
        if base.empty:
            continue
        for method in sorted(set(sub["method"]) - {baseline}):
            mine = sub[sub["method"] == method]
            shared = sorted(set(mine["task_key"]) & set(base["task_key"]))
            if not shared:
                continue
            x, _, _ = score_matrix(mine[mine["task_key"].isin(shared)], score)
            y, _, _ = score_matrix(base[base["task_key"].isin(shared)], score)
            if x.size == 0 or y.size == 0:
                continue
            point, ci = _interval({"p": [x, y]}, metrics.probability_of_improvement,
                                  reps, seed, confidence)
            rows.append(dict(zip(by, key), method=method, baseline=baseline, n_tasks=len(shared),
                             prob=float(point["p"]), prob_lo=float(ci["p"][0]),
                             prob_hi=float(ci["p"][1])))
    return pd.DataFrame(rows)


Cell = tuple[str, int, int]


def cells_of(frame, score: str | None = None) -> set[Cell]:
    """The ``(task_key, budget, seed)`` cells of a frame (only rows with a finite ``score`` if
    ``score`` is given)."""
    if score is not None:
        frame = frame[np.isfinite(frame[score].to_numpy(dtype=float))]
    return {(str(t), int(b), int(s)) for t, b, s in
            zip(frame["task_key"], frame["budget"], frame["seed"])}


def in_cells(frame, cells: Iterable[Cell]):
    """Boolean mask of the frame rows whose ``(task_key, budget, seed)`` is in ``cells``."""
    cells = set(cells)
    return np.array([(str(t), int(b), int(s)) in cells for t, b, s in
                     zip(frame["task_key"], frame["budget"], frame["seed"])], dtype=bool)


def _log_mean(budgets: np.ndarray, values: np.ndarray) -> float:
    x = np.log2(budgets.astype(float).clip(min=1))
    if len(x) == 1:
        return float(values[0])
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def label_efficiency(records_or_frame, metric: str = "iqm", by: Sequence[str] = ("method",),
                     score: str = "primary_score", reps: int = DEFAULT_REPS, seed: int = 0,
                     missing_reference: str = "error", cells: Iterable[Cell] | None = None):
    """Label-efficiency: the aggregate score at each budget, and its mean over log2(budget).

    The summary ``log_mean`` is the area under the curve (trapezoid rule) of ``metric`` against
    ``log2(budget)``, divided by the log2 range of the budgets: the curve's mean on a log axis.
    With a single budget it is that budget's value.

    Args:
        cells: one common set of ``(task_key, budget, seed)`` cells (e.g. the cells of the
            reference rows of a leaderboard track). Every group is then scored on exactly these
            cells (its other runs are left out of the curve) and a group lacking any of them
            gets ``log_mean`` NaN and ``complete`` False, so groups are only compared over the
            same budgets, tasks and seeds. None (default): each group over its own cells, which
            is not comparable between groups with different coverage.

    Returns:
        ``(curve, summary)``: ``curve`` is :func:`aggregate` by ``by + budget`` (of the frame
        restricted to ``cells`` when given); ``summary`` has the ``by`` columns, ``budgets``
        (list), ``log_mean``, ``complete`` (the group has every cell of ``cells``; True when
        ``cells`` is None), ``n_cells`` (cells scored) and ``n_common`` (size of ``cells``, or
        None).
    """
    import pandas as pd

    if metric not in ("mean", "iqm", "optimality_gap"):
        raise ValueError(f"metric must be mean, iqm or optimality_gap, got {metric!r}")
    frame = _as_frame(records_or_frame, missing_reference)
    common = None if cells is None else {(str(t), int(b), int(s)) for t, b, s in cells}
    if common is not None:
        frame = frame[in_cells(frame, common)] if len(frame) else frame
    curve = aggregate(frame, by=[*by, "budget"], score=score, reps=reps, seed=seed)
    if curve.empty:
        return curve, pd.DataFrame()
    have = {key: cells_of(sub, score) for key, sub in _groups(frame, by)}
    rows = []
    for key, sub in _groups(curve, by):
        sub = sub.dropna(subset=[metric]).sort_values("budget")
        if sub.empty:
            continue
        got = have.get(key, set())
        complete = common is None or common <= got
        log_mean = (_log_mean(sub["budget"].to_numpy(), sub[metric].to_numpy(dtype=float))
                    if complete else math.nan)
        rows.append(dict(zip(by, key), budgets=[int(b) for b in sub["budget"]], log_mean=log_mean,
                         complete=complete, n_cells=len(got),
                         n_common=None if common is None else len(common)))
    return curve, pd.DataFrame(rows)


def performance_profiles(records_or_frame, taus: Sequence[float] | None = None,
                         by: Sequence[str] = ("method", "budget"), score: str = "primary_score",
                         reps: int = DEFAULT_REPS, seed: int = 0, missing_reference: str = "error"):
    """Score distributions (fraction of runs with normalized score > tau) with 95% CIs.

    Returns ``(taus, profiles, cis)``; ``profiles`` and ``cis`` are dicts keyed by a label
    of the group (e.g. ``"laom b=8"``).
    """
    from rliable import library

    frame = _as_frame(records_or_frame, missing_reference)
    taus = np.linspace(0.0, 1.5, 61) if taus is None else np.asarray(taus, dtype=float)
    score_dict = {}
    for key, sub in _groups(frame, by):
        mat, _, _ = score_matrix(sub, score)
        if mat.size:
            score_dict[_label(by, key)] = mat
    if not score_dict:
        return taus, {}, {}
    with _seeded_global_rng(seed):
        profiles, cis = library.create_performance_profile(score_dict, taus, reps=reps)
    return taus, profiles, cis


def _label(by: Sequence[str], key: tuple) -> str:
    parts = []
    for col, val in zip(by, key):
        parts.append(f"b={val}" if col == "budget" else str(val))
    return " ".join(parts) or "all"


_PLOTS = ("plot_aggregates", "plot_label_efficiency", "plot_profiles",
          "plot_probability_of_improvement", "write_plots")


def __getattr__(name: str):
    """The plot functions moved to :mod:`dcsbench.plots`; ``scoring.write_plots`` still works."""
    if name in _PLOTS:
        from dcsbench import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'dcsbench.scoring' has no attribute {name!r}")


__all__ = [  # scoring's own functions, and the reference API re-exported from dcsbench.references
    "DEFAULT_REPS", "load_records", "record_scores", "records_to_frame", "score_matrix",
    "aggregate", "probability_of_improvement", "cells_of", "in_cells", "label_efficiency",
    "performance_profiles", *_PLOTS,
    "MIN_REFERENCE_FRACTION", "REFERENCES_ENV", "REFERENCES_FILE", "InvalidReferenceError",
    "MeasuredReference", "MissingReferenceError", "get_reference", "load_measured_references",
    "normalized_score", "reference_entry", "reference_validity", "references_path",
    "store_reference"]
