"""``dcsbench run | sweep | score | reference | quickstart``: the protocol's command line."""

from __future__ import annotations

import argparse
import json
import sys

#: ``--vector-mode`` choices (as :data:`dcsbench.rollouts.VECTOR_MODES`, without importing it).
VECTOR_MODES = ("auto", "sync", "async", "workers")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``sweep`` (agent configuration and evaluation knobs)."""
    p.add_argument("--preset", default=None,
                   help="baseline config preset: paper, small or tiny (default: paper with CUDA, else tiny, with the reason printed); baselines only")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML mapping of agent options")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one option (repeatable; dotted keys nest; YAML values)")
    p.add_argument("--episodes", type=int, default=None,
                   help="evaluation episodes per background pool (protocol: 25; fewer -> "
                        "non-compliant record)")
    p.add_argument("--episode-length", type=int, default=None,
                   help="steps per evaluation episode (protocol: 1000; shorter -> non-compliant)")
    p.add_argument("--num-envs", type=int, default=5, help="environments per evaluation wave")
    p.add_argument("--vector-mode", choices=VECTOR_MODES, default="auto",
                   help="how evaluation steps its environments: auto (default: workers for "
                        "long evaluations on several cores, else sync), sync, async or "
                        "workers (worker processes, batched act; see dcsbench/rollouts.py)")
    p.add_argument("--no-generalization", action="store_true",
                   help="skip the novel-backgrounds evaluation (non-compliant record)")
    p.add_argument("--root", help="dataset cache root (default: $DCSBENCH_HOME)")
    p.add_argument("--davis-dir", help="DAVIS-2017 folder for source=davis datasets")
    p.add_argument("--in-process", action="store_true",
                   help="run the agent in the harness's own process (debugging with breakpoints; "
                        "non-compliant record)")
    p.add_argument("--call-timeout", type=float, default=300.0, metavar="S",
                   help="seconds one act/latent_actions/checkpoint call may take (default 300)")
    p.add_argument("--fit-timeout", type=float, default=None, metavar="S",
                   help="seconds fit may take (default: no limit)")


def _evaluate_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`dcsbench.protocol.evaluate` from ``run``/``sweep`` options."""
    kw = {"num_envs": args.num_envs, "vector_mode": args.vector_mode,
          "generalization": not args.no_generalization, "root": args.root,
          "davis_dir": args.davis_dir, "isolate": not getattr(args, "in_process", False),
          "call_timeout_s": getattr(args, "call_timeout", 300.0),
          "fit_timeout_s": getattr(args, "fit_timeout", None)}
    if args.episodes is not None:
        kw["n_episodes"] = args.episodes
    if args.episode_length is not None:
        kw["episode_length"] = args.episode_length
    return kw


def register(sub: argparse._SubParsersAction) -> None:
    """Add the protocol subcommands to the ``dcsbench`` parser."""
    p = sub.add_parser("run", help="fit one method on one dataset/budget/seed, evaluate, "
                                   "write a result record",
                       description="Run the protocol once: prepare the views, fit the agent, "
                                   "evaluate it online (train and novel backgrounds) and write "
                                   "one result record atomically. Re-running a killed run "
                                   "resumes it.")
    p.add_argument("--agent", required=True,
                   help="baseline name (bc, idm, lapo, laom, laom-sup) or MODULE:CLASS")
    p.add_argument("--dataset", required=True, help="e.g. cheetah-run-distractors-tiny")
    p.add_argument("--budget", type=int, required=True, help="labeled trajectories")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs", help="record folder or .json file (default: runs/)")
    p.add_argument("--overwrite", action="store_true",
                   help="rerun and replace an existing record (without it, the record of the "
                        "same run is kept and one of a different run is an error)")
    p.add_argument("--keep-checkpoint", action="store_true",
                   help="keep the agent checkpoint after the record is written")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run methods x datasets x budgets x seeds "
                                     "(local processes, Ray or SLURM via submitit)")
    p.add_argument("--methods", required=True, help="comma-separated baseline names / MODULE:CLASS")
    p.add_argument("--datasets", required=True, help="comma-separated dataset names")
    p.add_argument("--budgets", required=True, help="comma-separated budgets, e.g. 2,4,8")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--out", default="runs", help="record folder (default: runs/)")
    p.add_argument("--executor", choices=("local", "ray", "submitit"), default="local")
    p.add_argument("--workers", type=int, default=1, help="concurrent runs (local executor)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run")
    p.add_argument("--num-gpus", type=float, default=0, help="GPUs per run (ray)")
    p.add_argument("--num-cpus", type=float, default=1, help="CPUs per run (ray)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (ray)")
    p.add_argument("--submitit-folder", default="submitit_logs", help="job logs (submitit)")
    p.add_argument("--submitit-cluster", choices=("slurm", "local", "debug"), default=None,
                   help="submitit backend (default: SLURM when available, else local)")
    p.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="submitit update_parameters option, e.g. slurm_partition=gpu, "
                        "gpus_per_node=1, timeout_min=600 (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    _add_run_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("reference", help="measure a dataset's reference return (BC on all "
                                         "train trajectories, all actions revealed)",
                       description="Train BC on every train trajectory with all actions, "
                                   "evaluate it, and store its return as the dataset's "
                                   "normalization reference. It counts only at >= 50%% of the "
                                   "demonstrators' mean return; a weaker one is stored as "
                                   "invalid (scores on the dataset are then not normalized).")
    p.add_argument("dataset")
    p.add_argument("--preset", default=None, help="BC config preset: paper, small or tiny "
                                                  "(default: paper with CUDA, else tiny)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML mapping of BC options")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/reference", help="folder of the BC run's record")
    p.add_argument("--references", default=None,
                   help="references file to update (default: the packaged "
                        "dcsbench/registry_data/references.json or $DCSBENCH_REFERENCES)")
    p.add_argument("--episodes", type=int, default=None,
                   help="evaluation episodes (protocol: 25; tests only)")
    p.add_argument("--episode-length", type=int, default=None,
                   help="steps per evaluation episode (protocol: 1000; tests only)")
    p.add_argument("--num-envs", type=int, default=5)
    p.add_argument("--vector-mode", choices=VECTOR_MODES, default="auto")
    p.add_argument("--root", help="dataset cache root (default: $DCSBENCH_HOME)")
    p.add_argument("--davis-dir", help="DAVIS-2017 folder for source=davis datasets")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_reference, no_generalization=False)

    p = sub.add_parser("quickstart", help="build the tiny dataset, run one baseline, score it "
                                          "(minutes on a laptop CPU)")
    p.add_argument("--dataset", default="cheetah-run-distractors-tiny")
    p.add_argument("--method", default="bc", help="baseline to run with its tiny preset")
    p.add_argument("--budget", type=int, default=None, help="default: the tier's smallest")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one option of the tiny preset (repeatable)")
    p.add_argument("--out", default="runs/quickstart", help="record folder")
    p.add_argument("--episodes", type=int, default=None,
                   help="evaluation episodes (default: protocol's 25)")
    p.add_argument("--num-envs", type=int, default=5)
    p.add_argument("--root", help="dataset cache root (default: $DCSBENCH_HOME)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_quickstart)

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

    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no reference for")  # reported in the table
        frame = scoring.records_to_frame(records, missing_reference=missing_reference)
    if frame.empty:
        raise ValueError("no result records found")
    rep = {"runs": frame}
    normalized = frame[frame["primary_score"].notna()]
    if len(normalized):
        rep["aggregates"] = scoring.aggregate(normalized, by=by, reps=reps, seed=seed)
        if normalized["generalization_score"].notna().any():
            rep["generalization"] = scoring.aggregate(normalized, by=by,
                                                      score="generalization_score",
                                                      reps=reps, seed=seed)
        rep["improvement"] = scoring.probability_of_improvement(normalized, baseline=baseline,
                                                                reps=reps, seed=seed)
        if "budget" in by:
            rest = [c for c in by if c != "budget"]
            rep["label_efficiency"] = scoring.label_efficiency(normalized, by=rest, reps=reps,
                                                               seed=seed)[1]
    # runs whose dataset has no valid reference: the fraction of the demonstrators' return
    fractions = frame[frame["primary_score"].isna() & frame["primary_demo_fraction"].notna()]
    if len(fractions):
        rep["demo_fraction"] = scoring.aggregate(fractions, by=by, score="primary_demo_fraction",
                                                 reps=reps, seed=seed)
    return rep


def reference_notes(frame) -> list[str]:
    """One line per dataset of ``frame`` whose scores are not normalized, saying why."""
    from dcsbench import scoring

    notes = []
    refs = scoring.load_measured_references()
    for key, f in frame[frame["primary_score"].isna()].groupby("task_key", sort=True):
        ref = refs.get(key)
        if ref is not None and not ref.valid:
            notes.append(f"{key}: NOT NORMALIZED: its reference (BC on every train trajectory) "
                         f"is {ref.describe()} (valid only at >= "
                         f"{scoring.MIN_REFERENCE_FRACTION:.0%} of the demonstrators); reported: "
                         f"the return and its fraction of the demonstrators' return")
        else:
            notes.append(f"{key}: NOT NORMALIZED: no reference measured "
                         f"(dcsbench reference {key.split('/')[0]})")
    return notes


def render_table(rep: dict, max_runs: int = 30) -> str:
    """Human-readable text of a :func:`score_report`."""
    import pandas as pd

    out = []
    frame = rep["runs"]
    noncompliant = int((~frame["protocol_compliant"]).sum())
    out.append(f"{len(frame)} run(s) from {frame['task_key'].nunique()} dataset(s)"
               + (f"; {noncompliant} NOT protocol-compliant (smoke-test settings)"
                  if noncompliant else ""))
    out += reference_notes(frame)
    for key, title in (("aggregates", "Primary score (train backgrounds, normalized)"),
                       ("generalization", "Generalization score (novel backgrounds, normalized)"),
                       ("demo_fraction", "Fraction of the demonstrators' return (train "
                                         "backgrounds; no valid reference: NOT normalized)")):
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
    cols = ["method", "dataset", "source", "budget", "seed", "primary_return"]
    if frame["primary_score"].notna().any():
        cols += ["primary_score"]
    if frame["primary_score"].isna().any():
        cols += ["primary_demo_fraction"]
    cols += ["generalization_return"]
    if frame["generalization_score"].notna().any():
        cols += ["generalization_score"]
    runs = frame[cols].rename(columns={"primary_demo_fraction": "demo_fraction"})
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


def cmd_run(args: argparse.Namespace) -> int:
    """``dcsbench run``: one protocol run -> one record."""
    from dcsbench.protocol import evaluate, make_agent

    agent = make_agent(args.agent, args.config, args.overrides, args.preset)
    record = evaluate(agent, args.dataset, args.budget, args.seed, out=args.out,
                      progress=not args.no_progress, overwrite=args.overwrite,
                      keep_checkpoint=args.keep_checkpoint, **_evaluate_kwargs(args))
    p, g = record.primary, record.generalization
    line = f"{record.method.name} {record.dataset.name} b={record.budget} s={record.seed}: " \
           f"return {p.mean_return:.1f}"
    from dcsbench import scoring
    try:  # the record holds facts; the score is computed here, downstream, from its return
        norm = scoring.normalized_score(p.mean_return, record.task, record.setting, record.source,
                                        record.dataset.name)
        line += f" (normalized {norm:.3f})"
    except scoring.InvalidReferenceError as err:
        ref = err.reference
        frac = (f"{p.mean_return / ref.demonstrator_return:.1%} of the demonstrators' "
                f"{ref.demonstrator_return:.1f}; " if ref.demonstrator_return else "")
        line += f" ({frac}not normalized: the dataset's reference is invalid: {ref.describe()})"
    except scoring.MissingReferenceError:
        line += " (no reference yet: not normalized)"
    if g is not None:
        line += f"; novel backgrounds {g.mean_return:.1f}"
    if not record.protocol_compliant:
        line += "  [not protocol-compliant]"
    print(line)
    return 0


def _csv(text: str, kind=str) -> list:
    items = [kind(x.strip()) for x in text.split(",") if x.strip()]
    if not items:
        raise ValueError(f"empty list: {text!r}")
    return items


def cmd_sweep(args: argparse.Namespace) -> int:
    """``dcsbench sweep``: expand the grid and run it on the chosen executor."""
    from dcsbench.protocol import parse_overrides
    from dcsbench.sweep import expand, run_sweep

    specs = expand(_csv(args.methods), _csv(args.datasets), _csv(args.budgets, int),
                   _csv(args.seeds, int), args.out, preset=args.preset,
                   config_file=args.config, overrides=tuple(args.overrides),
                   evaluate_kwargs=_evaluate_kwargs(args), threads=args.threads)
    if args.dry_run:
        for s in specs:
            print(f"{s.label} -> {s.record}")
        return 0
    results = run_sweep(specs, executor=args.executor, workers=args.workers,
                        num_gpus=args.num_gpus, num_cpus=args.num_cpus,
                        ray_address=args.ray_address, submitit_folder=args.submitit_folder,
                        slurm=parse_overrides(args.slurm),
                        submitit_cluster=args.submitit_cluster)
    failed = {k: v for k, v in results.items() if v is not None}
    for rec, err in failed.items():
        print(f"failed: {rec}: {err}", file=sys.stderr)
    return 1 if failed else 0


def reference_verdict(ret: float, demo_mean: float) -> str:
    """One line on a measured reference: its fraction of the demonstrators' mean return and
    whether it counts (:data:`dcsbench.scoring.MIN_REFERENCE_FRACTION`; the rule of
    :func:`dcsbench.scoring.reference_validity`)."""
    from dcsbench import scoring

    frac, valid = scoring.reference_validity(ret, demo_mean)
    if frac is None:
        return ("no positive return to normalize by: INVALID" if not valid else
                "the demonstrators' mean return is unknown: validity not checked")
    if valid:
        return (f"{frac:.1%} of the demonstrators' mean return {demo_mean:.1f}: VALID "
                f"(>= {scoring.MIN_REFERENCE_FRACTION:.0%})")
    return (f"{frac:.1%} of the demonstrators' mean return {demo_mean:.1f}: INVALID (below "
            f"{scoring.MIN_REFERENCE_FRACTION:.0%}: BC did not learn enough). It is stored as "
            f"invalid and scores on this dataset are not normalized (they report the fraction "
            f"of the demonstrators' return); measure a stronger reference (more bc.updates, a "
            f"larger preset)")


def measure_reference(dataset: str, preset: str | None = "paper", config_file=None, overrides=(),
                      seed: int = 0, out="runs/reference", references=None,
                      progress: bool = True, **evaluate_kwargs):
    """Train BC on every train trajectory with all actions revealed, evaluate it under the
    protocol, and store its mean return as the dataset's reference (with provenance and the
    demonstrators' mean train return from the manifest).

    A reference below :data:`dcsbench.scoring.MIN_REFERENCE_FRACTION` of the demonstrators'
    return is stored as invalid (:func:`reference_verdict` says so on stderr): scores on the
    dataset are then not normalized. Returns ``(record, record_path, references_path)``.
    """
    from dcsbench import data, catalogue, scoring
    from dcsbench.protocol import evaluate, make_agent, record_path

    name = catalogue.parse_dataset_name(dataset)
    agent = make_agent("bc", config_file, list(overrides), preset)
    preset = getattr(agent, "preset", preset)   # the one chosen for this machine when None
    record = evaluate(agent, str(name), "all", seed, out=out, progress=progress,
                      **evaluate_kwargs)
    path = record_path(out, record.method.name, record.dataset.name, record.source,
                       record.budget, record.seed)
    if not record.protocol_compliant:
        print("warning: the reference run is not protocol-compliant", file=sys.stderr)
    demo = data.load_dataset(str(name), "train", root=evaluate_kwargs.get("root"))
    demo_mean = float(sum(demo.returns) / len(demo.returns))
    print(f"reference {name}: {record.primary.mean_return:.1f} = "
          + reference_verdict(record.primary.mean_return, demo_mean), file=sys.stderr)
    entry = scoring.reference_entry(record, path, {"preset": preset, "overrides": list(overrides),
                                                   "demonstrator_mean_return": demo_mean})
    return record, path, scoring.store_reference(entry, references)


def cmd_reference(args: argparse.Namespace) -> int:
    """``dcsbench reference DATASET``."""
    from dcsbench import scoring

    record, path, refs = measure_reference(
        args.dataset, args.preset, args.config, args.overrides, args.seed, args.out,
        args.references, progress=not args.no_progress, **_evaluate_kwargs(args))
    ref = scoring.load_measured_references(refs).get(f"{record.dataset.name}/{record.source}")
    status = "" if ref is None else (
        f"\n{'valid' if ref.valid else 'INVALID'} reference: {ref.describe()}")
    print(f"reference return of {record.dataset.name} ({record.source}): "
          f"{record.primary.mean_return:.1f} (BC, {record.budget} labeled trajectories, "
          f"{len(record.primary.returns)} episodes){status}\nrecord: {path}\nstored in: {refs}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    """``dcsbench quickstart``: tiny dataset -> one baseline run -> score table."""
    import time

    from dcsbench import catalogue
    from dcsbench.protocol import evaluate, make_agent, record_path

    t0 = time.perf_counter()
    name = catalogue.parse_dataset_name(args.dataset)
    budget = args.budget if args.budget is not None else name.tier_spec.budgets[0]
    _ensure_dataset(str(name), args.root)
    agent = make_agent(args.method, overrides=args.overrides, preset="tiny")
    kw = {"num_envs": args.num_envs, "root": args.root}
    if args.episodes is not None:
        kw["n_episodes"] = args.episodes
    record = evaluate(agent, str(name), budget, 0, out=args.out,
                      progress=not args.no_progress, **kw)
    path = record_path(args.out, record.method.name, record.dataset.name, record.source,
                       record.budget, record.seed)
    rep = score_report([(path, record)], reps=500, missing_reference="nan")
    print(render_table(rep))
    if rep["runs"]["primary_score"].isna().all():
        frac = rep["runs"]["primary_demo_fraction"].iloc[0]
        what = (f"{record.primary.mean_return:.1f}, {frac:.1%} of the demonstrators' return"
                if frac == frac else f"{record.primary.mean_return:.1f}")
        print(f"\nnote: {record.dataset.name} is a smoke-test tier without a valid "
              f"normalization reference, so this run reports its return ({what}), not a "
              f"normalized score. Normalized scores need a reference at >= 50% of the "
              f"demonstrators (dcsbench reference NAME; the small and full tiers).")
    print(f"\nrecord: {path}\nrescore with: dcsbench score {args.out}")
    print(f"quickstart finished in {time.perf_counter() - t0:.0f} s")
    return 0


def _ensure_dataset(name: str, root) -> None:
    """Build a dataset locally unless it is already in the cache."""
    from dcsbench import data

    from dcsbench.data.store import ensure_dataset

    try:
        ensure_dataset(name, root=root)
        return
    except FileNotFoundError:
        pass
    print(f"[dcsbench] building {name} (first run only)", file=sys.stderr, flush=True)
    data.build_dataset(name, root=root)
