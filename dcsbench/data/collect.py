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

from dcsbench import registry

KEYS = ("obs", "actions", "rewards", "states", "seed")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def default_seed_base(pool: str) -> int:
    """First episode seed for a background pool: the registry's train/eval split bases."""
    registry.check_choice("background pool", pool, registry.POOLS)
    return registry.SPLIT_SEED_BASE["train" if pool == "train" else "eval"]


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
    size = registry.IMAGE_SIZE
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

    def run(self, seed: int, tick=None) -> tuple[int, int, float]:
        """Roll and stage the episode for ``seed``; returns (seed, frames, return)."""
        cfg, env = self.cfg, self.env
        length = cfg["episode_length"]
        if hasattr(self.policy, "start"):
            self.policy.start(seed)
        obs, info = env.reset(seed=int(seed))
        adim = int(env.action_space.shape[0])
        frames = np.empty((length, *obs.shape), np.uint8)
        states = np.empty((length, info["state"].shape[0]), np.float32)
        actions = np.empty((length, adim), np.float32)
        rewards = np.empty(length, np.float32)
        for t in range(length):
            frames[t], states[t] = obs, info["state"]
            action = np.asarray(self.policy(info["state"]), dtype=np.float32).reshape(-1)
            if action.shape != (adim,):
                raise ValueError(f"policy returned shape {action.shape}, expected ({adim},)")
            actions[t] = np.clip(action, -1.0, 1.0)
            obs, reward, terminated, truncated, info = env.step(actions[t])
            rewards[t] = reward
            if tick is not None and (t + 1) % 50 == 0:
                tick(50)
            if terminated or truncated:
                break
        if t + 1 != length or not truncated:
            raise RuntimeError(f"episode {seed} ended after {t + 1} steps (expected {length})")
        write_npz_deterministic(episode_path(cfg["out_dir"], seed),
                                {"obs": frames, "actions": actions, "rewards": rewards,
                                 "states": states, "seed": np.int64(seed)})
        if tick is not None:
            tick(length % 50)
        return int(seed), length, float(rewards.astype(np.float64).sum())


_WORKER: _Collector | None = None


def _worker_init(cfg: dict) -> None:
    global _WORKER
    _WORKER = _Collector(cfg)


def _worker_run(seed: int) -> tuple[int, int, float]:
    return _WORKER.run(seed)


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
                     episode_length: int = registry.EPISODE_LENGTH, progress: bool = True) -> list[Path]:
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

    registry.check_choice("task", task, registry.TASKS)
    registry.check_choice("setting", setting, registry.SETTINGS)
    registry.check_choice("source", source, registry.SOURCES)
    registry.check_choice("background pool", pool, registry.POOLS)
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
        t0 = time.perf_counter()
        workers = min(int(workers), max(1, len(todo)))
        with bar:
            if todo and workers == 1:
                collector = _Collector(cfg)
                for seed in todo:
                    collector.run(seed, tick=bar.update)
                collector.env.close()
            elif todo:
                old = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
                os.environ.update({k: "1" for k in old})
                try:
                    with mp.get_context("spawn").Pool(workers, _worker_init, (cfg,)) as pool_:
                        for _, frames, _ in pool_.imap_unordered(_worker_run, todo):
                            bar.update(frames)
                finally:
                    for k, v in old.items():
                        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        seconds = time.perf_counter() - t0
        paths = [episode_path(out_dir, s) for s in seeds]
        _write_summary(out_dir, config, seeds, paths, len(todo) * episode_length, seconds)
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


def _write_summary(out_dir: Path, config: dict, seeds, paths, frames: int, seconds: float) -> None:
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
                            "frames_per_second": round(frames / seconds, 1) if seconds > 0 and frames else None}}
    atomic_write_text(out_dir / "collect.json", json.dumps(summary, indent=2) + "\n")
