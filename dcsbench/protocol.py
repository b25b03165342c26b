"""The protocol runner: one (method, dataset, budget, seed) -> one result record of facts.

:func:`evaluate` is what ``dcsbench run`` and ``dcsbench sweep`` call::

    from dcsbench import evaluate
    record = evaluate(MyAgent(lr=3e-4), "cheetah-run-distractors-tiny", budget=2, seed=0,
                      out="runs/")

It is a short sequence of named steps (wall time of each in ``record.stage_seconds``):

1. ``check``: the agent's name and version, the budget, seed and episode settings are validated
   before any work, and an existing record is compared with this run's fingerprint (same run:
   it is returned; a different one: :class:`RecordExistsError` names what differs).
2. ``prepare``: :func:`dcsbench.data.prepare` checks and opens the data (the record's hashes
   are computed from what was read).
3. ``fit``: the agent runs in its own process (:class:`dcsbench.isolation.AgentProcess`): it
   gets the unlabeled and labeled views through shared memory and nothing else; it is seeded
   there from ``seed``.
4. ``probe`` (only for agents with ``latent_actions``): :func:`dcsbench.probe.probe_report`,
   fitted by the harness on all train trajectories' actions (``probe_mse_train`` on held-out
   trajectories, ``probe_mse_novel`` on the eval split, constant-predictor and
   random-features baselines beside them).
5. ``eval_primary`` / ``eval_generalization``: online evaluation in the parent with the
   dataset's setting and train / novel backgrounds; the worker only maps observations to
   actions.

The record holds facts only (raw returns, hashes, configuration, probe metrics): normalized
scores are computed downstream by :mod:`dcsbench.scoring` from the returns and the references.

Checkpoint / resume: with ``out`` given, progress lives in a hidden work folder next to the
record (``.work/<run id>/``). If the agent implements ``save``/``load`` it is checkpointed after
``fit`` (the agent writes into a fresh temporary folder; the harness moves it); finished
evaluation waves are saved as they complete. A killed run started again with the same
arguments resumes from there; a changed configuration restarts cleanly. The record is written
atomically at the very end, so a killed run never leaves a partial record.

Runs with non-protocol settings (fewer or shorter episodes, no generalization evaluation, a
non-protocol dataset, the agent run in the harness's own process) are recorded with
``protocol_compliant=False``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dcsbench import __version__, catalogue
from dcsbench.agent import Agent
from dcsbench.fileio import atomic_write_text
from dcsbench.naming import record_name
from dcsbench.results import RECORD_VERSION, ResultRecord, load_record, parse_record, save_record
from dcsbench.runinfo import git_commit, hardware_info, json_safe, seed_everything

__all__ = ["evaluate", "record_path", "RecordExistsError", "make_agent", "import_agent_class",
           "load_config_file", "parse_overrides", "seed_everything", "git_commit",
           "hardware_info", "json_safe", "WORK_DIR"]

#: Name of the hidden folder (next to records) holding checkpoints of unfinished runs.
WORK_DIR = ".work"

#: Method names and versions: what a record accepts, checked before any work (no path from them
#: can leave ``out``).
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,63}$")


class RecordExistsError(FileExistsError):
    """A record of a *different* run exists at the path this run would write."""


def record_path(out: str | os.PathLike, method: str, dataset: str, source: str, budget: int,
                seed: int) -> Path:
    """Where a run's record goes: ``out`` itself if it ends in ``.json``, else a file in it
    named :func:`dcsbench.naming.record_name` of every part
    (``{method}__{dataset}__{source}__b{budget}__s{seed}.json``).

    ``method`` must be a valid method name (letters, digits, ``._+-``, no path separators)."""
    if not _NAME_RE.match(str(method)) or ".." in str(method):
        raise ValueError(f"{method!r} is not a valid method name (letters, digits and "
                         "'._+-', at most 64 characters, starting with a letter or digit)")
    out = Path(out)
    if out.suffix == ".json":
        return out
    return out / record_name(method, dataset, source, budget, seed)


def _supports(agent: Agent, hook: str) -> bool:
    return getattr(type(agent), hook) is not getattr(Agent, hook)


class ProgressLogger:
    """The :class:`~dcsbench.agent.Logger` given to ``fit``: a tqdm bar (step count, latest
    metrics) plus a JSON-lines history file when a work folder exists."""

    def __init__(self, path: Path | None, progress: bool, desc: str = "fit") -> None:
        from tqdm.auto import tqdm

        self.path = path
        self.bar = tqdm(desc=desc, unit="step", disable=not progress, dynamic_ncols=True,
                        leave=False)
        self.step = 0
        self.last: dict[str, float] = {}

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Record scalars; ``step`` (if given) advances the progress bar to it."""
        clean = {str(k): float(v) for k, v in metrics.items()}
        self.last.update(clean)
        if step is not None and step > self.step:
            self.bar.update(step - self.step)
            self.step = step
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in list(clean.items())[:4]}, refresh=False)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, **clean}) + "\n")

    def close(self) -> None:
        """Close the progress bar."""
        self.bar.close()


def _say(msg: str, verbose: bool) -> None:
    if verbose:
        print(f"[dcsbench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- step 1: check


def _check_args(agent: Agent, seed: int, n_episodes: int) -> tuple[str, str]:
    """Validate what a run is named by before any work; returns ``(name, version)``."""
    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be a dcsbench.agent.Agent, got {type(agent).__name__}")
    name, version = getattr(agent, "name", None), getattr(agent, "version", None)
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise ValueError(f"{type(agent).__name__}.name = {name!r} is not a valid method name "
                         "(letters, digits and '._+-', at most 64 characters, starting with a "
                         "letter or digit)")
    if not isinstance(version, (str, int)) or isinstance(version, bool) or \
            len(str(version)) > 64 or not str(version).isprintable():
        raise ValueError(f"{type(agent).__name__}.version = {version!r} must be a printable "
                         "string of at most 64 characters")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not 1 <= n_episodes <= len(catalogue.EVAL_EPISODE_SEEDS):
        raise ValueError(f"n_episodes must be in 1..{len(catalogue.EVAL_EPISODE_SEEDS)}")
    return name, str(version)


def _fingerprint(*, method: str, version: str, config: dict, content_hash: str,
                 labeled_hash: str, budget: int, seed: int, seeds: list[int],
                 episode_length: int, generalization: bool) -> dict:
    """What makes two runs the same run (compared with an existing record before rerunning)."""
    return {"method": method, "version": version, "config": config, "dataset": content_hash,
            "labeled": labeled_hash, "budget": int(budget), "seed": int(seed),
            "seeds": [int(s) for s in seeds], "episode_length": int(episode_length),
            "generalization": bool(generalization),
            "protocol_version": catalogue.PROTOCOL_VERSION, "record_version": RECORD_VERSION}


def _record_fingerprint(rec: ResultRecord) -> dict:
    return _fingerprint(method=rec.method.name, version=rec.method.version,
                        config=rec.method.config, content_hash=rec.dataset.content_hash,
                        labeled_hash=rec.dataset.labeled_subset_hash, budget=rec.budget,
                        seed=rec.seed, seeds=rec.primary.episode_seeds,
                        episode_length=rec.episode_length,
                        generalization=rec.generalization is not None) | {
        "protocol_version": rec.protocol_version, "record_version": rec.record_version}


def _existing(path: Path, fingerprint: dict) -> ResultRecord | None:
    """The existing record if it is this very run; raise if it is another one."""
    rec = load_record(path)
    old = _record_fingerprint(rec)
    diff = sorted(k for k in fingerprint if old.get(k) != fingerprint[k])
    if diff:
        detail = "; ".join(f"{k}: record {old.get(k)!r} vs now {fingerprint[k]!r}"
                           for k in diff)[:2000]
        raise RecordExistsError(f"{path} holds a different run ({detail}). Pass overwrite=True "
                                "(--overwrite) to replace it, or write to another --out")
    return rec


# --------------------------------------------------------------------------- steps 3-5


class _Work:
    """The hidden work folder of one run (checkpoint, finished waves, fingerprint)."""

    def __init__(self, path: Path | None, fingerprint: dict) -> None:
        self.path = path
        if path is None:
            return
        fp_file = path / "fingerprint.json"
        if path.exists():
            try:
                old = json.loads(fp_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if old != fingerprint:
                shutil.rmtree(path)  # different run configuration: restart cleanly
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(fp_file, json.dumps(fingerprint, sort_keys=True))

    def read(self, name: str) -> Any:
        """A JSON file of the work folder, or ``None``."""
        if self.path is None or not (self.path / name).exists():
            return None
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    def write(self, name: str, obj: Any) -> None:
        """Write a JSON file of the work folder atomically."""
        if self.path is not None:
            atomic_write_text(self.path / name, json.dumps(obj))

    def remove(self) -> None:
        """Delete the work folder (and ``.work/`` when it is empty)."""
        if self.path is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass


def _fit(runner, agent: Agent, work: _Work, spec, budget: int, seed: int, progress: bool,
         verbose: bool) -> float:
    """Fit (or restore the checkpoint of a killed run); returns the fit's wall seconds."""
    ckpt = work.path / "checkpoint" if work.path else None
    fit_done = work.read("fit_done.json")
    if fit_done and ckpt is not None and ckpt.exists() and _supports(agent, "load"):
        runner.load(ckpt)
        _say(f"fit: resumed from checkpoint {ckpt}", verbose)
        return float(fit_done["seconds"])
    logger = ProgressLogger(work.path / "fit_log.jsonl" if work.path else None, progress,
                            desc=f"fit {agent.name}")
    try:
        seconds = runner.fit(spec, budget, seed, logger)
    finally:
        logger.close()
    if ckpt is not None and _supports(agent, "save"):
        runner.save(ckpt)
    work.write("fit_done.json", {"seconds": seconds})
    _say(f"fit: {seconds:.1f} s", verbose)
    return seconds


def _probe(runner, agent: Agent, pdata, seed: int) -> dict[str, float]:
    """The harness's probe metrics (``{}`` if the agent has no latent actions)."""
    from dcsbench.probe import probe_report

    if not _supports(agent, "latent_actions"):
        return {}
    train = pdata.train_labeled
    first = train.stacks_at([0], [0])
    if runner.latent_actions(first["obs"], first["next_obs"]) is None:
        return {}
    def untrained_latents(obs, nxt):
        return runner.latent_actions(obs, nxt, random=True)

    random_fn = None
    if _supports(agent, "init_untrained") and runner.init_untrained(pdata.spec, seed):
        random_fn = untrained_latents
    try:
        return probe_report(runner.latent_actions, train, pdata.eval_split, random_fn)
    finally:
        if random_fn is not None:
            runner.drop_untrained()


def _eval_pool(act_fn, work: _Work, pool: str, *, task, setting, source, seeds, num_envs,
               episode_length, vector_mode, davis_dir, progress, env_pool=None) -> list[float]:
    """Evaluate one background pool, resuming from the waves saved in ``work``."""
    from dcsbench.rollouts import run_episodes

    name = f"eval_{pool}.json"
    done = {int(k): float(v) for k, v in (work.read(name) or {}).items()}
    todo = [s for s in seeds if s not in done]
    if todo:
        def on_wave(wave_seeds, wave_returns):
            done.update(zip(wave_seeds, wave_returns))
            work.write(name, {str(k): v for k, v in done.items()})

        run_episodes(act_fn, task, setting, source, pool, seeds=todo, num_envs=num_envs,
                        episode_length=episode_length, mode=vector_mode, davis_dir=davis_dir,
                        progress=progress, desc=f"eval {pool} backgrounds", on_wave=on_wave,
                        env_pool=env_pool)
    return [done[s] for s in seeds]


@contextmanager
def _env_pool(env_kw: dict, generalization: bool):
    """The :class:`~dcsbench.envs.workers.EnvWorkers` both pools share when the vector mode
    resolves to ``workers`` (``None`` otherwise); closed at the end."""
    from dcsbench.rollouts import resolve_mode

    n = len(env_kw["seeds"]) * (2 if generalization else 1)
    wave = min(env_kw["num_envs"], len(env_kw["seeds"]))
    if resolve_mode(env_kw["vector_mode"], wave, n * env_kw["episode_length"]) != "workers":
        yield None
        return
    from dcsbench.envs.workers import EnvWorkers

    with EnvWorkers(env_kw["task"], env_kw["setting"], "train", env_kw["source"], capacity=wave,
                    davis_dir=env_kw["davis_dir"],
                    episode_length=env_kw["episode_length"]) as pool:
        yield pool


def _eval_result(pool: str, seeds, returns) -> dict:
    return {"backgrounds": pool, "episode_seeds": list(seeds), "returns": list(returns),
            "mean_return": float(np.mean(returns))}


# --------------------------------------------------------------------------- the runner


def evaluate(agent: Agent, dataset: str, budget: int | str, seed: int,
             out: str | os.PathLike | None = None, n_episodes: int = catalogue.EVAL_EPISODES, *,
             episode_length: int | None = None, num_envs: int = 5, vector_mode: str = "auto",
             generalization: bool = True, root: str | os.PathLike | None = None,
             davis_dir: str | os.PathLike | None = None, probe: bool = True,
             progress: bool = True, verbose: bool = True, overwrite: bool = False,
             keep_checkpoint: bool = False, isolate: bool = True,
             call_timeout_s: float = 300.0, fit_timeout_s: float | None = None,
             torch_threads: int | None = None) -> ResultRecord:
    """Run the protocol for one (agent, dataset, budget, seed) and return its result record.

    Args:
        agent: a fresh, unfitted :class:`~dcsbench.agent.Agent` (its class must be importable:
            it is pickled into the worker process).
        dataset: dataset name, e.g. ``"cheetah-run-distractors-tiny"`` (built or downloaded).
        budget: number of labeled trajectories (one of the tier's budgets), or ``"all"``
            (every train trajectory labeled: reference measurement only).
        seed: run seed (official results: 0, 1, 2).
        out: folder (or ``.json`` file) for the record; ``None`` returns it without writing
            (and without checkpoints).
        n_episodes: evaluation episodes per background pool (protocol: 25).
        episode_length: steps per evaluation episode (protocol and default: the dataset's, 1000).
        num_envs: environments per evaluation wave; vector_mode: ``"auto"`` (environment worker
            processes on a multi-core machine, :mod:`dcsbench.envs.workers`; one set serves both
            background pools), ``"workers"``, ``"sync"`` or ``"async"``.
        generalization: also evaluate with novel backgrounds (protocol: yes).
        root: dataset cache root (default ``$DCSBENCH_HOME``); davis_dir: DAVIS folder.
        probe: compute the latent-action probe metrics if the agent has latents.
        progress: progress bars; verbose: stage log lines on stderr.
        overwrite: rerun and replace an existing record (otherwise an existing record of the
            same run is returned, and one of a different run raises :class:`RecordExistsError`).
        keep_checkpoint: keep the work folder (agent checkpoint) after writing the record.
        isolate: run the agent in its own process (protocol: yes). ``False`` runs it in the
            harness's process, for debugging with breakpoints; such records are not
            protocol-compliant.
        call_timeout_s: limit for one ``act`` / ``latent_actions`` / checkpoint call.
        fit_timeout_s: limit for ``fit`` (``None``: none).
        torch_threads: torch intra-op threads in the agent's process (default: the harness's
            current ``torch.get_num_threads()``).

    Returns:
        The validated :class:`~dcsbench.results.ResultRecord` (also written to ``out``).

    Raises:
        dcsbench.isolation.AgentError: the agent crashed, hung or answered garbage (no record).
        RecordExistsError: ``out`` holds the record of a different run.
    """
    from dcsbench import data
    from dcsbench.isolation import AgentProcess, InProcessAgent

    # ---- 1. check (before any work)
    method, version = _check_args(agent, seed, n_episodes)
    parsed = catalogue.parse_dataset_name(dataset)
    if budget != "all":
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
            raise ValueError(f"budget must be an integer or 'all', got {budget!r}")
        catalogue.check_choice("budget", str(int(budget)), [str(b) for b in parsed.tier_spec.budgets])
    method_config = json_safe(getattr(agent, "config", {}))
    t_start = time.perf_counter()
    commit = git_commit()  # the code this call starts with (a tree edited mid-run is not it)
    stages: dict[str, float] = {}

    # ---- 2. prepare (the data is checked as it is opened)
    t0 = time.perf_counter()
    pdata = data.prepare(str(parsed), budget, root=root)
    info, spec = dict(pdata.info), pdata.spec
    budget = int(info["budget"])
    stages["prepare"] = time.perf_counter() - t0
    source = info.get("source", "procedural")
    episode_length = int(episode_length or spec.episode_length)
    seeds = list(catalogue.EVAL_EPISODE_SEEDS[:n_episodes])
    fingerprint = _fingerprint(method=method, version=version, config=method_config,
                               content_hash=info["content_hash"],
                               labeled_hash=info["labeled_subset_hash"], budget=budget,
                               seed=seed, seeds=seeds, episode_length=episode_length,
                               generalization=generalization)
    path = None
    if out is not None:
        path = record_path(out, method, str(parsed), source, budget, seed)
        if path.exists() and not overwrite:
            rec = _existing(path, fingerprint)
            _say(f"the same run's record exists, returning it: {path}", verbose)
            return rec
    run_id = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    work = _Work(path.parent / WORK_DIR / f"{path.stem}-{run_id}" if path else None, fingerprint)
    _say(f"{method} on {dataset} ({source}), budget {budget}, seed {seed}: "
         f"{pdata.unlabeled.n_trajectories} unlabeled / {pdata.labeled.n_trajectories} labeled "
         f"trajectories (prepare {stages['prepare']:.1f} s)", verbose)

    env_kw = dict(task=parsed.task, setting=parsed.setting, source=source, seeds=seeds,
                  num_envs=num_envs, episode_length=episode_length, vector_mode=vector_mode,
                  davis_dir=davis_dir, progress=progress)
    results: dict[str, dict] = {}
    if torch_threads is None and "torch" in sys.modules:
        torch_threads = sys.modules["torch"].get_num_threads()
    runner_cls = AgentProcess if isolate else InProcessAgent
    with runner_cls(agent, pdata.unlabeled, pdata.labeled, call_timeout_s=call_timeout_s,
                    fit_timeout_s=fit_timeout_s, torch_threads=torch_threads) as runner:
        # ---- 3. fit
        t0 = time.perf_counter()
        stages["fit"] = _fit(runner, agent, work, spec, budget, seed, progress, verbose)
        # ---- 4. probe
        offline: dict[str, float] = {}
        if probe:
            t0 = time.perf_counter()
            offline = _probe(runner, agent, pdata, seed)
            if offline:
                stages["probe"] = time.perf_counter() - t0
                _say("probe: " + ", ".join(f"{k} {v:.4g}" for k, v in offline.items()
                                           if k.startswith(("probe_mse", "action_var")))
                     + f" ({stages['probe']:.1f} s)", verbose)
        num_params = runner.num_parameters()
        # ---- 5. online evaluation (one set of environment workers for both pools)
        with _env_pool(env_kw, generalization) as env_pool:
            for pool, stage in (("train", "eval_primary"), ("novel", "eval_generalization")):
                if pool == "novel" and not generalization:
                    continue
                t0 = time.perf_counter()
                returns = _eval_pool(runner.act, work, pool, env_pool=env_pool, **env_kw)
                stages[stage] = time.perf_counter() - t0
                results[pool] = _eval_result(pool, seeds, returns)
                _say(f"{stage}: mean return {results[pool]['mean_return']:.1f} over "
                     f"{len(returns)} episodes ({stages[stage]:.1f} s)", verbose)
    stages["total"] = time.perf_counter() - t_start

    compliant = (n_episodes == catalogue.EVAL_EPISODES and isolate
                 and episode_length == catalogue.EPISODE_LENGTH and generalization
                 and bool(info.get("protocol_compliant", True)))
    record = parse_record({
        "record_version": RECORD_VERSION,
        "protocol_version": catalogue.PROTOCOL_VERSION,
        "dcsbench_version": __version__,
        "git_commit": commit,
        "method": {"name": method, "version": version, "config": method_config,
                   "num_parameters": num_params},
        "task": parsed.task, "setting": parsed.setting, "tier": parsed.tier, "source": source,
        "budget": budget, "seed": int(seed), "episode_length": episode_length,
        "dataset": {"name": str(parsed), "revision": str(info.get("revision", "local")),
                    "content_hash": info["content_hash"],
                    "labeled_subset_hash": info["labeled_subset_hash"]},
        "primary": results["train"],
        "generalization": results.get("novel"),
        "offline_metrics": offline,
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        "hardware": hardware_info(),
        "protocol_compliant": compliant,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }, origin="evaluate()")
    if path is not None:
        save_record(record, path)
        _say(f"record: {path}", verbose)
        if not keep_checkpoint:
            work.remove()
    return record


# --------------------------------------------------------------------------- building agents
# (kept importable from here; the registry is dcsbench.methods)

from dcsbench.methods import import_agent_class, load_config_file, make_agent  # noqa: E402


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=1e-4", "net.width=256"]`` -> ``{"lr": 0.0001, "net": {"width": 256}}``
    (:func:`dcsbench.overrides.nested_overrides`)."""
    from dcsbench.overrides import nested_overrides

    return nested_overrides(items)
