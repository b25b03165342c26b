"""Report of a study folder: ``results.csv``, ``README.md`` and ``results.png`` from its records
(run as ``python studies/report.py STUDY``; the figure is :func:`dcsbench.plots.study_results_png`).

A study is launched by ``dcsbench study PLAN.yaml --out FOLDER`` (:mod:`dcsbench.study`, whose
docstring gives the folder layout); this script only reads what the study wrote::

    FOLDER/runs/{method}/{dataset}__b{budget}__s{seed}.json   records (version 2; version 1 loads too)
    FOLDER/reference/{dataset}__ball__s{seed}.json            reference runs (when the plan has one)
    FOLDER/references.json                                    the study's own references
    FOLDER/status.json                                        the plan's name, done / to run

A folder without ``runs/`` (a flat folder of records, as the record-version-1 study in
``studies/results/tiny-cheetah-v1/records/``) is read whole, its ``reference/`` subfolder apart.
Hidden paths (the runs' ``.work/`` checkpoints) are skipped; every record is read with
:func:`dcsbench.results.load_record` (strict validation: a malformed record is an error naming
the file and field, never skipped silently).

Outputs, in ``--out`` (default ``studies/results/<plan name>/``: the plan given with ``--plan``,
else the one named in ``status.json``, else the folder's name), each written atomically
(:mod:`dcsbench.fileio`):

* ``results.csv``: one row per run: method, dataset, budget, seed, mean and std (over the
  evaluation episodes, ``ddof=0``) of the return on train and novel backgrounds, normalized
  scores where the reference is valid, the offline probe metrics (``probe_mse_train``,
  ``probe_mse_novel``, ``action_var_train``, ``action_var_novel``, ``probe_mse_train_random``,
  under their version-2 names for version-1 records too), fit seconds when recorded;
* ``README.md``: mean +- std over seeds per (method, budget) for each dataset, and the run
  settings (plan and preset, evaluation episodes, machines and git commits as recorded);
* ``results.png``: return per method and budget; for the methods with a latent-action probe,
  ``probe_mse_train`` against the same probe on random features and the constant predictor.

Normalized scores come from :func:`dcsbench.scoring.record_scores` with the references known
now: the packaged ones (or ``$DCSBENCH_REFERENCES``, or ``--references FILE``), updated by the
study's own ``references.json``. Where a dataset's reference is invalid (below
:data:`dcsbench.references.MIN_REFERENCE_FRACTION` of the demonstrators' return: the tiny tier)
or missing, its runs are not normalized and the report says so; it then shows the fraction of
the demonstrators' return where that is known. Nothing in the report is typed in: every number
comes from a record. Text below the notes marker line of an existing ``README.md`` (a
hand-written reading) is kept when the report is regenerated.

    python studies/report.py runs/tiny-cheetah                   # -> studies/results/tiny-cheetah/
    python studies/report.py runs/study-first-shard              # -> studies/results/first-shard/
    python studies/report.py runs/tiny-cheetah --out /tmp/tiny-cheetah-report \\
        --plan studies/plans/tiny-cheetah.yaml
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLANS = ROOT / "studies" / "plans"
RESULTS = ROOT / "studies" / "results"

#: Display order of the reference baselines; other methods follow, sorted by name.
METHODS = ("bc", "idm", "lapo", "laom", "laom-sup")

#: The line of README.md below which hand-written notes are kept on regeneration.
NOTES_MARKER = "<!-- notes: text below this line is hand-written; studies/report.py keeps it -->"

#: Columns of results.csv, in order.
CSV_FIELDS = ("method", "dataset", "budget", "seed", "return_mean", "return_std",
              "novel_return_mean", "novel_return_std", "normalized_score",
              "novel_normalized_score", "demo_fraction", "novel_demo_fraction",
              "probe_mse_train", "probe_mse_novel", "action_var_train", "action_var_novel",
              "probe_mse_train_random", "fit_seconds", "total_seconds", "episodes",
              "episode_length", "record_version", "protocol_compliant", "num_parameters",
              "git_commit", "record")

#: Offline metrics copied into results.csv (version-2 names).
PROBE_FIELDS = ("probe_mse_train", "probe_mse_novel", "action_var_train", "action_var_novel",
                "probe_mse_train_random")

#: Config keys (last dotted part) shown per method in the settings: the run's length and size.
CONFIG_KEYS = ("updates", "epochs", "batch_size", "encoder_scale", "latent_dim", "device")


# ----------------------------------------------------------------------------- reading


def _json_files(folder: Path) -> list[Path]:
    """``*.json`` below ``folder``, hidden paths (``.work/`` checkpoints) excluded, sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.json")
                  if not any(part.startswith(".") for part in p.relative_to(folder).parts))


def record_files(study: Path) -> tuple[list[Path], list[Path]]:
    """``(run records, reference records)`` of a study folder (layout in the module docstring)."""
    refs = _json_files(study / "reference")
    if (study / "runs").is_dir():
        return _json_files(study / "runs"), refs
    top = {study / "reference", study / "references.json", study / "status.json"}
    runs = [p for p in _json_files(study)
            if not any(q == p or q in p.parents for q in top)]
    return runs, refs


def load_records(paths: list[Path]) -> list[tuple[Path, Any]]:
    """``(path, ResultRecord)`` per file, read with the project's loader (v1 and v2 records)."""
    from dcsbench.results import load_record

    return [(p, load_record(p)) for p in paths]


def study_references(study: Path, references: str | Path | None = None) -> dict:
    """Measured references for scoring: ``references`` (else the packaged file or
    ``$DCSBENCH_REFERENCES``), updated by the study's own ``references.json``."""
    from dcsbench import scoring

    refs = dict(scoring.load_measured_references(references))
    own = study / "references.json"
    if own.is_file():
        refs.update(scoring.load_measured_references(own))
    return refs


def reference_status(record, refs: dict) -> dict[str, Any]:
    """How the runs of ``record``'s dataset are scored: ``{"valid": bool, "return", "note"}``."""
    from dcsbench import scoring

    try:
        ref = scoring.get_reference(record.task, record.setting, record.source,
                                    record.dataset.name, refs)
    except scoring.InvalidReferenceError as err:
        m = err.reference
        return {"valid": False, "return": m.ret,
                "note": f"not normalized ({record.tier} tier: reference invalid): the reference "
                        f"(BC on every train trajectory) is {m.describe()} (a reference counts "
                        f"at >= {scoring.MIN_REFERENCE_FRACTION:.0%} of the demonstrators' "
                        f"return). Shown instead: the fraction of the demonstrators' return."}
    except scoring.MissingReferenceError:
        return {"valid": False, "return": None,
                "note": f"not normalized (no reference measured: `dcsbench reference "
                        f"{record.dataset.name}`)"}
    return {"valid": True, "return": ref.ret,
            "note": f"normalized by the reference return {ref.ret:.1f} ({ref.provenance})"}


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _mean_std(values) -> tuple[float | None, float | None]:
    import numpy as np

    if not values:
        return None, None
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std())


def run_row(path: Path, record, refs: dict, base: Path) -> dict[str, Any]:
    """One results.csv row of a record (normalized scores only where the reference is valid)."""
    from dcsbench import scoring
    from dcsbench.results import offline_metrics_v2

    try:
        sc = scoring.record_scores(record, refs)
    except scoring.MissingReferenceError:
        sc = {}
    valid = bool(sc.get("reference_valid"))
    gen = record.generalization
    om = offline_metrics_v2(record)
    mean, std = _mean_std(record.primary.returns)
    gmean, gstd = _mean_std(gen.returns) if gen is not None else (None, None)
    try:
        rel = str(path.relative_to(base))
    except ValueError:
        rel = str(path)
    row = {
        "method": record.method.name, "dataset": record.dataset.name, "budget": record.budget,
        "seed": record.seed, "return_mean": mean, "return_std": std,
        "novel_return_mean": gmean, "novel_return_std": gstd,
        "normalized_score": _finite(sc.get("primary_score")) if valid else None,
        "novel_normalized_score": _finite(sc.get("generalization_score")) if valid else None,
        "demo_fraction": _finite(sc.get("primary_demo_fraction")),
        "novel_demo_fraction": _finite(sc.get("generalization_demo_fraction")),
        **{k: om.get(k) for k in PROBE_FIELDS},
        "fit_seconds": record.stage_seconds.get("fit"),
        "total_seconds": record.stage_seconds.get("total"),
        "episodes": len(record.primary.returns), "episode_length": record.episode_length,
        "record_version": record.record_version, "protocol_compliant": record.protocol_compliant,
        "num_parameters": record.method.num_parameters, "git_commit": record.git_commit,
        "record": rel,
    }
    return row


def method_order(methods) -> list[str]:
    """The reference baselines in :data:`METHODS` order, then the others sorted."""
    ms = set(methods)
    return [m for m in METHODS if m in ms] + sorted(ms - set(METHODS))


# ----------------------------------------------------------------------------- aggregates


def _stats(values) -> tuple[float, float, int] | None:
    """``(mean, std, n)`` over the non-missing values (``None`` when there are none)."""
    import numpy as np

    v = [x for x in values if x is not None]
    if not v:
        return None
    return float(np.mean(v)), float(np.std(v)), len(v)


def _fmt(s, digits: int = 3) -> str:
    return "-" if s is None else f"{s[0]:.{digits}f} ± {s[1]:.{digits}f} (n={s[2]})"


def cells(rows: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """Rows grouped by ``(dataset, method, budget)`` in display order."""
    out: dict[tuple[str, str, int], list[dict]] = {}
    for d in sorted({r["dataset"] for r in rows}):
        rs = [r for r in rows if r["dataset"] == d]
        for m in method_order(r["method"] for r in rs):
            for b in sorted({r["budget"] for r in rs if r["method"] == m}):
                out[(d, m, b)] = sorted((r for r in rs if r["method"] == m and r["budget"] == b),
                                        key=lambda r: r["seed"])
    return out


# ----------------------------------------------------------------------------- settings


def find_plan(study: Path, plan: str | Path | None) -> tuple[Any, Path | None, str]:
    """``(Plan or None, its file, how it was found)``: ``plan`` if given, else the plan named
    in the study's ``status.json`` (or by the folder's name) under ``studies/plans/``."""
    from dcsbench.study import load_plan

    if plan is not None:
        return load_plan(plan), Path(plan), "given with --plan"
    name = study.resolve().name
    try:
        name = str(json.loads((study / "status.json").read_text(encoding="utf-8"))["plan"])
        how = "named in status.json"
    except (OSError, ValueError, KeyError, TypeError):
        how = "named like the study folder"
    path = PLANS / f"{name}.yaml"
    if not path.is_file() and name.startswith("study-"):  # dcsbench.study's default folder name
        path = PLANS / f"{name[len('study-'):]}.yaml"
    if not path.is_file():
        return None, None, f"no plan file {path.relative_to(ROOT)}"
    try:
        return load_plan(path), path, how
    except (OSError, ValueError) as err:
        return None, path, f"plan {path} not readable: {err}"


def _flat(cfg: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def settings_lines(records: list, plan, plan_path: Path | None, plan_how: str) -> list[str]:
    """Markdown lines: plan and preset, per-method config, episodes, machines, commits."""
    lines = ["## Settings (as recorded)", ""]
    if plan is not None:
        over = {k: list(v) for k, v in plan.overrides.items() if v}
        lines.append(f"* plan `{plan.name}` (`{_rel(plan_path)}`, {plan_how}; the file as it is "
                     f"now): preset `{plan.preset or 'per method default'}`"
                     + (f", overrides {json.dumps(over)}" if over else "")
                     + f"; datasets {', '.join(plan.datasets)}; budgets {list(plan.budgets)}; "
                       f"seeds {list(plan.seeds)}.")
    else:
        lines.append(f"* plan: unknown ({plan_how}; pass `--plan`): the preset is not stored in "
                     f"the records, only the resulting configuration below.")
    by_method: dict[str, list] = {}
    for r in records:
        by_method.setdefault(r.method.name, []).append(r)
    for m in method_order(by_method):
        configs = Counter(json.dumps({k: v for k, v in sorted(_flat(r.method.config).items())
                                      if k.split(".")[-1] in CONFIG_KEYS})
                          for r in by_method[m])
        for cfg, n in configs.items():
            shown = ", ".join(f"{k}={v}" for k, v in json.loads(cfg).items()) or "not recorded"
            lines.append(f"* `{m}` config ({n} run(s)): {shown}.")
    ep = Counter((len(r.primary.returns),
                  len(r.generalization.returns) if r.generalization is not None else 0,
                  r.episode_length, r.protocol_compliant) for r in records)
    for (n1, n2, length, ok), n in sorted(ep.items()):
        lines.append(f"* evaluation ({n} run(s)): {n1} episodes on train backgrounds + {n2} on "
                     f"novel backgrounds, {length} steps each; "
                     + ("protocol-compliant." if ok else "NOT protocol-compliant."))
    hw = Counter(json.dumps(r.hardware, sort_keys=True) for r in records)
    for h, n in hw.most_common():
        d = json.loads(h)
        known = ("platform", "cpu_count", "accelerator", "cuda", "torch", "torch_threads", "python")
        desc = ", ".join(f"{k} {d[k]}" for k in [k for k in known if k in d]
                         + sorted(set(d) - set(known)))
        lines.append(f"* machine ({n} run(s)): {desc or 'not recorded'}.")
    commits = Counter(r.git_commit or "not recorded" for r in records)
    lines.append("* git commit: " + "; ".join(f"`{c}` ({n} run(s))" for c, n in commits.most_common())
                 + ".")
    versions = Counter((r.dcsbench_version, r.record_version) for r in records)
    lines.append("* dcsbench version / record version: "
                 + "; ".join(f"{v} / {rv} ({n} run(s))" for (v, rv), n in sorted(versions.items()))
                 + ".")
    stamps = sorted(r.timestamp for r in records)
    if stamps:
        lines.append(f"* records written {stamps[0]} to {stamps[-1]}.")
    return lines


# ----------------------------------------------------------------------------- outputs


def render_csv(rows: list[dict]) -> str:
    """results.csv text: :data:`CSV_FIELDS`, empty cells for missing values."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    w.writeheader()
    rank = {m: i for i, m in enumerate(METHODS)}
    for r in sorted(rows, key=lambda r: (r["dataset"], rank.get(r["method"], len(METHODS)),
                                         r["method"], r["budget"], r["seed"])):
        w.writerow({k: "" if r.get(k) is None else r[k] for k in CSV_FIELDS})
    return buf.getvalue()


def render_readme(title: str, study: Path, rows: list[dict], ref_notes: dict[str, dict],
                  reference_rows: list[dict], settings: list[str], notes: str = "") -> str:
    """README.md text (tables per dataset, references, settings; ``notes`` kept at the end)."""
    lines = [f"# Study: {title}", "",
             f"Written by `python studies/report.py {_rel(study)}` from {len(rows)} run record(s) "
             f"of `{_rel(study)}`; regenerating rewrites everything above the notes marker. "
             "Mean ± std over seeds of each run's mean over its evaluation episodes; `train` = "
             "primary evaluation (the dataset's train backgrounds), `novel` = generalization "
             "evaluation (novel backgrounds). Probe = the harness's ridge probe latent -> action "
             "(dcsbench/probe.py: fitted on train trajectories, scored on held-out train "
             "trajectories; `random` = the same probe on the untrained model; lower is better). "
             "Per-run numbers: `results.csv`; plot: `results.png`.", ""]
    groups = cells(rows)
    for d in sorted({r["dataset"] for r in rows}):
        note = ref_notes[d]
        lines += [f"## {d}", "", f"Scores: {note['note']}", ""]
        if note["valid"]:
            extra = ("normalized (train)", "normalized (novel)", "normalized_score",
                     "novel_normalized_score", 3)
        else:
            extra = ("fraction of demonstrators (train)", "fraction of demonstrators (novel)",
                     "demo_fraction", "novel_demo_fraction", 4)
        lines += [f"| method | budget | return (train) | return (novel) | {extra[0]} | {extra[1]} "
                  "| probe MSE train | probe MSE random | probe MSE novel | fit s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for (dd, m, b), rs in groups.items():
            if dd != d:
                continue
            col = lambda k: [r[k] for r in rs]  # noqa: E731
            lines.append(f"| {m} | {b} | {_fmt(_stats(col('return_mean')), 1)} | "
                         f"{_fmt(_stats(col('novel_return_mean')), 1)} | "
                         f"{_fmt(_stats(col(extra[2])), extra[4])} | "
                         f"{_fmt(_stats(col(extra[3])), extra[4])} | "
                         f"{_fmt(_stats(col('probe_mse_train')), 4)} | "
                         f"{_fmt(_stats(col('probe_mse_train_random')), 4)} | "
                         f"{_fmt(_stats(col('probe_mse_novel')), 4)} | "
                         f"{_fmt(_stats(col('fit_seconds')), 0)} |")
        drs = [r for r in rows if r["dataset"] == d]
        var_t = _stats([r["action_var_train"] for r in drs])
        var_n = _stats([r["action_var_novel"] for r in drs])
        if var_t or var_n:
            lines += ["", "Constant predictor (probe MSE of always predicting the mean action): "
                      + "; ".join(f"{what} {s[0]:.4f}" for what, s in
                                  (("held-out train trajectories", var_t), ("novel", var_n)) if s)
                      + "."]
        lines.append("")
    if reference_rows:
        lines += ["## Reference runs", "", "BC on every train trajectory with all actions "
                  "(`FOLDER/reference/`); whether it counts is said per dataset above.", "",
                  "| dataset | trajectories | seed | return (train) | return (novel) |",
                  "|---|---:|---:|---:|---:|"]
        for r in reference_rows:
            lines.append(f"| {r['dataset']} | {r['budget']} | {r['seed']} | "
                         f"{r['return_mean']:.1f} ± {r['return_std']:.1f} | "
                         + (f"{r['novel_return_mean']:.1f} ± {r['novel_return_std']:.1f}"
                            if r["novel_return_mean"] is not None else "-") + " |")
        lines.append("")
    lines += settings + ["", NOTES_MARKER]
    text = "\n".join(lines) + "\n"
    return text + notes


def kept_notes(readme: Path) -> str:
    """The text below :data:`NOTES_MARKER` of an existing README (empty when none)."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return ""
    _, sep, tail = text.partition(NOTES_MARKER + "\n")
    return tail if sep else ""


def write_report(study: str | Path, out: str | Path | None = None, plan: str | Path | None = None,
                 references: str | Path | None = None, datasets=None, methods=None,
                 plot: bool = True) -> dict[str, Any]:
    """Read ``study``'s records and write results.csv, README.md (and results.png) into ``out``.

    Returns ``{"out", "rows", "files"}``. Raises ``FileNotFoundError`` when the folder holds no
    record (of the selected datasets and methods) and :class:`dcsbench.results.RecordError` on
    a malformed record.
    """
    from dcsbench.fileio import atomic_write_bytes, atomic_write_text

    study = Path(study)
    if not study.is_dir():
        raise FileNotFoundError(f"no such study folder: {study}")
    run_paths, ref_paths = record_files(study)
    records = [(p, r) for p, r in load_records(run_paths)
               if (not datasets or r.dataset.name in datasets)
               and (not methods or r.method.name in methods)]
    if not records:
        raise FileNotFoundError(f"no run records under {study}"
                                + (" for the selected datasets/methods" if datasets or methods
                                   else "") + " (layout: FOLDER/runs/METHOD/*.json)")
    refs = study_references(study, references)
    rows = [run_row(p, r, refs, study) for p, r in records]
    ref_records = [(p, r) for p, r in load_records(ref_paths)
                   if not datasets or r.dataset.name in datasets]
    ref_rows = [run_row(p, r, refs, study) for p, r in ref_records]
    ref_notes = {}
    for _, r in records:
        ref_notes.setdefault(r.dataset.name, reference_status(r, refs))
    plan_obj, plan_path, plan_how = find_plan(study, plan)
    title = plan_obj.name if plan_obj is not None else study.resolve().name
    out = Path(out) if out is not None else RESULTS / title
    settings = settings_lines([r for _, r in records], plan_obj, plan_path, plan_how)
    readme = out / "README.md"
    atomic_write_text(out / "results.csv", render_csv(rows))
    atomic_write_text(readme, render_readme(title, study, rows, ref_notes, ref_rows, settings,
                                            kept_notes(readme)))
    files = [out / "results.csv", readme]
    if plot:
        from dcsbench.plots import study_results_png

        atomic_write_bytes(out / "results.png", study_results_png(rows))
        files.append(out / "results.png")
    return {"out": out, "rows": rows, "files": files}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="studies/report.py",
        description="Report of a study folder written by `dcsbench study PLAN.yaml --out FOLDER`: "
                    "results.csv (one row per run), README.md (mean ± std over seeds per method "
                    "and budget, run settings) and results.png, from the records only.")
    p.add_argument("study", help="the study folder (holds runs/METHOD/*.json)")
    p.add_argument("--out", default=None,
                   help="output folder (default: studies/results/<plan name>, else the folder's name)")
    p.add_argument("--plan", default=None,
                   help="the study's plan file, for the settings (default: the plan named in "
                        "FOLDER/status.json, else by the folder's name, under studies/plans/)")
    p.add_argument("--references", default=None,
                   help="references file to score with (default: the packaged one or "
                        "$DCSBENCH_REFERENCES), updated by FOLDER/references.json")
    p.add_argument("--dataset", action="append", default=None,
                   help="only this dataset (repeatable)")
    p.add_argument("--method", action="append", default=None, help="only this method (repeatable)")
    p.add_argument("--no-plot", action="store_true", help="write results.csv and README.md only")
    args = p.parse_args(argv)
    from dcsbench.results import RecordError

    try:
        res = write_report(args.study, args.out, plan=args.plan, references=args.references,
                           datasets=args.dataset, methods=args.method, plot=not args.no_plot)
    except (FileNotFoundError, RecordError, ValueError) as err:
        print(f"studies/report.py: {err}", file=sys.stderr)
        return 2
    print(f"{len(res['rows'])} run(s) -> " + ", ".join(str(f) for f in res["files"]))
    return 0
