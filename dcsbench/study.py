"""Studies: a committed plan of runs, executed shard by shard within a time limit.

A *plan* (YAML, e.g. ``studies/plans/first-shard.yaml``) names datasets x methods x budgets x
seeds at a preset (with per-method overrides and resources) plus each dataset's *reference*
(BC on every train trajectory, :func:`dcsbench.commands.runs.measure_reference`)::

    name: first-shard
    datasets: [cheetah-run-distractors-small]
    methods: [bc, idm, lapo, laom, laom-sup]
    budgets: [16, 128]
    seeds: [0]
    preset: small
    overrides: {all: [], laom: ["lam.epochs=20"]}      # KEY=VALUE lists; 'all' applies to every method
    resources: {laom: {num_gpus: 0.25}}               # per-method Ray resources
    reference: {method: bc, preset: small, overrides: [], seed: 0}   # or: reference: false
    evaluation: {episodes: 25, episode_length: 1000, num_envs: 5, vector_mode: sync,
                 generalization: true}
    executor: {kind: local, workers: 6, threads: 2, num_gpus: 0.16, num_cpus: 2}
    min_start_minutes: 1.0    # do not start a run with less than this left
    build: {workers: 16}      # used by benchmarks/device_study.sh

:func:`run_study` runs what is missing (the references first in the queue) on the existing sweep
executors (:func:`dcsbench.sweep.run_sweep`: local processes or Ray), with a deadline: runs not
started in time are left for the next call; runs in flight are stopped and resume from their
work-folder checkpoint (``.work/``: after fit, after each evaluation wave) next time. Layout of
a study folder (``out``)::

    out/runs/{method}/{dataset}__b{budget}__s{seed}.json     records (facts only)
    out/reference/{dataset}__ball__s{seed}.json              reference runs' records
    out/references.json                                      the study's references (with validity)
    out/status.json                                          done / partial / to run
    out/**/.work/<run>/                                      checkpoints of unfinished runs

:func:`pack` puts a study folder into at most ``max_files`` files of at most ``max_bytes``
(``records.tar.gz`` plus ``work.tar.gz`` split into parts, largest checkpoints dropped if the
budget is exceeded), so a lent machine's few returned files carry everything; :func:`unpack`
restores them on another machine, where the next :func:`run_study` resumes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dcsbench import catalogue
from dcsbench.fileio import atomic_write_text
from dcsbench.naming import record_name
from dcsbench.packing import MAX_FILES, pack, unpack  # noqa: F401 - unpack: study.unpack

#: Keys a plan may hold.
PLAN_KEYS = ("name", "datasets", "methods", "budgets", "seeds", "preset", "overrides",
             "resources", "reference", "evaluation", "executor", "min_start_minutes", "build",
             "out", "note")

#: Evaluation options of a plan -> :func:`dcsbench.protocol.evaluate` keyword arguments.
EVALUATION_KEYS = {"episodes": "n_episodes", "episode_length": "episode_length",
                   "num_envs": "num_envs", "vector_mode": "vector_mode",
                   "generalization": "generalization", "call_timeout": "call_timeout_s",
                   "fit_timeout": "fit_timeout_s"}

#: Executor options of a plan.
EXECUTOR_KEYS = ("kind", "workers", "threads", "num_gpus", "num_cpus", "ray_address", "grace_s")


#: Seconds kept free at the end of ``--max-minutes`` for stopping runs and packing.
RESERVE_S = 20.0


def _log(msg: str) -> None:
    print(f"[study] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    """A validated study plan (see the module docstring for the YAML layout)."""

    name: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    preset: str | None = None
    overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    resources: dict[str, dict[str, float]] = field(default_factory=dict)
    reference: dict[str, Any] | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)
    min_start_minutes: float = 1.0
    build: dict[str, Any] = field(default_factory=dict)
    out: str | None = None

    def method_overrides(self, method: str) -> tuple[str, ...]:
        """The ``KEY=VALUE`` overrides of one method (``all`` first, then its own)."""
        return tuple(self.overrides.get("all", ())) + tuple(self.overrides.get(method, ()))


def _str_list(value, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"plan: {what} must be a list of strings, got {value!r}")
    return tuple(value)


def _int_list(value, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise ValueError(f"plan: {what} must be a non-empty list of integers >= 0, got {value!r}")
    return tuple(value)


def parse_plan(data: dict, origin: str = "plan") -> Plan:
    """Validate a plan mapping (names, budgets per tier, option keys) into a :class:`Plan`."""
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: a plan must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(PLAN_KEYS))
    if unknown:
        raise ValueError(f"{origin}: unknown plan key(s) {unknown}; valid: {', '.join(PLAN_KEYS)}")
    for k in ("name", "datasets", "methods", "budgets"):
        if k not in data:
            raise ValueError(f"{origin}: the plan lacks {k!r}")
    name = str(data["name"])
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"{origin}: name {name!r} must be letters, digits, '-' and '_'")
    datasets = _str_list(data["datasets"], "datasets")
    budgets = _int_list(data["budgets"], "budgets")
    for d in datasets:
        tier = catalogue.parse_dataset_name(d).tier_spec
        bad = [b for b in budgets if b not in tier.budgets]
        if bad:
            raise ValueError(f"{origin}: budget(s) {bad} not offered by {d} "
                             f"(budgets: {list(tier.budgets)})")
    methods = _str_list(data["methods"], "methods")
    from dcsbench import methods as method_registry

    for m in methods:
        if ":" not in m:
            catalogue.check_choice("method", m, method_registry.names())
    overrides = {str(k): _str_list(v or [], f"overrides.{k}")
                 for k, v in (data.get("overrides") or {}).items()}
    for k in overrides:
        if k != "all" and k not in methods and k != "reference":
            raise ValueError(f"{origin}: overrides for {k!r}, which is not a method of the plan")
    resources = {}
    for m, r in (data.get("resources") or {}).items():
        if not isinstance(r, dict) or set(r) - {"num_gpus", "num_cpus"}:
            raise ValueError(f"{origin}: resources.{m} must map num_gpus/num_cpus to numbers")
        resources[str(m)] = {k: float(v) for k, v in r.items()}
    ref = data.get("reference", {"method": "bc"})
    if ref is False or ref is None:
        ref = None
    elif not isinstance(ref, dict) or set(ref) - {"method", "preset", "overrides", "seed"}:
        raise ValueError(f"{origin}: reference must be false or a mapping of method, preset, "
                         f"overrides, seed")
    else:
        ref = {"method": str(ref.get("method", "bc")), "preset": ref.get("preset"),
               "overrides": _str_list(ref.get("overrides") or [], "reference.overrides"),
               "seed": int(ref.get("seed", 0))}
        if ref["method"] != "bc":
            raise ValueError(f"{origin}: the reference is BC on every train trajectory "
                             f"(method bc), got {ref['method']!r}")
    evaluation = dict(data.get("evaluation") or {})
    bad = sorted(set(evaluation) - set(EVALUATION_KEYS))
    if bad:
        raise ValueError(f"{origin}: unknown evaluation key(s) {bad}; valid: "
                         f"{', '.join(EVALUATION_KEYS)}")
    executor = dict(data.get("executor") or {})
    bad = sorted(set(executor) - set(EXECUTOR_KEYS))
    if bad:
        raise ValueError(f"{origin}: unknown executor key(s) {bad}; valid: {', '.join(EXECUTOR_KEYS)}")
    return Plan(name=name, datasets=datasets, methods=methods, budgets=budgets,
                seeds=_int_list(data.get("seeds", [0]), "seeds"),
                preset=data.get("preset"), overrides=overrides, resources=resources,
                reference=ref, evaluation=evaluation, executor=executor,
                min_start_minutes=float(data.get("min_start_minutes", 1.0)),
                build=dict(data.get("build") or {}), out=data.get("out"))


def load_plan(path: str | os.PathLike) -> Plan:
    """Read and validate a plan file (YAML)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such plan file: {path}")
    return parse_plan(yaml.safe_load(path.read_text(encoding="utf-8")), origin=str(path))


def study_dir(plan: Plan, out: str | os.PathLike | None = None) -> Path:
    """The study folder: ``out``, else the plan's ``out``, else ``runs/study-{name}``."""
    return Path(out or plan.out or f"runs/study-{plan.name}")


def references_file(out: str | os.PathLike) -> Path:
    """The study's own references file (written by its reference runs)."""
    return Path(out) / "references.json"


def evaluate_kwargs(plan: Plan, root: str | None = None) -> dict[str, Any]:
    """:func:`dcsbench.protocol.evaluate` keyword arguments from the plan's evaluation block."""
    kw = {EVALUATION_KEYS[k]: v for k, v in plan.evaluation.items()}
    if root is not None:
        kw["root"] = root
    kw.setdefault("verbose", True)
    return kw


def plan_specs(plan: Plan, out: str | os.PathLike, root: str | None = None,
               threads: int | None = None) -> list:
    """Every run of the plan as :class:`dcsbench.sweep.RunSpec`, references first."""
    from dcsbench.sweep import RunSpec, expand

    out = Path(out)
    kw = evaluate_kwargs(plan, root)
    threads = threads if threads is not None else plan.executor.get("threads")
    specs = []
    if plan.reference is not None:
        ref = plan.reference
        res = plan.resources.get("reference", plan.resources.get("bc", {}))
        for d in plan.datasets:
            specs.append(RunSpec(
                agent="bc", dataset=d, budget="all", seed=ref["seed"],
                record=str(out / "reference" / record_name(None, d, None, "all", ref["seed"])),
                preset=ref["preset"] or plan.preset,
                overrides=tuple(ref["overrides"]) + tuple(plan.overrides.get("reference", ())),
                evaluate_kwargs=kw, threads=threads, kind="reference",
                references=str(references_file(out)), num_gpus=res.get("num_gpus"),
                num_cpus=res.get("num_cpus")))
    for m in plan.methods:
        res = plan.resources.get(m, {})
        specs += expand([m], plan.datasets, plan.budgets, plan.seeds, out / "runs",
                        preset=plan.preset if ":" not in m else None,
                        overrides=plan.method_overrides(m), evaluate_kwargs=kw, threads=threads,
                        num_gpus=res.get("num_gpus"), num_cpus=res.get("num_cpus"))
    return specs


def _work_folders(record: Path) -> list[Path]:
    """Work folders of the run whose record is ``record`` (any configuration)."""
    work = record.parent / ".work"
    if not work.is_dir():
        return []
    return sorted(p for p in work.iterdir() if p.is_dir() and p.name.startswith(record.stem + "-"))


def _reference_stored(spec) -> bool:
    """Whether a reference run's entry is in its references file."""
    try:
        data = json.loads(Path(spec.references).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False
    return any(isinstance(e, dict) and e.get("dataset") == spec.dataset
               for e in (data.get("references") or {}).values())


def run_state(spec) -> dict[str, Any]:
    """``{"state": "done" | "partial" | "todo", ...}`` of one run from its files (a reference
    run is done once its entry is stored in the study's references file too)."""
    rec = Path(spec.record)
    if rec.is_file() and (spec.kind != "reference" or _reference_stored(spec)):
        out = {"state": "done"}
        try:
            data = json.loads(rec.read_text(encoding="utf-8"))
            out["return"] = float(data["primary"]["mean_return"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return out
    for w in _work_folders(rec):
        info: dict[str, Any] = {"state": "partial", "work": str(w)}
        info["fit_done"] = (w / "fit_done.json").is_file()
        for pool in ("train", "novel"):
            try:
                info[f"eval_{pool}"] = len(json.loads((w / f"eval_{pool}.json").read_text()))
            except (OSError, ValueError):
                info[f"eval_{pool}"] = 0
        if info["fit_done"] or info["eval_train"]:
            return info
    return {"state": "todo"}


def study_status(plan: Plan, out: str | os.PathLike, specs=None) -> dict[str, Any]:
    """Done / partial / to-run runs of a study folder (also the references' validity)."""
    from dcsbench import scoring

    out = Path(out)
    specs = specs if specs is not None else plan_specs(plan, out)
    runs = []
    for s in specs:
        runs.append({"label": s.label, "kind": s.kind, "method": s.agent, "dataset": s.dataset,
                     "budget": s.budget, "seed": s.seed,
                     "record": os.path.relpath(s.record, out), **run_state(s)})
    refs = {}
    rf = references_file(out)
    if rf.is_file():
        for key, r in scoring.load_measured_references(rf).items():
            refs[key] = {"return": r.ret, "valid": r.valid, "demonstrator_return": r.demonstrator_return,
                         "fraction": r.fraction}
    counts = {k: sum(r["state"] == k for r in runs) for k in ("done", "partial", "todo")}
    return {"plan": plan.name, "n_runs": len(runs), **counts, "runs": runs, "references": refs}


def format_status(st: dict[str, Any]) -> str:
    """Human-readable done / remaining listing of :func:`study_status`."""
    lines = [f"{st['plan']}: {st['n_runs']} run(s): {st['done']} done, {st['partial']} partial "
             f"(resume from a checkpoint), {st['todo']} not started"]
    done = [r for r in st["runs"] if r["state"] == "done"]
    rest = [r for r in st["runs"] if r["state"] != "done"]
    if done:
        lines.append(f"done ({len(done)}):")
        lines += [f"  {r['label']}: return {r['return']:.1f}" if "return" in r else
                  f"  {r['label']}" for r in done]
    if rest:
        lines.append(f"remaining ({len(rest)}):")
        for r in rest:
            extra = ""
            if r["state"] == "partial":
                extra = (f" (partial: fit {'done' if r['fit_done'] else 'not done'}, "
                         f"{r['eval_train']} train + {r['eval_novel']} novel episodes)")
            lines.append(f"  {r['label']}{extra}")
    for key, ref in st["references"].items():
        if ref["fraction"] is None:
            lines.append(f"reference {key}: {ref['return']:.1f} ("
                         + ("demonstrators' return unknown)" if ref["valid"] else
                            "INVALID: no positive return to normalize by)"))
        else:
            lines.append(f"reference {key}: {ref['return']:.1f} = {ref['fraction']:.1%} of the "
                         f"demonstrators' {ref['demonstrator_return']:.1f}: "
                         + ("VALID" if ref["valid"] else
                            f"INVALID (< {scoring_min_fraction():.0%}: not a normalization "
                            f"reference)"))
    return "\n".join(lines)


def scoring_min_fraction() -> float:
    """The validity threshold of references (:data:`dcsbench.scoring.MIN_REFERENCE_FRACTION`)."""
    from dcsbench.scoring import MIN_REFERENCE_FRACTION

    return MIN_REFERENCE_FRACTION


def check_datasets(plan: Plan, root: str | None = None) -> None:
    """Every dataset of the plan is in the local cache (else one error naming the commands)."""
    from dcsbench.data.store import ensure_dataset

    missing = []
    for d in plan.datasets:
        try:
            ensure_dataset(d, root=root)
        except FileNotFoundError:
            missing.append(d)
    if missing:
        w = plan.build.get("workers", 1)
        raise FileNotFoundError("dataset(s) not built: " + ", ".join(missing) + "; build with "
                                + "; ".join(f"dcsbench build {d} --workers {w}" for d in missing))


@dataclass
class StudyResult:
    """Outcome of :func:`run_study`."""

    out: Path
    status: dict[str, Any]
    results: dict[str, str | None]
    seconds: float
    packed: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        """Runs that failed (not the ones the deadline cut)."""
        return {k: v for k, v in self.results.items()
                if v is not None and not v.startswith("deadline:")}


def run_study(plan: Plan, out: str | os.PathLike | None = None, max_minutes: float | None = None,
              executor: str | None = None, workers: int | None = None,
              threads: int | None = None, num_gpus: float | None = None,
              num_cpus: float | None = None, ray_address: str | None = None,
              root: str | None = None, pack_to: str | os.PathLike | None = None,
              resume_from: Iterable[str | os.PathLike] = (), verbose: bool = True,
              pack_max_files: int = MAX_FILES) -> StudyResult:
    """Run what is missing of ``plan`` within ``max_minutes`` and (optionally) pack the folder.

    Args:
        plan: from :func:`load_plan`.
        out: study folder (default :func:`study_dir`).
        max_minutes: wall-clock limit of this call, packing included (``None``: none). Runs
            are asked to stop :data:`RESERVE_S` + ``grace_s`` before it.
        executor, workers, threads, num_gpus, num_cpus, ray_address: override the plan's
            executor block (local: ``workers`` concurrent runs of ``threads`` torch threads;
            ray: ``num_gpus``/``num_cpus`` per run, fractions pack runs on one GPU).
        root: dataset cache root.
        pack_to: folder receiving :func:`pack`'s files after the run (at most
            ``pack_max_files``).
        resume_from: packed files (or folders of them) from an earlier call to restore first.
    """
    from dcsbench.sweep import run_sweep

    t0 = time.time()
    ex = dict(plan.executor)
    kind = executor or ex.get("kind", "local")
    grace_s = float(ex.get("grace_s", 20.0))
    if max_minutes is not None and 60.0 * float(max_minutes) <= RESERVE_S + grace_s:
        # refused before any work (no folder, no data check)
        raise ValueError(f"--max-minutes {max_minutes} leaves no time to run "
                         f"(>= {(RESERVE_S + grace_s) / 60:.1f} min are kept for "
                         f"stopping and packing)")
    out = study_dir(plan, out)
    out.mkdir(parents=True, exist_ok=True)
    for src in resume_from:
        restored = unpack(src, out)
        _log(f"restored {len(restored)} file(s) from {src}")
    specs = plan_specs(plan, out, root, threads)
    before = study_status(plan, out, specs)
    _log(f"before: {before['done']} done, {before['partial']} partial, {before['todo']} not "
         f"started ({kind} executor)")
    results: dict[str, str | None] = {}
    if before["done"] < before["n_runs"]:
        check_datasets(plan, root)
        for s in specs:  # a reference whose record exists but whose entry was not stored
            if s.kind == "reference" and Path(s.record).is_file() and not _reference_stored(s):
                from dcsbench.sweep import run_one

                _log(f"storing the reference of {s.dataset} from its record")
                run_one(s)
        deadline = None
        if max_minutes is not None:
            deadline = t0 + 60.0 * float(max_minutes) - RESERVE_S - grace_s
            if deadline <= time.time():  # the data checks above used up the budget
                raise ValueError(f"--max-minutes {max_minutes} left no time to run after the "
                                 f"data checks (>= {(RESERVE_S + grace_s) / 60:.1f} min are kept "
                                 f"for stopping and packing)")
        env_refs = os.environ.get("DCSBENCH_REFERENCES")
        os.environ["DCSBENCH_REFERENCES"] = str(references_file(out))  # the study's references
        try:
            results = run_sweep(
                specs, executor=kind, workers=int(workers or ex.get("workers", 1)),
                num_gpus=float(num_gpus if num_gpus is not None else ex.get("num_gpus", 0)),
                num_cpus=float(num_cpus if num_cpus is not None else ex.get("num_cpus", 1)),
                ray_address=ray_address or ex.get("ray_address"), verbose=verbose,
                deadline=deadline, min_start_s=60.0 * plan.min_start_minutes, grace_s=grace_s)
        finally:
            if env_refs is None:
                os.environ.pop("DCSBENCH_REFERENCES", None)
            else:
                os.environ["DCSBENCH_REFERENCES"] = env_refs
    st = study_status(plan, out, specs)
    st["seconds"] = round(time.time() - t0, 1)
    st["failed"] = {os.path.relpath(k, out): v for k, v in results.items()
                    if v is not None and not v.startswith("deadline:")}
    atomic_write_text(out / "status.json", json.dumps(st, indent=2) + "\n")
    res = StudyResult(out=out, status=st, results=results, seconds=time.time() - t0)
    if pack_to is not None:
        res.packed = pack(out, pack_to, max_files=pack_max_files)
    return res
