"""The protocol runner: one (method, dataset, budget, seed) -> one result record.

:func:`evaluate` is what ``dcsbench run`` and ``dcsbench sweep`` call::

    from dcsbench import evaluate
    record = evaluate(MyAgent(lr=3e-4), "cheetah-run-distractors-tiny", budget=2, seed=0,
                      out="runs/")

Stages (wall time of each goes in ``record.stage_seconds``):

1. ``prepare``: :func:`dcsbench.data.prepare` builds the unlabeled view, the labeled view of the
   budget and the eval split (kept by the harness, never given to the agent).
2. ``fit``: seeds ``random``/``numpy``/``torch`` from ``seed``, then
   ``agent.fit(unlabeled, labeled, spec, budget, seed, logger)``.
3. ``probe`` (only if ``agent.latent_actions`` returns latents): the harness fits a ridge
   linear probe latent -> true action on the labeled view and reports its MSE on the eval split
   (``offline_metrics["probe_mse_eval"]``, next to ``"action_var_eval"``, the MSE of always
   predicting the mean labeled action, for scale).
4. ``eval_primary`` / ``eval_generalization``: online evaluation with the dataset's setting
   and train / novel backgrounds (:func:`dcsbench.evaluation.evaluate_policy`).

Checkpoint / resume: with ``out`` given, progress lives in a hidden work folder next to the
record (``.work/<run id>/``). If the agent implements ``save``/``load`` it is checkpointed after
``fit``; finished evaluation waves are saved as they complete. A killed run started again with
the same arguments resumes from there (or, when the agent has no checkpoint, refits from
scratch); a changed configuration restarts cleanly. The record itself is written atomically
at the very end, so a killed run never leaves a partial record, and the work folder is then
removed.

Runs with non-protocol settings (fewer episodes, shorter episodes, no generalization
evaluation, a non-protocol dataset) are recorded with ``protocol_compliant=False``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dcsbench import __version__, registry
from dcsbench.agent import Agent
from dcsbench.results import ResultRecord, atomic_write_text, parse_record, save_record

#: Name of the hidden folder (next to records) holding checkpoints of unfinished runs.
WORK_DIR = ".work"

#: At most this many (o_t, o_{t+1}) pairs per split feed the latent-action probe.
PROBE_MAX_SAMPLES = 20_000


# --------------------------------------------------------------------------- small helpers


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global RNG and torch (CPU and CUDA) from ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def git_commit() -> str | None:
    """Commit of the dcsbench source tree (``-dirty`` if modified), or ``None`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "dcsbench", "baselines"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


def hardware_info() -> dict[str, str]:
    """Machine description for the record: OS, Python, CPU count, torch, accelerator."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": str(os.cpu_count())}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = str(torch.get_num_threads())
        if torch.cuda.is_available():
            info["accelerator"] = torch.cuda.get_device_name(0)
            info["cuda"] = str(torch.version.cuda)
        else:
            info["accelerator"] = "cpu"
    except ImportError:  # pragma: no cover
        pass
    return info


def json_safe(obj: Any) -> Any:
    """A JSON-serialisable copy of a config (unknown objects become their ``repr``)."""
    return json.loads(json.dumps(obj, default=repr))


def record_path(out: str | os.PathLike, method: str, dataset: str, source: str, budget: int,
                seed: int) -> Path:
    """Where a run's record goes: ``out`` itself if it ends in ``.json``, else a file in it
    named ``{method}__{dataset}__{source}__b{budget}__s{seed}.json``."""
    out = Path(out)
    if out.suffix == ".json":
        return out
    return out / f"{method}__{dataset}__{source}__b{budget}__s{seed}.json"


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


# --------------------------------------------------------------------------- probe


def fit_linear_probe(z: np.ndarray, a: np.ndarray, ridge: float = 1e-3):
    """Ridge regression ``a ~ z @ W + b`` (closed form; dual form when dim > samples).

    ``ridge`` is relative to the mean squared feature norm, so it is scale-free.
    Returns ``(W, b)``.
    """
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    a = np.asarray(a, dtype=np.float64)
    zm, am = z.mean(0), a.mean(0)
    zc, ac = z - zm, a - am
    lam = ridge * max(float(np.mean(np.sum(zc**2, axis=1))), 1e-12)
    n, d = zc.shape
    if d <= n:
        w = np.linalg.solve(zc.T @ zc + lam * np.eye(d), zc.T @ ac)
    else:
        w = zc.T @ np.linalg.solve(zc @ zc.T + lam * np.eye(n), ac)
    return w, am - zm @ w


def _latents(agent: Agent, view, max_samples: int, batch_size: int = 256):
    """Latent actions and true actions of (up to ``max_samples``) pairs of a labeled view."""
    zs, acts, n = [], [], 0
    for batch in view.iter_stacks(batch_size):
        z = agent.latent_actions(batch["obs"], batch["next_obs"])
        if z is None:
            return None, None
        z = np.asarray(z, dtype=np.float32).reshape(len(batch["obs"]), -1)
        zs.append(z)
        acts.append(np.asarray(batch["action"], dtype=np.float32))
        n += len(z)
        if n >= max_samples:
            break
    if not zs:
        return None, None
    return np.concatenate(zs)[:max_samples], np.concatenate(acts)[:max_samples]


def probe_metrics(agent: Agent, labeled, eval_split, max_samples: int = PROBE_MAX_SAMPLES
                  ) -> dict[str, float]:
    """Linear-probe metrics of an agent's latent actions ({} if it has none).

    The probe is fitted by the harness on the labeled view, and scored (MSE, averaged over
    action dimensions) on the labeled view and on the eval split (novel backgrounds).
    ``eval_split`` may be a zero-argument callable opening it (only called if there are latents).
    """
    z_lab, a_lab = _latents(agent, labeled, max_samples)
    if z_lab is None:
        return {}
    w, b = fit_linear_probe(z_lab, a_lab)
    out = {"probe_mse_labeled": float(np.mean((z_lab @ w + b - a_lab) ** 2))}
    if callable(eval_split):
        eval_split = eval_split()
    if eval_split is not None:
        z_ev, a_ev = _latents(agent, eval_split, max_samples)
        if z_ev is not None:
            out["probe_mse_eval"] = float(np.mean((z_ev @ w + b - a_ev) ** 2))
            out["action_var_eval"] = float(np.mean((a_ev - a_lab.mean(0)) ** 2))
    return out


# --------------------------------------------------------------------------- data


def prepare_all_labels(name: str, root=None):
    """Like :func:`dcsbench.data.prepare`, but every train trajectory is labeled.

    Only for reference measurement (``dcsbench reference``): BC on the full train set with all
    actions revealed. ``info["budget"]`` is the number of train trajectories and
    ``info["labeled_subset_hash"]`` the sha256 of the canonical JSON of all their ids.
    """
    import dataclasses

    from dcsbench import data
    from dcsbench.data import cache as cache_mod
    from dcsbench.data import format as fmt
    from dcsbench.data.store import ensure_dataset
    from dcsbench.data.views import LabeledView

    d = ensure_dataset(name, splits=("train",), root=root)
    manifest = fmt.load_manifest(d / fmt.MANIFEST)
    smallest = min(int(b) for b in manifest["labeled_subsets"]["budgets"])
    pdata = data.prepare(name, smallest, root=root)
    lengths = np.asarray(manifest["splits"]["train"]["lengths"], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    arrays = cache_mod.read_split_arrays(d, "train", names=("frames", "actions"))
    ids = list(range(len(lengths)))
    labeled = LabeledView(arrays["frames"], starts, lengths, arrays["actions"], ids)
    info = dict(pdata.info, budget=len(ids), labeled_subset_hash=fmt.sha256_json(ids))
    return dataclasses.replace(pdata, labeled=labeled, info=info)


def _agent_data(name: str, budget: int | str, root):
    """``(unlabeled, labeled, spec, info)`` of a run, without the eval split."""
    from dcsbench import data

    pdata = prepare_all_labels(name, root=root) if budget == "all" else \
        data.prepare(name, int(budget), root=root)
    return pdata.unlabeled, pdata.labeled, pdata.spec, dict(pdata.info)


def _eval_split(name: str, budget: int | str, root):
    """The eval split of a dataset (harness only), opened after the agent's fit."""
    from dcsbench import data

    pdata = prepare_all_labels(name, root=root) if budget == "all" else \
        data.prepare(name, int(budget), root=root)
    return pdata.eval_split


# --------------------------------------------------------------------------- runner


class _Work:
    """The hidden work folder of one run (checkpoint, finished waves, fingerprint)."""

    def __init__(self, path: Path | None, fingerprint: dict) -> None:
        self.path = path
        self.fingerprint = fingerprint
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
        if self.path is None or not (self.path / name).exists():
            return None
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    def write(self, name: str, obj: Any) -> None:
        if self.path is not None:
            atomic_write_text(self.path / name, json.dumps(obj))


def _eval_pool(agent: Agent, work: _Work, pool: str, *, task, setting, source, seeds,
               num_envs, episode_length, vector_mode, davis_dir, progress) -> list[float]:
    """Evaluate one background pool, resuming from the waves saved in ``work``."""
    from dcsbench.evaluation import evaluate_policy

    name = f"eval_{pool}.json"
    done = {int(k): float(v) for k, v in (work.read(name) or {}).items()}
    todo = [s for s in seeds if s not in done]
    if todo:
        def on_wave(wave_seeds, wave_returns):
            done.update(zip(wave_seeds, wave_returns))
            work.write(name, {str(k): v for k, v in done.items()})

        evaluate_policy(agent.act, task, setting, source, pool, seeds=todo, num_envs=num_envs,
                        episode_length=episode_length, mode=vector_mode, davis_dir=davis_dir,
                        progress=progress, desc=f"eval {pool} backgrounds", on_wave=on_wave)
    return [done[s] for s in seeds]


def _eval_result(pool: str, seeds, returns, ref) -> dict:
    mean = float(np.mean(returns))
    return {"backgrounds": pool, "episode_seeds": list(seeds), "returns": list(returns),
            "mean_return": mean, "normalized_score": None if ref is None else mean / ref}


def evaluate(agent: Agent, dataset: str, budget: int | str, seed: int, out: str | os.PathLike | None = None,
             n_episodes: int = registry.EVAL_EPISODES, *, episode_length: int | None = None,
             num_envs: int = 5, vector_mode: str = "sync", generalization: bool = True,
             root: str | os.PathLike | None = None, davis_dir: str | os.PathLike | None = None,
             probe: bool = True, progress: bool = True, verbose: bool = True,
             overwrite: bool = False, keep_checkpoint: bool = False) -> ResultRecord:
    """Run the protocol for one (agent, dataset, budget, seed) and return its result record.

    Args:
        agent: a fresh, unfitted :class:`~dcsbench.agent.Agent`.
        dataset: dataset name, e.g. ``"cheetah-run-distractors-tiny"`` (built or downloaded).
        budget: number of labeled trajectories (one of the tier's budgets), or ``"all"``
            (every train trajectory labeled: reference measurement only).
        seed: run seed (official results: 0, 1, 2).
        out: folder (or ``.json`` file) for the record; ``None`` returns it without writing
            (and without checkpoints).
        n_episodes: evaluation episodes per background pool (protocol: 25).
        episode_length: steps per evaluation episode (protocol and default: the dataset's, 1000).
        num_envs: environments per evaluation wave; vector_mode: ``"sync"`` or ``"async"``.
        generalization: also evaluate with novel backgrounds (protocol: yes).
        root: dataset cache root (default ``$DCSBENCH_HOME``); davis_dir: DAVIS folder.
        probe: compute the latent-action probe metric if the agent has latents.
        progress: progress bars; verbose: stage log lines on stderr.
        overwrite: rerun even if the record exists (otherwise the existing record is returned).
        keep_checkpoint: keep the work folder (agent checkpoint) after writing the record.

    Returns:
        The validated :class:`~dcsbench.results.ResultRecord` (also written to ``out``).
    """
    from dcsbench import scoring

    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be a dcsbench.agent.Agent, got {type(agent).__name__}")
    parsed = registry.parse_dataset_name(dataset)
    if not 1 <= n_episodes <= len(registry.EVAL_EPISODE_SEEDS):
        raise ValueError(f"n_episodes must be in 1..{len(registry.EVAL_EPISODE_SEEDS)}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    t_start = time.perf_counter()
    stages: dict[str, float] = {}

    t0 = time.perf_counter()
    # Only what the agent may see stays referenced while it runs: the eval split (and the
    # ProtocolData holding it) is dropped here and reopened after fit, so not even a walk up
    # the call stack from inside fit (frame locals) reaches it.
    unlabeled, labeled, spec, info = _agent_data(str(parsed), budget, root)
    budget_arg, budget = budget, int(info["budget"])
    stages["prepare"] = time.perf_counter() - t0
    source = info.get("source", "procedural")
    episode_length = int(episode_length or spec.episode_length)
    seeds = list(registry.EVAL_EPISODE_SEEDS[:n_episodes])
    method_config = json_safe(getattr(agent, "config", {}))

    path = None
    if out is not None:
        path = record_path(out, agent.name, str(parsed), source, budget, seed)
        if path.exists() and not overwrite:
            _say(f"record exists, skipping: {path}", verbose)
            return parse_record(json.loads(path.read_text(encoding="utf-8")), str(path))
    fingerprint = {"method": agent.name, "version": agent.version, "config": method_config,
                   "dataset": info.get("content_hash"), "labeled": info.get("labeled_subset_hash"),
                   "budget": budget, "seed": seed, "seeds": seeds, "episode_length": episode_length,
                   "generalization": generalization, "protocol_version": registry.PROTOCOL_VERSION}
    run_id = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    work = _Work(path.parent / WORK_DIR / f"{path.stem}-{run_id}" if path else None, fingerprint)
    _say(f"{agent.name} on {dataset} ({source}), budget {budget}, seed {seed}: "
         f"{unlabeled.n_trajectories} unlabeled / {labeled.n_trajectories} labeled "
         f"trajectories (prepare {stages['prepare']:.1f} s)", verbose)

    # ---- fit (or resume from the checkpoint)
    ckpt = work.path / "checkpoint" if work.path else None
    fit_done = work.read("fit_done.json")
    if fit_done and ckpt is not None and ckpt.exists() and _supports(agent, "load"):
        agent.load(str(ckpt))
        stages["fit"] = float(fit_done["seconds"])
        _say(f"fit: resumed from checkpoint {ckpt}", verbose)
    else:
        seed_everything(seed)
        logger = ProgressLogger(work.path / "fit_log.jsonl" if work.path else None, progress,
                                desc=f"fit {agent.name}")
        t0 = time.perf_counter()
        try:
            agent.fit(unlabeled, labeled, spec, budget, seed, logger)
        finally:
            logger.close()
        stages["fit"] = time.perf_counter() - t0
        if ckpt is not None and _supports(agent, "save"):
            if ckpt.exists():
                shutil.rmtree(ckpt)
            tmp = ckpt.with_name("checkpoint.tmp")
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            agent.save(str(tmp))
            os.replace(tmp, ckpt)
        work.write("fit_done.json", {"seconds": stages["fit"]})
        _say(f"fit: {stages['fit']:.1f} s", verbose)

    # ---- probe
    offline: dict[str, float] = {}
    if probe:
        t0 = time.perf_counter()
        offline = probe_metrics(agent, labeled, lambda: _eval_split(str(parsed), budget_arg, root))
        if offline:
            stages["probe"] = time.perf_counter() - t0
            _say(f"probe: {offline} ({stages['probe']:.1f} s)", verbose)

    # ---- online evaluation
    try:
        ref = scoring.get_reference(parsed.task, parsed.setting, source, str(parsed)).ret
    except scoring.MissingReferenceError as err:
        warnings.warn(f"{err}; the record gets normalized_score=null (scores can be "
                      f"recomputed from its raw returns later)", stacklevel=2)
        ref = None
    env_kw = dict(task=parsed.task, setting=parsed.setting, source=source, seeds=seeds,
                  num_envs=num_envs, episode_length=episode_length, vector_mode=vector_mode,
                  davis_dir=davis_dir, progress=progress)
    results = {}
    for pool, stage in (("train", "eval_primary"), ("novel", "eval_generalization")):
        if pool == "novel" and not generalization:
            continue
        t0 = time.perf_counter()
        returns = _eval_pool(agent, work, pool, **env_kw)
        stages[stage] = time.perf_counter() - t0
        results[pool] = _eval_result(pool, seeds, returns, ref)
        _say(f"{stage}: mean return {results[pool]['mean_return']:.1f} over {len(returns)} "
             f"episodes ({stages[stage]:.1f} s)", verbose)
    stages["total"] = time.perf_counter() - t_start

    compliant = (n_episodes == registry.EVAL_EPISODES
                 and episode_length == registry.EPISODE_LENGTH and generalization
                 and bool(info.get("protocol_compliant", True)))
    num_params = agent.num_parameters()
    record = parse_record({
        "protocol_version": registry.PROTOCOL_VERSION,
        "dcsbench_version": __version__,
        "git_commit": git_commit(),
        "method": {"name": agent.name, "version": str(agent.version), "config": method_config,
                   "num_parameters": None if num_params is None else int(num_params)},
        "task": parsed.task, "setting": parsed.setting, "tier": parsed.tier, "source": source,
        "budget": budget, "seed": seed,
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
        if work.path is not None and not keep_checkpoint:
            shutil.rmtree(work.path, ignore_errors=True)
            try:
                work.path.parent.rmdir()  # remove .work/ when it is empty
            except OSError:
                pass
    return record


# --------------------------------------------------------------------------- building agents


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=1e-4", "net.width=256"]`` -> ``{"lr": 0.0001, "net": {"width": 256}}``.

    Values are read by :func:`dcsbench.overrides.parse_value` (JSON, then YAML, then the string;
    nothing is executed); dotted keys build nested mappings.
    """
    from dcsbench.overrides import nested_overrides

    return nested_overrides(items)


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config_file(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read a YAML (or JSON) config file that must hold a mapping (``{}`` for ``None``)."""
    import yaml

    if path is None:
        return {}
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping of options, "
                         f"got {type(data).__name__}")
    return data


def import_agent_class(spec: str) -> type[Agent]:
    """Import ``"package.module:ClassName"`` and check it is an :class:`Agent` subclass.

    The current working directory is importable (as with ``python -m``), so a method written in
    ``./my_method.py`` runs as ``dcsbench run --agent my_method:MyAgent`` without installing it.
    """
    import importlib
    import sys

    module_name, sep, cls_name = spec.partition(":")
    if not sep or not module_name or not cls_name:
        raise ValueError(f"expected MODULE:CLASS, got {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ValueError(f"cannot import module {module_name!r} ({err}); is it on PYTHONPATH?") from None
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ValueError(f"{spec}: {cls_name!r} is not a dcsbench.agent.Agent subclass in {module_name}")
    return cls


def make_agent(spec: str, config_file: str | os.PathLike | None = None,
               overrides: list[str] | dict | None = None, preset: str | None = None) -> Agent:
    """Build an agent from a baseline name (``bc``, ``laom``, ...) or ``MODULE:CLASS``.

    Configuration, later wins: the baseline's ``preset`` (default ``paper``; baselines only),
    the mapping in ``config_file`` (YAML), then ``overrides`` (``key=value`` strings or a dict).
    A ``MODULE:CLASS`` agent receives the merged mapping as keyword arguments.
    """
    config = load_config_file(config_file)
    extra = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    config = _deep_merge(config, extra)
    if ":" in spec:
        if preset is not None:
            raise ValueError("--preset applies to baseline names only; use --config for "
                             "MODULE:CLASS agents")
        return import_agent_class(spec)(**config)
    import baselines

    registry.check_choice("baseline", spec, baselines.BASELINES)
    return baselines.make_agent(spec, preset=preset or "paper", **config)
