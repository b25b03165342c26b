"""Sweeps: methods x datasets x budgets x seeds, one :func:`dcsbench.protocol.evaluate` each.

Executors (none of them is a scheduler of ours; each run is an independent job):

* ``local`` (default): :class:`concurrent.futures.ProcessPoolExecutor` with ``workers``
  processes, a fresh ("spawn") process per run so GPU/thread state never leaks between runs.
* ``ray``: every run is a ``ray.remote`` task (``num_gpus``/``num_cpus`` per run) on the Ray
  cluster found by ``ray.init(address=...)`` (or a local one).
* ``submitit``: every run is a SLURM job array element (submitit's ``AutoExecutor``).

Records go to ``out/{method}/{dataset}__b{budget}__s{seed}.json`` (:func:`dcsbench.naming.record_name`
without method and source); a sweep skips runs whose record exists, so re-running a sweep after a
crash or a preemption only runs what is missing (each run also resumes from its own checkpoint,
see :mod:`dcsbench.protocol`).

Deadlines (``run_sweep(..., deadline=EPOCH_S)``, used by :mod:`dcsbench.study`): a run that has
not started ``min_start_s`` before the deadline is not started (:data:`NOT_STARTED`); a run in
flight at the deadline is stopped (:data:`INTERRUPTED`): the run's own process raises
:class:`DeadlineReached` in its main thread (so the agent process and shared memory are closed
cleanly), and ``grace_s`` later the executor kills what is left (local: the worker's process
group; Ray: ``ray.cancel(force=True)``). Its work folder (checkpoint after fit, finished
evaluation waves) stays, so the next sweep resumes it.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dcsbench import catalogue
from dcsbench.naming import record_name

#: Executors known to :func:`run_sweep`.
EXECUTORS = ("local", "ray", "submitit")

#: Outcome of a run the deadline kept from starting (left for the next sweep).
NOT_STARTED = "deadline: not started"

#: Outcome of a run stopped in flight by the deadline (it resumes from its work folder).
INTERRUPTED = "deadline: interrupted in flight"


class DeadlineReached(Exception):
    """Raised in a run's process when the sweep's deadline passes (or before it starts)."""


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
        kind: ``"run"`` (a protocol run) or ``"reference"`` (BC on every train trajectory,
            stored in ``references`` by :func:`dcsbench.commands.runs.measure_reference`;
            ``budget`` is then ``"all"``).
        references: references file a ``reference`` run updates.
        num_gpus, num_cpus: this run's resources on Ray (``None``: the sweep's).
        deadline: wall-clock time (``time.time()``) by which the run must stop (``None``: none).
        min_start_s: do not start the run with less than this left before ``deadline``.
        grace_s: seconds between asking an in-flight run to stop and killing it.
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
    kind: str = "run"
    references: str | None = None
    num_gpus: float | None = None
    num_cpus: float | None = None
    deadline: float | None = None
    min_start_s: float = 0.0
    grace_s: float = 20.0

    @property
    def label(self) -> str:
        """Short human-readable id of the run."""
        what = "reference " if self.kind == "reference" else ""
        return f"{what}{self.agent} {self.dataset} b={self.budget} s={self.seed}"


def method_label(agent: str) -> str:
    """Folder name of a method in a sweep: the baseline name, or the class name of MODULE:CLASS."""
    return agent.rpartition(":")[2] if ":" in agent else agent


def expand(methods: Sequence[str], datasets: Sequence[str], budgets: Sequence[int],
           seeds: Sequence[int], out: str | os.PathLike, **common: Any) -> list[RunSpec]:
    """The cartesian product as :class:`RunSpec` s (names validated before anything runs).

    ``common`` are :class:`RunSpec` fields shared by every run (preset, overrides, ...).
    """
    for d in datasets:
        tier = catalogue.parse_dataset_name(d).tier_spec
        bad = [b for b in budgets if b not in tier.budgets]
        if bad:
            raise ValueError(f"budget(s) {bad} not offered by {d} (budgets: {list(tier.budgets)})")
    out = Path(out)
    specs = []
    for m, d, b, s in itertools.product(methods, datasets, budgets, seeds):
        rec = out / method_label(m) / record_name(None, d, None, b, s)
        specs.append(RunSpec(agent=m, dataset=d, budget=int(b), seed=int(s), record=str(rec),
                             **common))
    return specs


def _raise_deadline(signum, frame):  # noqa: ARG001 - signal handler signature
    raise DeadlineReached("the sweep's deadline passed while this run was in flight")


class _DeadlineGuard:
    """Stops the current run at ``spec.deadline``: SIGTERM to this process (raising
    :class:`DeadlineReached` in the main thread, so ``with`` blocks close the agent process),
    then, ``grace_s`` later, SIGKILL to this process group when the process leads its own group.

    ``own_group`` makes the process a group leader first (executor worker processes only: the
    group then holds the run's agent process and environment workers too).
    """

    def __init__(self, spec: RunSpec, own_group: bool) -> None:
        self.spec, self.own_group = spec, own_group
        self.timers: list[threading.Timer] = []
        self.old_handler = None

    def __enter__(self):
        left = self.spec.deadline - time.time()
        if left < max(self.spec.min_start_s, 0.0):
            raise DeadlineReached(NOT_STARTED)
        if threading.current_thread() is not threading.main_thread():
            return self  # no signals outside the main thread: the executor's backstop applies
        if self.own_group and hasattr(os, "setpgid"):
            try:
                os.setpgid(0, 0)
            except OSError:
                self.own_group = False
        self.old_handler = signal.signal(signal.SIGTERM, _raise_deadline)
        pid = os.getpid()
        self.timers.append(threading.Timer(left, os.kill, (pid, signal.SIGTERM)))
        if self.own_group:
            self.timers.append(threading.Timer(left + self.spec.grace_s, _kill_group, (pid,)))
        for t in self.timers:
            t.daemon = True
            t.start()
        return self

    def __exit__(self, *exc):
        for t in self.timers:
            t.cancel()
        if self.old_handler is not None:
            signal.signal(signal.SIGTERM, self.old_handler)
        return False


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group (ignoring one that is gone)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_one(spec: RunSpec, own_group: bool = False) -> str:
    """Execute one run (in whatever process the executor chose); returns the record path.

    With ``spec.deadline`` set the run is guarded (:class:`_DeadlineGuard`): not started too
    close to the deadline, stopped at it (its work folder stays for the next sweep).
    ``own_group``: this process may become a process-group leader (executor workers only).
    """
    if spec.deadline is None:
        return _run_spec(spec)
    with _DeadlineGuard(spec, own_group):
        return _run_spec(spec)


def run_one_in_worker(spec: RunSpec) -> str:
    """:func:`run_one` in a worker process of the local or Ray executor (its own process group)."""
    return run_one(spec, own_group=True)


def _run_spec(spec: RunSpec) -> str:
    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    kwargs = {"progress": False, **spec.evaluate_kwargs}
    if spec.kind == "reference":
        from dcsbench.commands.runs import measure_reference

        measure_reference(spec.dataset, spec.preset or "paper", spec.config_file,
                          list(spec.overrides), spec.seed, out=spec.record,
                          references=spec.references, **kwargs)
        return spec.record
    catalogue.check_choice("run kind", spec.kind, ("run", "reference"))
    from dcsbench.protocol import evaluate, make_agent

    agent = make_agent(spec.agent, spec.config_file, list(spec.overrides), spec.preset)
    evaluate(agent, spec.dataset, spec.budget, spec.seed, out=spec.record, **kwargs)
    return spec.record


def _missing(name: str, extra: str) -> RuntimeError:
    return RuntimeError(f"the {name!r} executor needs the {name} package: "
                        f"pip install {name}  (or: pip install 'dcsbench[{extra}]')")


def _outcome_of(err: BaseException) -> str:
    """The result string of a failed run (:data:`NOT_STARTED` / :data:`INTERRUPTED` for the
    deadline's, else the exception's last line)."""
    if isinstance(err, DeadlineReached):
        return NOT_STARTED if str(err) == NOT_STARTED else INTERRUPTED
    return "".join(traceback.format_exception_only(type(err), err)).strip()


def _log_outcome(log, spec: RunSpec, outcome: str | None) -> None:
    if outcome is None:
        log(f"done  {spec.label} -> {spec.record}")
    elif outcome.startswith("deadline:"):
        log(f"STOP  {spec.label}: {outcome}")
    else:
        log(f"FAIL  {spec.label}: {outcome}")


def _run_local(specs, workers: int, log, deadline: float | None = None,
               grace_s: float = 20.0) -> dict[str, str | None]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, TimeoutError as FutTimeout, as_completed

    errors: dict[str, str | None] = {}
    ctx = mp.get_context("spawn")
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1)
    fn = run_one_in_worker if deadline is not None else run_one
    futures = {ex.submit(fn, s): s for s in specs}
    timeout = None if deadline is None else max(0.0, deadline + grace_s + 10.0 - time.time())
    try:
        for fut in as_completed(futures, timeout=timeout):
            s = futures[fut]
            try:
                fut.result()
                errors[s.record] = None
            except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep
                errors[s.record] = _outcome_of(err)
                if deadline is not None and time.time() >= deadline and \
                        type(err).__name__ == "BrokenProcessPool":
                    errors[s.record] = INTERRUPTED  # a worker killed at the deadline
            _log_outcome(log, s, errors[s.record])
    except FutTimeout:
        pass  # runs that ignored the deadline: killed below
    finally:
        left = [s for f, s in futures.items() if s.record not in errors]
        if left:  # the deadline's backstop (or an interrupted sweep): end every worker
            for proc in list(getattr(ex, "_processes", {}).values()):
                _kill_group(proc.pid)
                try:
                    proc.kill()
                except Exception:  # noqa: BLE001
                    pass
        ex.shutdown(wait=not left, cancel_futures=True)
    for f, s in futures.items():
        if s.record not in errors:
            started = f.running() or (f.done() and not f.cancelled())
            errors[s.record] = INTERRUPTED if started else NOT_STARTED
            _log_outcome(log, s, errors[s.record])
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


def _run_ray(specs, num_gpus: float, num_cpus: float, address: str | None, log,
             deadline: float | None = None, grace_s: float = 20.0):
    """Each spec a ``ray.remote`` task; per-spec ``num_gpus``/``num_cpus`` (fractions pack
    several runs on one GPU). With a deadline, each task runs in a fresh worker process
    (``max_calls=1``) that stops itself at the deadline; tasks still there ``grace_s`` later
    are cancelled with ``force=True``."""
    try:
        import ray
    except ImportError:
        raise _missing("ray", "sweep") from None
    if not ray.is_initialized():
        ray.init(address=address)
    if deadline is None:
        task = ray.remote(num_gpus=num_gpus, num_cpus=num_cpus, max_retries=0)(run_one)
    else:  # a fresh worker process per run: it may take its own process group and be killed
        task = ray.remote(num_gpus=num_gpus, num_cpus=num_cpus, max_retries=0,
                          max_calls=1)(run_one_in_worker)
    pending = {}
    for s in specs:
        opts = {k: v for k, v in (("num_gpus", s.num_gpus), ("num_cpus", s.num_cpus))
                if v is not None}
        pending[(task.options(**opts) if opts else task).remote(s)] = s
    errors: dict[str, str | None] = {}
    cancelled = False
    while pending:
        if deadline is None:
            ready, _ = ray.wait(list(pending), num_returns=1)
        else:
            wait_s = max(0.0, deadline + grace_s - time.time())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s if not cancelled else 30.0)
            if not ready:
                if cancelled:
                    break
                for ref in pending:  # the backstop: runs still in flight well past the deadline
                    ray.cancel(ref, force=True)
                cancelled = True
                continue
        s = pending.pop(ready[0])
        errors[s.record] = _ray_outcome(ray, ready[0], s, log, deadline)
    for s in pending.values():
        errors[s.record] = INTERRUPTED
        _log_outcome(log, s, INTERRUPTED)
    return errors


def _ray_outcome(ray, ref, spec: RunSpec, log, deadline: float | None) -> str | None:
    """The outcome of one finished Ray task (the deadline's outcomes recognised)."""
    try:
        ray.get(ref)
        outcome = None
    except Exception as err:  # noqa: BLE001
        cause = getattr(err, "cause", None)
        text = str(err)
        if isinstance(cause, DeadlineReached) or "DeadlineReached" in text:
            outcome = NOT_STARTED if NOT_STARTED in text else INTERRUPTED
        elif deadline is not None and time.time() >= deadline:
            outcome = INTERRUPTED  # killed or cancelled at the deadline
        else:
            text = text.strip()
            outcome = text.splitlines()[-1] if text else repr(err)
    _log_outcome(log, spec, outcome)
    return outcome


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
              submitit_cluster: str | None = None, verbose: bool = True,
              deadline: float | None = None, min_start_s: float = 0.0,
              grace_s: float = 20.0) -> dict[str, str | None]:
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
        deadline: ``time.time()`` by which every run must have stopped (``None``: no limit);
            outcomes :data:`NOT_STARTED` and :data:`INTERRUPTED` mark the runs it cut (local
            and Ray executors; submitit jobs get the deadline in their spec only).
        min_start_s: a run is not started with less than this left before ``deadline``.
        grace_s: seconds from the deadline to killing runs that did not stop.
    """
    catalogue.check_choice("executor", executor, EXECUTORS)
    log = (lambda msg: print(f"[sweep] {msg}", file=sys.stderr, flush=True)) if verbose else (lambda m: None)
    todo = [s for s in specs if not Path(s.record).exists()]
    if deadline is not None:
        from dataclasses import replace

        todo = [replace(s, deadline=deadline, min_start_s=min_start_s, grace_s=grace_s)
                for s in todo]
    skipped = len(specs) - len(todo)
    log(f"{len(specs)} run(s): {skipped} already have a record, {len(todo)} to run "
        f"({executor} executor)")
    todo_records = {s.record for s in todo}
    results: dict[str, str | None] = {s.record: None for s in specs
                                      if s.record not in todo_records}
    if not todo:
        return results
    t0 = time.perf_counter()
    if executor == "local":
        results.update(_run_local(todo, max(1, workers), log, deadline, grace_s))
    elif executor == "ray":
        results.update(_run_ray(todo, num_gpus, num_cpus, ray_address, log, deadline, grace_s))
    else:
        results.update(_run_submitit(todo, submitit_folder, slurm or {}, submitit_cluster, log))
    cut = sum(e is not None and e.startswith("deadline:") for e in results.values())
    failed = sum(e is not None for e in results.values()) - cut
    log(f"finished in {time.perf_counter() - t0:.0f} s: {len(todo) - failed - cut} ran, "
        f"{failed} failed, {cut} stopped by the deadline, {skipped} skipped")
    return results


def specs_as_dicts(specs: Sequence[RunSpec]) -> list[dict[str, Any]]:
    """Plain dicts of specs (for ``--dry-run`` listings)."""
    return [asdict(s) for s in specs]
