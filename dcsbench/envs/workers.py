"""Sub-environments stepped in a few worker processes, observations in one shared-memory array.

:class:`EnvWorkers` is the vector env of ``run_episodes(mode="workers")``. Gymnasium's
``AsyncVectorEnv`` (``mode="async"``) runs one process per sub-env and, for each step of each
sub-env, pickles the action, the reward, the flags and the ``info`` dict (the proprioceptive
state) through a pipe and merges the infos in the parent: with 64x64 frames a sub-env step is a
millisecond or two of work, so that per-sub-env traffic, and one process per sub-env competing
for few cores, cost more than the parallelism gains (it measured slower than ``sync`` on 2 cores;
``benchmarks/RESULTS-protocol.md``). Here instead:

* ``W`` spawned worker processes (``W`` <= cores) each own a *group* of sub-envs, round robin:
  sub-env ``i`` lives in worker ``i % W``, and steps its group synchronously, in one call;
* the actions, observations, rewards and done flags of all sub-envs live in shared-memory
  arrays: a step is one byte to each worker and one byte back, whatever the group size;
* the caller makes one batched ``act`` call over all sub-envs per step (:func:`run_wave`).

A sub-env is the same :func:`dcsbench.envs.make_env` as in ``sync`` mode, reset with the same
seed, so its frames, rewards and returns are bit-identical to the ``sync`` path's (tested),
whatever ``W`` and whatever the wave size. EGL contexts do not survive ``fork``: workers are
spawned. Each worker limits BLAS/OpenMP to one thread (:data:`WORKER_THREAD_ENV`).

A worker that raises, dies or stops answering makes the call raise :class:`EnvWorkerError` (with
the worker's traceback) after every worker has been stopped; :meth:`EnvWorkers.close` (also the
context-manager exit and garbage collection) stops them and frees the shared memory.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
import traceback
from multiprocessing import connection, get_context, shared_memory

import gymnasium as gym
import numpy as np

from dcsbench.catalogue import EPISODE_LENGTH, FRAME_STACK, POOLS, SETTINGS, SOURCES, TASKS, check_choice

#: Environment variables set in each worker before anything is imported: one BLAS/OpenMP
#: thread each. Mesa llvmpipe's rasterizer threads (``LP_NUM_THREADS``) are left at Mesa's
#: default: forcing 0 (render in the calling thread) cost the same CPU per step but measured
#: slower on the shared 2-core sandbox (``benchmarks/RESULTS-protocol.md``); NVIDIA's EGL
#: ignores it.
WORKER_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                     "NUMEXPR_NUM_THREADS": "1"}

_STEP, _OK = b"s", b"k"


class EnvWorkerError(RuntimeError):
    """A worker process of :class:`EnvWorkers` failed (raised, died or timed out)."""


def split_round_robin(n: int, workers: int) -> list[list[int]]:
    """Sub-env indices ``0..n-1`` of each of ``workers`` groups: index ``i`` in group ``i % workers``
    (group sizes differ by at most one; the first groups are the larger ones)."""
    return [list(range(w, n, workers)) for w in range(workers)]


def default_workers(num_envs: int) -> int:
    """Worker processes for ``num_envs`` sub-envs: one per core (or ``$DCSBENCH_EVAL_WORKERS``,
    e.g. to share the cores between runs evaluated at the same time), at most one per sub-env."""
    cap = os.environ.get("DCSBENCH_EVAL_WORKERS", "").strip()
    cores = int(cap) if cap.isdigit() and int(cap) > 0 else (os.cpu_count() or 1)
    return max(1, min(int(num_envs), cores))


# ------------------------------------------------------------------------------- worker side
def _attach(names: dict, capacity: int, obs_shape, action_dim: int):
    """Numpy views of the shared arrays (the segments are returned to keep them mapped)."""
    shms = {k: shared_memory.SharedMemory(name=v) for k, v in names.items()}
    arrays = {
        "obs": np.ndarray((capacity, *obs_shape), np.uint8, buffer=shms["obs"].buf),
        "actions": np.ndarray((capacity, action_dim), np.float32, buffer=shms["actions"].buf),
        "rewards": np.ndarray((capacity,), np.float64, buffer=shms["rewards"].buf),
        "flags": np.ndarray((capacity, 2), np.bool_, buffer=shms["flags"].buf),
    }
    return shms, arrays


def _make(cfg: dict):
    """One sub-env of the configuration ``cfg`` (see :attr:`EnvWorkers.cfg`)."""
    from dcsbench.envs import make_env

    return make_env(cfg["task"], cfg["setting"], backgrounds=cfg["backgrounds"],
                    source=cfg["source"], davis_dir=cfg["davis_dir"],
                    frame_stack=cfg["frame_stack"], episode_length=cfg["episode_length"])


def _worker_main(conn, slots: list[int], cfg: dict) -> None:
    """Worker loop: build the group's envs, report the spaces, then serve reset/step/close."""
    envs, shms, arrays = [], {}, None
    try:
        try:
            envs = [_make(cfg) for _ in slots]
            space = envs[0].observation_space
            conn.send(("ready", tuple(space.shape), int(np.prod(envs[0].action_space.shape))))
        except Exception:  # noqa: BLE001 - reported to the parent, which raises
            conn.send(("error", traceback.format_exc()))
            return
        active: list[tuple[int, object]] = []   # (global index, env) of the current wave
        autoreset = np.zeros(len(slots), np.bool_)
        while True:
            msg = conn.recv_bytes()
            if msg == _STEP:
                try:
                    obs, act, rew, flags = (arrays["obs"], arrays["actions"], arrays["rewards"],
                                            arrays["flags"])
                    for k, (i, env) in enumerate(active):
                        if autoreset[k]:   # Gymnasium's next-step autoreset, as SyncVectorEnv
                            o, _ = env.reset()
                            r, term, trunc = 0.0, False, False
                        else:
                            o, r, term, trunc, _ = env.step(act[i])
                        obs[i] = o
                        rew[i] = r
                        flags[i] = (term, trunc)
                        autoreset[k] = term or trunc
                    conn.send_bytes(_OK)
                except Exception:  # noqa: BLE001
                    conn.send_bytes(b"e" + traceback.format_exc().encode())
                continue
            cmd = pickle.loads(msg)
            if cmd[0] == "attach":
                shms, arrays = _attach(*cmd[1:])
                conn.send_bytes(_OK)
            elif cmd[0] == "reset":
                try:
                    # cmd[1]: [(global index, seed)] of this worker's part of the wave
                    active = [(i, envs[k]) for k, (i, _) in enumerate(cmd[1])]
                    autoreset[:] = False
                    for (i, env), (_, seed) in zip(active, cmd[1]):
                        o, _ = env.reset(seed=seed)
                        arrays["obs"][i] = o
                    conn.send_bytes(_OK)
                except Exception:  # noqa: BLE001
                    conn.send_bytes(b"e" + traceback.format_exc().encode())
            elif cmd[0] == "configure":
                try:
                    for env in envs:
                        env.close()
                    envs, active = [], []
                    cfg = cmd[1]
                    envs = [_make(cfg) for _ in slots]
                    conn.send_bytes(_OK)
                except Exception:  # noqa: BLE001
                    conn.send_bytes(b"e" + traceback.format_exc().encode())
            elif cmd[0] == "close":
                break
    except (EOFError, OSError, KeyboardInterrupt):
        pass   # the parent went away or was interrupted: just exit
    finally:
        arrays = None
        for env in envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing on the way out
                pass
        for shm in shms.values():
            try:
                shm.close()
            except Exception:  # noqa: BLE001
                pass


@contextlib.contextmanager
def worker_environment(extra: dict | None = None):
    """Set :data:`WORKER_THREAD_ENV` (values the user already set are kept) in this process's
    environment while worker processes are spawned: a spawned child inherits it before it
    imports numpy or MuJoCo, which read these at import."""
    want = {k: v for k, v in {**WORKER_THREAD_ENV, **(extra or {})}.items() if k not in os.environ}
    os.environ.update(want)
    try:
        yield
    finally:
        for k in want:
            os.environ.pop(k, None)


# ------------------------------------------------------------------------------- parent side
class EnvWorkers(gym.vector.VectorEnv):
    """``capacity`` sub-envs of :func:`dcsbench.envs.make_env` in ``workers`` spawned processes.

    Args:
        task, setting, backgrounds, source, davis_dir, frame_stack, episode_length: as
            :func:`dcsbench.envs.make_vector_env`.
        capacity: sub-envs built (the largest wave).
        workers: worker processes (default :func:`default_workers`: one per core, at most
            ``capacity``); sub-env ``i`` runs in worker ``i % workers``.
        timeout: seconds one reset/step/configure may take before the workers are stopped
            and :class:`EnvWorkerError` is raised; ``startup_timeout``: the same for start-up.
        copy_obs: return copies of the observations (default). ``False`` returns a view of the
            shared array, valid until the next ``reset``/``step`` (what the evaluator uses).

    Gymnasium vector-env API: ``reset(seed=[s0, ..., s_{n-1}])`` starts a wave of ``n <=
    capacity`` sub-envs (``num_envs`` becomes ``n``; ``seed`` is required, which keeps every
    episode exact), ``step(actions)`` with ``actions`` of shape ``(n, A)`` returns
    ``(obs, rewards, terminated, truncated, infos)``; ``infos`` is ``{}`` (the proprioceptive
    state stays in the workers: agents never see it). Sub-envs auto-reset on the step after
    an episode ends (next-step mode, as ``SyncVectorEnv``).
    """

    def __init__(self, task: str, setting: str = "distractors", backgrounds: str = "train",
                 source: str = "procedural", capacity: int = 1, workers: int | None = None,
                 davis_dir=None, frame_stack: int = FRAME_STACK,
                 episode_length: int = EPISODE_LENGTH, timeout: float = 300.0,
                 copy_obs: bool = True, startup_timeout: float = 600.0):
        check_choice("task", task, TASKS)
        check_choice("setting", setting, SETTINGS)
        check_choice("background pool", backgrounds, POOLS)
        check_choice("background source", source, SOURCES)
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        workers = default_workers(capacity) if workers is None else int(workers)
        if not 1 <= workers:
            raise ValueError(f"workers must be >= 1, got {workers}")
        workers = min(workers, capacity)
        self.capacity, self.n_workers, self.timeout = capacity, workers, float(timeout)
        self.copy_obs = bool(copy_obs)
        self.cfg = {"task": task, "setting": setting, "backgrounds": backgrounds, "source": source,
                    "davis_dir": None if davis_dir is None else str(davis_dir),
                    "frame_stack": int(frame_stack), "episode_length": int(episode_length)}
        self._procs, self._conns, self._shms, self.closed = [], [], {}, False
        self._groups = split_round_robin(capacity, workers)
        ctx = get_context("spawn")
        try:
            for slots in self._groups:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker_main, args=(child, slots, self.cfg),
                                   daemon=True, name=f"dcsbench-env-worker-{len(self._procs)}")
                with worker_environment({"MUJOCO_GL": "egl"}):
                    proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            replies = self._gather(pickled=True, what="start-up", timeout=startup_timeout)
            obs_shape, action_dim = replies[0][1], replies[0][2]
            self._alloc(obs_shape, action_dim)
            names = {k: v.name for k, v in self._shms.items()}
            self._broadcast(pickle.dumps(
                ("attach", names, capacity, obs_shape, action_dim)))
            self._gather(what="attach")
        except BaseException:
            self.close()
            raise
        self.single_observation_space = gym.spaces.Box(0, 255, obs_shape, np.uint8)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._set_num_envs(capacity)

    # -- plumbing ------------------------------------------------------------------------------
    def _alloc(self, obs_shape, action_dim) -> None:
        c = self.capacity
        sizes = {"obs": c * int(np.prod(obs_shape)), "actions": c * action_dim * 4,
                 "rewards": c * 8, "flags": c * 2}
        for k, size in sizes.items():
            self._shms[k] = shared_memory.SharedMemory(create=True, size=max(1, size))
        self._obs = np.ndarray((c, *obs_shape), np.uint8, buffer=self._shms["obs"].buf)
        self._actions = np.ndarray((c, action_dim), np.float32, buffer=self._shms["actions"].buf)
        self._rewards = np.ndarray((c,), np.float64, buffer=self._shms["rewards"].buf)
        self._flags = np.ndarray((c, 2), np.bool_, buffer=self._shms["flags"].buf)

    def _set_num_envs(self, n: int) -> None:
        self.num_envs = int(n)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, n)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, n)

    def _broadcast(self, msg: bytes, which=None) -> None:
        for w in (range(self.n_workers) if which is None else which):
            try:
                self._conns[w].send_bytes(msg)
            except (OSError, ValueError) as err:
                self._fail(f"worker {w} is gone ({err})")

    def _fail(self, message: str):
        self._shutdown(grace=0.5)
        raise EnvWorkerError(f"environment worker failed: {message}")

    def _gather(self, which=None, pickled: bool = False, what: str = "step",
                timeout: float | None = None) -> list:
        """Wait for one reply from each worker in ``which``; raise on errors, deaths, timeouts."""
        which = list(range(self.n_workers)) if which is None else list(which)
        pending = {self._conns[w]: w for w in which}
        sentinels = {self._procs[w].sentinel: w for w in which}
        replies: dict[int, object] = {}
        timeout = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            ready = connection.wait(list(pending) + list(sentinels), timeout=max(0.0, left))
            if not ready:
                self._fail(f"{what} took longer than {timeout:g} s (workers "
                           f"{sorted(pending.values())} did not answer)")
            for r in ready:
                if r in pending:
                    w = pending.pop(r)
                    sentinels.pop(self._procs[w].sentinel, None)
                    try:
                        reply = r.recv() if pickled else r.recv_bytes()
                    except (EOFError, OSError):
                        self._fail(f"worker {w} exited during {what} "
                                   f"(exit code {self._procs[w].exitcode})")
                    if pickled and reply[0] == "error":
                        self._fail(f"worker {w} raised during {what}:\n{reply[1]}")
                    if not pickled and reply != _OK:
                        self._fail(f"worker {w} raised during {what}:\n"
                                   f"{bytes(reply[1:]).decode(errors='replace')}")
                    replies[w] = reply
            for r in ready:
                w = sentinels.get(r)
                if w is None or self._conns[w] not in pending:
                    continue
                if self._conns[w].poll():   # its last words are still in the pipe: read them
                    continue
                self._procs[w].join(1.0)
                self._fail(f"worker {w} died during {what} "
                           f"(exit code {self._procs[w].exitcode})")
        return [replies[w] for w in which]

    def _active_workers(self) -> list[int]:
        return list(range(min(self.n_workers, self.num_envs)))

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        """Start a wave: one sub-env per seed in ``seed`` (a list of ``n <= capacity`` ints)."""
        if self.closed:
            raise EnvWorkerError("the environment workers are closed")
        if seed is None or np.isscalar(seed):
            raise ValueError("EnvWorkers.reset needs an explicit list of seeds (one per sub-env)")
        seeds = [int(s) for s in seed]
        if not 1 <= len(seeds) <= self.capacity:
            raise ValueError(f"{len(seeds)} seeds for {self.capacity} sub-envs")
        self._set_num_envs(len(seeds))
        groups = split_round_robin(len(seeds), self.n_workers)
        active = self._active_workers()
        for w in active:
            self._conns[w].send_bytes(pickle.dumps(("reset", [(i, seeds[i]) for i in groups[w]])))
        self._gather(active, what="reset")
        return self._view(), {}

    def step(self, actions):
        """Step every sub-env of the wave; ``actions`` has shape ``(num_envs, A)``."""
        if self.closed:
            raise EnvWorkerError("the environment workers are closed")
        n = self.num_envs
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (n, self.single_action_space.shape[0]):
            raise ValueError(f"actions of shape {actions.shape}, expected "
                             f"{(n, self.single_action_space.shape[0])}")
        self._actions[:n] = actions
        active = self._active_workers()
        self._broadcast(_STEP, active)
        self._gather(active, what="step")
        return (self._view(), self._rewards[:n].copy(), self._flags[:n, 0].copy(),
                self._flags[:n, 1].copy(), {})

    def configure(self, **changes) -> bool:
        """Rebuild every sub-env with other ``backgrounds``, ``setting``, ``source``,
        ``davis_dir`` or ``episode_length``, keeping the processes (no second start-up: e.g. the
        train and then the novel background pool of one evaluation); returns whether anything
        changed. The task and frame stack (the shapes of the shared arrays) stay."""
        if self.closed:
            raise EnvWorkerError("the environment workers are closed")
        for k in ("task", "frame_stack"):
            if k in changes and changes.pop(k) != self.cfg[k]:
                raise ValueError(f"cannot change {k} of running environment workers")
        unknown = set(changes) - {"backgrounds", "setting", "source", "davis_dir", "episode_length"}
        if unknown:
            raise ValueError(f"unknown environment settings {sorted(unknown)}")
        if "davis_dir" in changes and changes["davis_dir"] is not None:
            changes["davis_dir"] = str(changes["davis_dir"])
        if "episode_length" in changes:
            changes["episode_length"] = int(changes["episode_length"])
        cfg = {**self.cfg, **changes}
        check_choice("task", cfg["task"], TASKS)
        check_choice("setting", cfg["setting"], SETTINGS)
        check_choice("background pool", cfg["backgrounds"], POOLS)
        check_choice("background source", cfg["source"], SOURCES)
        if cfg == self.cfg:
            return False
        self._broadcast(pickle.dumps(("configure", cfg)))
        self._gather(what="configure")
        self.cfg = cfg
        return True

    def _view(self) -> np.ndarray:
        obs = self._obs[:self.num_envs]
        return obs.copy() if self.copy_obs else obs

    def close(self, **kwargs) -> None:
        """Stop the workers (politely, then by force after 3 s) and free the shared memory."""
        self._shutdown(grace=3.0)

    def _shutdown(self, grace: float) -> None:
        if getattr(self, "closed", True):
            return
        self.closed = True
        for conn in self._conns:
            try:
                conn.send_bytes(pickle.dumps(("close",)))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + grace
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()   # SIGKILL: also ends a stopped or hung process at once
                proc.join(2.0)
        for conn in self._conns:
            conn.close()
        self._obs = self._actions = self._rewards = self._flags = None
        for shm in self._shms.values():
            try:
                shm.close()
                shm.unlink()
            except (FileNotFoundError, BufferError):
                pass
        self._shms = {}

    @property
    def processes(self) -> list:
        """The worker processes (for tests and monitoring)."""
        return list(self._procs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
