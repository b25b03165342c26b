"""Data collection: roll a fixed policy in the DCS env and stage one ``.npz`` per episode.

The policy acts on the proprioceptive state (``info["state"]``) while ``dcsbench.make_env``
renders the 64x64 frames with the requested setting and background pool, so the frames are
exactly what the evaluation renders. Episode ``seed`` fully determines an episode (physics and
distractors), the expert is deterministic, and files are written byte-for-byte reproducibly
(fixed zip timestamps, fixed compression level), so the same command gives bit-identical files,
with any number of workers.

Staged episode ``out_dir/episodes/ep_{seed:07d}.npz`` (the format the dataset builder reads):

* ``obs``     (T, 64, 64, 3) uint8   - o_0 .. o_{T-1}, the frame seen *before* each action,
* ``actions`` (T, A) float32         - a_t in [-1, 1],
* ``rewards`` (T,) float32           - r_t received after a_t,
* ``states``  (T, S) float32         - proprioceptive state at o_t (debug only),
* ``seed``    () int64               - the episode seed.

Files appear atomically (temp file + rename), so a killed collection leaves only complete
episodes; re-running skips them and removes stale temp files.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np

from dcsbench import catalogue

KEYS = ("obs", "actions", "rewards", "states", "seed")

#: Deflate level of staged episodes: 0 (stored blocks). Level 1 took ~10x longer (a 500-frame
#: episode: ~200 ms against ~20 ms on the loaded 2-core sandbox, 13-35% of a worker's time;
#: ``benchmarks/RESULTS-data.md``) for files half the size, and the builder then inflates them
#: all again in one process. The files are temporary (deleted after the build); the published
#: shards are Parquet with zstd. Staging takes ~12.3 MB per 1,000-step episode.
STAGING_COMPRESSLEVEL = 0
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def default_seed_base(pool: str) -> int:
    """First episode seed for a background pool: the catalogue's train/eval split bases."""
    catalogue.check_choice("background pool", pool, catalogue.POOLS)
    return catalogue.SPLIT_SEED_BASE["train" if pool == "train" else "eval"]


def episode_path(out_dir: str | os.PathLike, seed: int) -> Path:
    """Path of the staged episode for ``seed`` under ``out_dir``."""
    return Path(out_dir) / "episodes" / f"ep_{int(seed):07d}.npz"


# ------------------------------------------------------------------------------ file format
def write_npz_deterministic(path: str | os.PathLike, arrays: dict[str, np.ndarray],
                            compresslevel: int = 1) -> Path:
    """Write ``arrays`` as an ``.npz`` (readable by ``np.load``) atomically and reproducibly:
    same arrays -> same bytes (fixed member timestamps, order and compression level)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            with zipfile.ZipFile(raw, "w", allowZip64=True) as zf:
                for name, arr in arrays.items():
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED,
                                compresslevel=compresslevel)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_staged_episode(path: str | os.PathLike) -> dict:
    """Read and validate one staged episode; returns ``obs``, ``actions``, ``rewards``,
    ``states`` (numpy arrays) and ``seed`` (int). Raises ``ValueError`` naming the problem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}")
            ep = {k: z[k] for k in KEYS}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: unreadable staged episode ({err})") from None
    obs, act, rew, st = ep["obs"], ep["actions"], ep["rewards"], ep["states"]
    t = obs.shape[0] if obs.ndim else -1
    size = catalogue.IMAGE_SIZE
    checks = [
        (obs.dtype == np.uint8 and obs.shape[1:] == (size, size, 3), f"obs {obs.dtype} {obs.shape}"),
        (act.dtype == np.float32 and act.ndim == 2 and act.shape[0] == t, f"actions {act.dtype} {act.shape}"),
        (rew.dtype == np.float32 and rew.shape == (t,), f"rewards {rew.dtype} {rew.shape}"),
        (st.dtype == np.float32 and st.ndim == 2 and st.shape[0] == t, f"states {st.dtype} {st.shape}"),
        (t >= 1, "empty episode"),
        (np.isfinite(act).all() and np.isfinite(rew).all() and np.isfinite(st).all(), "non-finite values"),
        (np.abs(act).max(initial=0.0) <= 1.0, "actions outside [-1, 1]"),
        (ep["seed"].shape == () and np.issubdtype(ep["seed"].dtype, np.integer), "seed not an integer"),
    ]
    for ok, what in checks:
        if not ok:
            raise ValueError(f"{path}: invalid staged episode: {what}")
    ep["seed"] = int(ep["seed"])
    return ep


def _is_complete(path: Path) -> bool:
    """A final-named file is complete (atomic rename); a damaged one is removed and redone."""
    if not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            if {f"{k}.npy" for k in KEYS} <= set(zf.namelist()):
                return True
    except (zipfile.BadZipFile, OSError):
        pass
    print(f"warning: removing damaged staged episode {path}")
    path.unlink()
    return False


# ------------------------------------------------------------------------------ rollouts
class _RandomPolicy:
    """Uniform random actions in [-1, 1], seeded per episode (for tests and smoke runs)."""

    def __init__(self, action_dim: int):
        self.action_dim = action_dim
        self.rng = np.random.default_rng(0)

    def start(self, seed: int) -> None:
        self.rng = np.random.default_rng([int(seed), 0x5EED])

    def __call__(self, state):
        return self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)


class _Collector:
    """Per-process state: one env and the policy, reused across episodes."""

    def __init__(self, cfg: dict):
        from dcsbench.envs import make_env

        self.cfg = cfg
        self.env = make_env(cfg["task"], cfg["setting"], backgrounds=cfg["pool"],
                            source=cfg["source"], davis_dir=cfg["davis_dir"], frame_stack=1,
                            episode_length=cfg["episode_length"])
        policy = cfg["policy"]
        if policy == "expert":
            from dcsbench.experts import load_expert
            policy = load_expert(cfg["task"])
        elif policy == "random":
            policy = _RandomPolicy(int(self.env.action_space.shape[0]))
        self.policy = policy

    def run(self, seed: int, tick=None) -> tuple[int, int, float, dict]:
        """Roll and stage the episode for ``seed``; returns (seed, frames, return, timing):
        ``timing`` holds the seconds spent in the env (``env``: physics, rendering,
        distractors), the policy (``policy``) and writing the file (``write``)."""
        clock = time.perf_counter
        t_env = t_policy = 0.0
        cfg, env = self.cfg, self.env
        length = cfg["episode_length"]
        if hasattr(self.policy, "start"):
            self.policy.start(seed)
        t0 = clock()
        obs, info = env.reset(seed=int(seed))
        t_env += clock() - t0
        adim = int(env.action_space.shape[0])
        frames = np.empty((length, *obs.shape), np.uint8)
        states = np.empty((length, info["state"].shape[0]), np.float32)
        actions = np.empty((length, adim), np.float32)
        rewards = np.empty(length, np.float32)
        for t in range(length):
            frames[t], states[t] = obs, info["state"]
            t0 = clock()
            action = np.asarray(self.policy(info["state"]), dtype=np.float32).reshape(-1)
            t1 = clock()
            if action.shape != (adim,):
                raise ValueError(f"policy returned shape {action.shape}, expected ({adim},)")
            actions[t] = np.clip(action, -1.0, 1.0)
            obs, reward, terminated, truncated, info = env.step(actions[t])
            t_env += clock() - t1
            t_policy += t1 - t0
            rewards[t] = reward
            if tick is not None and (t + 1) % 50 == 0:
                tick(50)
            if terminated or truncated:
                break
        if t + 1 != length or not truncated:
            raise RuntimeError(f"episode {seed} ended after {t + 1} steps (expected {length})")
        t0 = clock()
        write_npz_deterministic(episode_path(cfg["out_dir"], seed),
                                {"obs": frames, "actions": actions, "rewards": rewards,
                                 "states": states, "seed": np.int64(seed)},
                                compresslevel=STAGING_COMPRESSLEVEL)
        timing = {"env": t_env, "policy": t_policy, "write": clock() - t0}
        if tick is not None:
            tick(length % 50)
        return int(seed), length, float(rewards.astype(np.float64).sum()), timing


_WORKER: _Collector | None = None
_READY_AT: float | None = None   # time.time() when this worker's collector was built


def _worker_init(cfg: dict) -> None:
    global _WORKER, _READY_AT
    _WORKER = _Collector(cfg)
    _READY_AT = time.time()


def _worker_run(seed: int) -> tuple[int, int, float, dict]:
    seed, frames, ret, timing = _WORKER.run(seed)
    return seed, frames, ret, {**timing, "pid": os.getpid(), "ready_at": _READY_AT}


def _timing_summary(timings: list[dict], started_at: float, seconds: float, frames: int,
                    processes: int) -> dict:
    """``collect.json``'s ``last_run`` timing fields from the per-episode timings: ``startup_s``
    (spawn + imports + env and policy construction, until the last worker that ran an
    episode was ready; with one
    worker, in this process, the construction alone), ``worker_seconds`` (seconds per part,
    summed over all workers) and ``steady_frames_per_second``
    (frames over the wall time after start-up: what more episodes per worker would approach)."""
    ready = {t["pid"]: t["ready_at"] for t in timings if t.get("ready_at") is not None}
    startup = max(ready.values()) - started_at if ready else 0.0
    parts = {k: round(sum(t[k] for t in timings), 3) for k in ("env", "policy", "write")}
    steady = seconds - max(0.0, startup)
    return {"startup_s": round(max(0.0, startup), 2), "worker_processes": int(processes),
            "worker_seconds": parts,
            "steady_frames_per_second": round(frames / steady, 1) if steady > 0 and frames else None}


def _policy_id(task: str, policy) -> str:
    if policy == "expert":
        from dcsbench.experts import EXPERTS_DIR, load_expert
        load_expert(task)  # fails early, listing available experts
        digest = hashlib.sha256((EXPERTS_DIR / f"{task}.safetensors").read_bytes()).hexdigest()
        return f"expert:{digest[:16]}"
    if policy == "random":
        return "random"
    if callable(policy):
        return f"callable:{getattr(policy, '__qualname__', type(policy).__qualname__)}"
    raise ValueError(f"policy must be 'expert', 'random' or a callable, got {policy!r}")


def collect_episodes(task: str, setting: str, source: str, pool: str, seeds, out_dir,
                     workers: int = 1, davis_dir=None, policy="expert",
                     episode_length: int = catalogue.EPISODE_LENGTH, progress: bool = True) -> list[Path]:
    """Collect one staged episode per seed into ``out_dir/episodes`` (resumable).

    Args:
        task, setting, source, pool: the env (``make_env(task, setting, backgrounds=pool,
            source=source, frame_stack=1)``).
        seeds: episode seeds (episode ``i`` of a dataset split uses ``base + i``).
        out_dir: output folder; ``episodes/`` and ``collect.json`` (config, per-episode
            returns, mean return) are written in it.
        workers: parallel processes ('spawn' context); results do not depend on it.
        davis_dir: DAVIS folder for ``source="davis"``.
        policy: ``"expert"`` (the committed expert of ``task``), ``"random"`` (uniform, seeded
            by the episode seed) or a callable ``state -> action`` (picklable if workers > 1).
        episode_length: steps per episode (1000 in the protocol; shorter for tests).
        progress: show a progress bar with frames/s.

    Returns:
        The staged episode paths, in the order of ``seeds``.
    """
    from filelock import FileLock, Timeout
    from tqdm import tqdm

    catalogue.check_choice("task", task, catalogue.TASKS)
    catalogue.check_choice("setting", setting, catalogue.SETTINGS)
    catalogue.check_choice("source", source, catalogue.SOURCES)
    catalogue.check_choice("background pool", pool, catalogue.POOLS)
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError("episode seeds must be distinct non-negative integers")
    if int(workers) < 1 or int(episode_length) < 1:
        raise ValueError("workers and episode_length must be >= 1")
    if callable(policy) and workers > 1:
        try:
            pickle.dumps(policy)
        except Exception as err:  # noqa: BLE001 - any pickling failure means the same thing
            raise ValueError(f"a callable policy must be picklable to use workers > 1 ({err})") from None
    out_dir = Path(out_dir)
    (out_dir / "episodes").mkdir(parents=True, exist_ok=True)
    config = {"task": task, "setting": setting, "source": source, "pool": pool,
              "policy": _policy_id(task, policy), "episode_length": int(episode_length),
              "davis_dir": None if davis_dir is None else str(davis_dir)}
    lock = FileLock(str(out_dir / ".collect.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RuntimeError(f"another collection is writing to {out_dir}") from None
    try:
        _check_config(out_dir, config)
        for stale in (out_dir / "episodes").glob(".ep_*.tmp"):
            stale.unlink()
        todo = [s for s in seeds if not _is_complete(episode_path(out_dir, s))]
        cfg = {**config, "policy": policy, "out_dir": str(out_dir)}
        bar = tqdm(total=len(todo) * episode_length, unit="frame", unit_scale=True,
                   desc=f"collect {task}-{setting} ({len(seeds) - len(todo)}/{len(seeds)} done)",
                   disable=not progress, smoothing=0.1)
        t0, started_at = time.perf_counter(), time.time()
        workers = min(int(workers), max(1, len(todo)))
        timings: list[dict] = []
        with bar:
            if todo and workers == 1:
                collector = _Collector(cfg)
                timings.append({"pid": os.getpid(), "ready_at": time.time(), "env": 0.0,
                                "policy": 0.0, "write": 0.0})
                for seed in todo:
                    timings.append(collector.run(seed, tick=bar.update)[3])
                collector.env.close()
            elif todo:
                from dcsbench.envs.workers import worker_environment

                # One thread per worker for BLAS/OpenMP and Mesa llvmpipe (set before the
                # spawned children import numpy or MuJoCo; values the user set are kept).
                with worker_environment({"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}):
                    ctx = mp.get_context("spawn")
                    with ctx.Pool(workers, _worker_init, (cfg,)) as pool_:
                        for _, frames, _, timing in pool_.imap_unordered(_worker_run, todo):
                            timings.append(timing)
                            bar.update(frames)
        seconds = time.perf_counter() - t0
        paths = [episode_path(out_dir, s) for s in seeds]
        _write_summary(out_dir, config, seeds, paths, len(todo) * episode_length, seconds,
                       _timing_summary(timings, started_at, seconds, len(todo) * episode_length,
                                       workers if todo else 0))
        return paths
    finally:
        lock.release()


def _check_config(out_dir: Path, config: dict) -> None:
    """Refuse to mix episodes of different configurations in one folder."""
    file = out_dir / "collect-config.json"
    if file.is_file():
        old = json.loads(file.read_text(encoding="utf-8"))
        if old != config:
            diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
            raise ValueError(f"{out_dir} holds episodes collected with another configuration "
                             f"{diff}; use another output folder")
    else:
        from dcsbench.results import atomic_write_text
        atomic_write_text(file, json.dumps(config, indent=2) + "\n")


def _write_summary(out_dir: Path, config: dict, seeds, paths, frames: int, seconds: float,
                   timing: dict | None = None) -> None:
    from dcsbench.results import atomic_write_text

    returns = []
    for p in paths:
        with np.load(p) as z:
            returns.append(float(z["rewards"].astype(np.float64).sum()))
    summary = {**config, "episodes": len(seeds), "seeds": seeds,
               "returns": [round(r, 4) for r in returns],
               "mean_return": float(np.mean(returns)) if returns else None,
               "std_return": float(np.std(returns)) if returns else None,
               "last_run": {"frames": frames, "seconds": round(seconds, 2),
                            "frames_per_second": round(frames / seconds, 1) if seconds > 0 and frames else None,
                            **(timing or {})}}
    atomic_write_text(out_dir / "collect.json", json.dumps(summary, indent=2) + "\n")
