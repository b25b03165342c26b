"""Sweeps: methods x datasets x budgets x seeds, one :func:`dcsbench.protocol.evaluate` each.

Executors (none of them is a scheduler of ours; each run is an independent job):

* ``local`` (default): :class:`concurrent.futures.ProcessPoolExecutor` with ``workers``
  processes, a fresh ("spawn") process per run so GPU/thread state never leaks between runs.
* ``ray``: every run is a ``ray.remote`` task (``num_gpus``/``num_cpus`` per run) on the Ray
  cluster found by ``ray.init(address=...)`` (or a local one).
* ``submitit``: every run is a SLURM job array element (submitit's ``AutoExecutor``).

Records go to ``out/{method}/{dataset}__b{budget}__s{seed}.json``; a sweep skips runs whose
record exists, so re-running a sweep after a crash or a preemption only runs what is missing
(each run also resumes from its own checkpoint, see :mod:`dcsbench.protocol`).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dcsbench import registry

#: Executors known to :func:`run_sweep`.
EXECUTORS = ("local", "ray", "submitit")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep (picklable; sent to worker processes / cluster jobs).

    Attributes:
        agent: baseline name (``bc``, ``laom``, ...) or ``MODULE:CLASS``.
        dataset, budget, seed: the cell.
        record: where the record is written.
        preset, config_file, overrides: agent configuration (see
            :func:`dcsbench.protocol.make_agent`).
        evaluate_kwargs: extra keyword arguments of :func:`dcsbench.protocol.evaluate`.
        threads: ``torch.set_num_threads`` in the worker (``None``: torch's default).
    """

    agent: str
    dataset: str
    budget: int
    seed: int
    record: str
    preset: str | None = None
    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    evaluate_kwargs: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None

    @property
    def label(self) -> str:
        """Short human-readable id of the run."""
        return f"{self.agent} {self.dataset} b={self.budget} s={self.seed}"


def method_label(agent: str) -> str:
    """Folder name of a method in a sweep: the baseline name, or the class name of MODULE:CLASS."""
    return agent.rpartition(":")[2] if ":" in agent else agent


def expand(methods: Sequence[str], datasets: Sequence[str], budgets: Sequence[int],
           seeds: Sequence[int], out: str | os.PathLike, **common: Any) -> list[RunSpec]:
    """The cartesian product as :class:`RunSpec` s (names validated before anything runs).

    ``common`` are :class:`RunSpec` fields shared by every run (preset, overrides, ...).
    """
    for d in datasets:
        tier = registry.parse_dataset_name(d).tier_spec
        bad = [b for b in budgets if b not in tier.budgets]
        if bad:
            raise ValueError(f"budget(s) {bad} not offered by {d} (budgets: {list(tier.budgets)})")
    out = Path(out)
    specs = []
    for m, d, b, s in itertools.product(methods, datasets, budgets, seeds):
        rec = out / method_label(m) / f"{d}__b{b}__s{s}.json"
        specs.append(RunSpec(agent=m, dataset=d, budget=int(b), seed=int(s), record=str(rec),
                             **common))
    return specs


def run_one(spec: RunSpec) -> str:
    """Execute one run (in whatever process the executor chose); returns the record path."""
    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    from dcsbench.protocol import evaluate, make_agent

    agent = make_agent(spec.agent, spec.config_file, list(spec.overrides), spec.preset)
    kwargs = {"progress": False, **spec.evaluate_kwargs}
    evaluate(agent, spec.dataset, spec.budget, spec.seed, out=spec.record, **kwargs)
    return spec.record


def _missing(name: str, extra: str) -> RuntimeError:
    return RuntimeError(f"the {name!r} executor needs the {name} package: "
                        f"pip install {name}  (or: pip install 'dcsbench[{extra}]')")


def _run_local(specs, workers: int, log) -> dict[str, str | None]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    errors: dict[str, str | None] = {}
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as ex:
        futures = {ex.submit(run_one, s): s for s in specs}
        for fut in as_completed(futures):
            s = futures[fut]
            try:
                fut.result()
                errors[s.record] = None
                log(f"done  {s.label} -> {s.record}")
            except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep
                errors[s.record] = "".join(traceback.format_exception_only(type(err), err)).strip()
                log(f"FAIL  {s.label}: {errors[s.record]}")
    return errors


def _remote_outcome(wait, spec, log) -> str | None:
    """Wait for one remote run (Ray task or submitit job) and log it; ``None`` or the last line
    of its error (remote tracebacks are long; the record folder has the details)."""
    try:
        wait()
    except Exception as err:  # noqa: BLE001
        text = str(err).strip()
        msg = text.splitlines()[-1] if text else repr(err)
        log(f"FAIL  {spec.label}: {msg}")
        return msg
    log(f"done  {spec.label}")
    return None


def _run_ray(specs, num_gpus: float, num_cpus: float, address: str | None, log):
    try:
        import ray
    except ImportError:
        raise _missing("ray", "sweep") from None
    if not ray.is_initialized():
        ray.init(address=address)
    task = ray.remote(num_gpus=num_gpus, num_cpus=num_cpus, max_retries=0)(run_one)
    pending = {task.remote(s): s for s in specs}
    errors: dict[str, str | None] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        s = pending.pop(ready[0])
        errors[s.record] = _remote_outcome(lambda: ray.get(ready[0]), s, log)
    return errors


def _run_submitit(specs, folder: str, slurm: dict[str, Any], cluster: str | None, log):
    try:
        import submitit
    except ImportError:
        raise _missing("submitit", "sweep") from None
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**slurm)
    jobs = executor.map_array(run_one, specs)
    log(f"submitted {len(jobs)} job(s) (array {jobs[0].job_id.split('_')[0] if jobs else '-'}); "
        f"logs in {folder}")
    errors: dict[str, str | None] = {}
    for job, s in zip(jobs, specs):
        errors[s.record] = _remote_outcome(job.result, s, log)
    return errors


def run_sweep(specs: Sequence[RunSpec], executor: str = "local", workers: int = 1,
              num_gpus: float = 0, num_cpus: float = 1, ray_address: str | None = None,
              submitit_folder: str = "submitit_logs", slurm: dict[str, Any] | None = None,
              submitit_cluster: str | None = None, verbose: bool = True) -> dict[str, str | None]:
    """Run every spec whose record does not exist yet; returns ``{record: error or None}``.

    Args:
        specs: from :func:`expand`.
        executor: ``local`` | ``ray`` | ``submitit``.
        workers: concurrent processes (local).
        num_gpus, num_cpus: resources per run (ray).
        ray_address: Ray cluster address (``None``: start/attach a local Ray).
        submitit_folder, slurm: submitit log folder and ``update_parameters`` options
            (e.g. ``{"slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 600}``).
        submitit_cluster: ``None`` (SLURM if available, else local processes), ``"slurm"``,
            ``"local"`` or ``"debug"`` (in this process; for testing a setup).
    """
    registry.check_choice("executor", executor, EXECUTORS)
    log = (lambda msg: print(f"[sweep] {msg}", file=sys.stderr, flush=True)) if verbose else (lambda m: None)
    todo = [s for s in specs if not Path(s.record).exists()]
    skipped = len(specs) - len(todo)
    log(f"{len(specs)} run(s): {skipped} already have a record, {len(todo)} to run "
        f"({executor} executor)")
    results: dict[str, str | None] = {s.record: None for s in specs if s not in todo}
    if not todo:
        return results
    t0 = time.perf_counter()
    if executor == "local":
        results.update(_run_local(todo, max(1, workers), log))
    elif executor == "ray":
        results.update(_run_ray(todo, num_gpus, num_cpus, ray_address, log))
    else:
        results.update(_run_submitit(todo, submitit_folder, slurm or {}, submitit_cluster, log))
    failed = sum(e is not None for e in results.values())
    log(f"finished in {time.perf_counter() - t0:.0f} s: {len(todo) - failed} ran, "
        f"{failed} failed, {skipped} skipped")
    return results


def specs_as_dicts(specs: Sequence[RunSpec]) -> list[dict[str, Any]]:
    """Plain dicts of specs (for ``--dry-run`` listings)."""
    return [asdict(s) for s in specs]
