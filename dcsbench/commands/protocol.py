"""``dcsbench run | sweep | score | reference | quickstart``: the protocol's command line."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add the protocol subcommands to the ``dcsbench`` parser."""
    p = sub.add_parser("score", help="normalized scores and rliable aggregates of result records",
                       description="Recompute normalized scores from result records and print "
                                   "mean / IQM / optimality gap with 95%% stratified-bootstrap "
                                   "CIs, probability of improvement over a baseline, and "
                                   "label-efficiency (mean over log2 budgets).")
    p.add_argument("records", nargs="+", help="record files or folders (every *.json below)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--plots", metavar="DIR", help="also write PNG plots to DIR")
    p.add_argument("--by", default="method,budget",
                   help="comma-separated grouping columns (default: method,budget)")
    p.add_argument("--baseline", default="bc", help="method for probability of improvement")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap replications (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--allow-missing-reference", action="store_true",
                   help="keep runs without a reference return (NaN scores) instead of failing")
    p.set_defaults(func=cmd_score)


def _fmt_ci(row, m: str) -> str:
    if row[m] != row[m]:  # NaN
        return "n/a"
    return f"{row[m]:.3f} [{row[f'{m}_lo']:.3f}, {row[f'{m}_hi']:.3f}]"


def score_report(records, by=("method", "budget"), baseline="bc", reps=2000, seed=0,
                 missing_reference="error") -> dict:
    """Every table of ``dcsbench score`` as DataFrames: runs, aggregates (primary and
    generalization), probability of improvement, label-efficiency summary."""
    from dcsbench import scoring

    frame = scoring.records_to_frame(records, missing_reference=missing_reference)
    if frame.empty:
        raise ValueError("no result records found")
    rep = {"runs": frame,
           "aggregates": scoring.aggregate(frame, by=by, reps=reps, seed=seed)}
    if frame["generalization_score"].notna().any():
        rep["generalization"] = scoring.aggregate(frame, by=by, score="generalization_score",
                                                  reps=reps, seed=seed)
    rep["improvement"] = scoring.probability_of_improvement(frame, baseline=baseline,
                                                            reps=reps, seed=seed)
    if "budget" in by:
        rest = [c for c in by if c != "budget"]
        rep["label_efficiency"] = scoring.label_efficiency(frame, by=rest, reps=reps,
                                                           seed=seed)[1]
    return rep


def render_table(rep: dict, max_runs: int = 30) -> str:
    """Human-readable text of a :func:`score_report`."""
    import pandas as pd

    out = []
    frame = rep["runs"]
    noncompliant = int((~frame["protocol_compliant"]).sum())
    out.append(f"{len(frame)} run(s) from {frame['task_key'].nunique()} dataset(s)"
               + (f"; {noncompliant} NOT protocol-compliant (smoke-test settings)"
                  if noncompliant else ""))
    for key, title in (("aggregates", "Primary score (train backgrounds)"),
                       ("generalization", "Generalization score (novel backgrounds)")):
        if key not in rep:
            continue
        agg = rep[key]
        by = [c for c in agg.columns if c not in ("n_tasks", "n_runs")
              and not c.startswith(("mean", "iqm", "optimality_gap"))]
        table = agg[by + ["n_tasks", "n_runs"]].copy()
        table["Mean [95% CI]"] = [_fmt_ci(r, "mean") for _, r in agg.iterrows()]
        table["IQM [95% CI]"] = [_fmt_ci(r, "iqm") for _, r in agg.iterrows()]
        table["Opt. gap [95% CI]"] = [_fmt_ci(r, "optimality_gap") for _, r in agg.iterrows()]
        out += ["", f"## {title}", table.to_string(index=False)]
    poi = rep.get("improvement")
    if poi is not None and len(poi):
        t = poi.drop(columns=["prob", "prob_lo", "prob_hi"]).copy()
        t["P(improve) [95% CI]"] = [f"{r.prob:.2f} [{r.prob_lo:.2f}, {r.prob_hi:.2f}]"
                                    for r in poi.itertuples()]
        out += ["", "## Probability of improvement over the baseline", t.to_string(index=False)]
    le = rep.get("label_efficiency")
    if le is not None and len(le):
        t = le.copy()
        t["log_mean"] = t["log_mean"].map(lambda v: f"{v:.3f}")
        out += ["", "## Label efficiency (IQM averaged over log2 budget)",
                t.to_string(index=False)]
    runs = frame[["method", "dataset", "source", "budget", "seed", "primary_return",
                  "primary_score", "generalization_return", "generalization_score"]]
    more = f" (first {max_runs} of {len(runs)}; --format json lists all)" if len(runs) > max_runs else ""
    with pd.option_context("display.float_format", "{:.3f}".format):
        out += ["", f"## Runs{more}", runs.head(max_runs).to_string(index=False)]
    return "\n".join(out)


def cmd_score(args: argparse.Namespace) -> int:
    """``dcsbench score``: print the tables (and write plots)."""
    from dcsbench import scoring

    by = tuple(c.strip() for c in args.by.split(",") if c.strip())
    missing = "nan" if args.allow_missing_reference else "error"
    records = scoring.load_records(args.records)
    rep = score_report(records, by=by, baseline=args.baseline, reps=args.reps, seed=args.seed,
                       missing_reference=missing)
    if args.format == "table":
        print(render_table(rep))
    elif args.format == "csv":
        sys.stdout.write(rep["aggregates"].to_csv(index=False))
    else:
        print(json.dumps({k: json.loads(v.to_json(orient="records")) for k, v in rep.items()},
                         indent=2))
    if args.plots:
        paths = scoring.write_plots(rep["runs"], args.plots, baseline=args.baseline,
                                    reps=args.reps, seed=args.seed)
        print("plots: " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0
