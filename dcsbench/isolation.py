"""Agent code runs in its own process: the harness's bookkeeping is out of its reach.

:class:`AgentProcess` starts one ``spawn``-ed worker process per run. The worker unpickles the
(unfitted) agent and serves ``fit``, ``act``, ``latent_actions``, ``init_untrained``, ``save``,
``load`` and ``num_parameters`` requests from the harness. What lives where:

* **worker (agent)**: the unlabeled frames and the labeled trajectories' frames and actions, in
  shared memory the parent filled (read-only arrays; no file path, no memory map of the
  cache), and the observations of each ``act`` / ``latent_actions`` call. It starts in an empty
  temporary folder with ``DCSBENCH_HOME``, ``DCSBENCH_DAVIS_DIR`` and ``DCSBENCH_REFERENCES``
  removed from its environment.
* **parent (harness)**: the environments, the returns, the eval split, every hidden action,
  the work folder, the checkpoints' final place and the record.

Everything the worker sends back is **bytes**: a JSON header plus, for arrays, raw little-endian
data with a declared dtype and shape. The parent never unpickles anything from the worker, so
an agent cannot run code in the harness. Replies are checked (kind, dtype, shape, finite);
complex or object arrays are refused. A crash (the worker dies), a hang (no answer within the
timeout: the worker is killed) or a malformed reply raises :class:`AgentError`: the run ends
with a clear error and no record.

Checkpoints: ``save`` / ``load`` get a fresh temporary folder, never the work folder; the
parent moves the files into and out of the work folder itself.

What a determined cheater could still do (and what review catches): agent code runs as the same
user on the same machine, so it can read any file that user can (the dataset cache, including
the eval split's actions; the DAVIS frames), write files anywhere the user can (including other
runs' records and work folders, or a process that outlives the worker), read the parent's
memory through ``/proc/PID/mem`` where ptrace is allowed (root, or ``ptrace_scope=0``), and use
the network if the machine has one. None of this is hidden: leaderboard entries are validated
for plausibility (returns bounded by the episode length, finite, strict types), a reference
entry is re-run by the maintainers from its code and config, and records cite the content
hash of the data the harness read. Run untrusted submissions in a container or as a separate
user for more.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import pickle
import shutil
import tempfile
import time
from contextlib import contextmanager
from multiprocessing import shared_memory
from pathlib import Path
from typing import Callable

import numpy as np

from dcsbench.agent_worker import (HIDDEN_ENV, MAX_BATCH, MAX_REPLY_BYTES, AgentError, array_reply,
                                   decode, parse_array, worker_main)

# --------------------------------------------------------------------------- parent side


@contextmanager
def _hidden_environment():
    """Remove :data:`HIDDEN_ENV` from the process environment while the worker is spawned."""
    saved = {k: os.environ.pop(k) for k in HIDDEN_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class AgentProcess:
    """One agent, running in a worker process, driven by the harness.

    Args:
        agent: the fresh, unfitted agent (pickled into the worker; its class must be importable).
        unlabeled: the unlabeled view (its frames are copied once into shared memory).
        labeled: the labeled view of the budget (frames are the train frames; actions copied).
        call_timeout_s: limit for one ``act`` / ``latent_actions`` / ``save`` / ``load`` call.
        fit_timeout_s: limit for ``fit`` (``None``: no limit).
        torch_threads: torch intra-op threads in the worker (``None``: torch's default).

    Use as a context manager; :meth:`close` stops the worker and frees the shared memory.
    """

    def __init__(self, agent, unlabeled, labeled, *, call_timeout_s: float = 300.0,
                 fit_timeout_s: float | None = None, torch_threads: int | None = None) -> None:
        self.call_timeout_s = float(call_timeout_s)
        self.fit_timeout_s = fit_timeout_s
        try:
            self._agent_bytes = pickle.dumps(agent)
        except Exception as err:  # noqa: BLE001
            raise AgentError(f"cannot send the agent to its process: {type(agent).__name__} "
                             f"is not picklable ({err}); define it in an importable module") from None
        frames = unlabeled._frames
        self._frames_shm = shared_memory.SharedMemory(create=True, size=max(frames.nbytes, 1))
        self._io_bytes = 2 * MAX_BATCH * int(np.prod(frames.shape[1:])) * unlabeled.frame_stack
        self._io_shm = shared_memory.SharedMemory(create=True, size=self._io_bytes)
        self._io = np.ndarray((self._io_bytes,), np.uint8, buffer=self._io_shm.buf)
        np.ndarray(frames.shape, np.uint8, buffer=self._frames_shm.buf)[:] = frames
        ids = list(labeled.trajectory_ids)
        starts = np.asarray(unlabeled._starts)
        lab_actions = np.concatenate([labeled.actions(i) for i in range(labeled.n_trajectories)])
        self._cwd = tempfile.mkdtemp(prefix="dcsbench-agent-")
        setup = {"frames": self._frames_shm.name, "frames_shape": frames.shape,
                 "io": self._io_shm.name, "io_bytes": self._io_bytes, "starts": starts.tolist(),
                 "lengths": np.asarray(unlabeled.lengths).tolist(), "labeled_ids": ids,
                 "labeled_actions": np.asarray(lab_actions, np.float32), "agent": self._agent_bytes,
                 "cwd": self._cwd, "torch_threads": torch_threads}
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=worker_main, args=(child, setup), daemon=True,
                                 name="dcsbench-agent")
        with _hidden_environment():
            self._proc.start()
        child.close()
        self._closed = False

    # ------------------------------------------------------------------ plumbing
    def _fail(self, what: str, why: str) -> AgentError:
        self._kill()
        return AgentError(f"{what}: {why}; the run is stopped and no record is written")

    def _recv(self, what: str, timeout: float | None,
              on_log: Callable[[dict, int | None], None] | None = None) -> tuple[dict, bytes]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready = self._conn.poll(left if left is not None else 1.0)
            except (EOFError, OSError):
                ready = True
            if not ready:
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._fail(what, f"no answer within {timeout:g} s (the agent hung)")
                if not self._proc.is_alive():
                    raise self._fail(what, f"the agent process died (exit code "
                                           f"{self._proc.exitcode})")
                continue
            try:
                buf = self._conn.recv_bytes(MAX_REPLY_BYTES)
            except (EOFError, OSError):
                self._proc.join(5)
                raise self._fail(what, f"the agent process died (exit code "
                                       f"{self._proc.exitcode})") from None
            header, payload = decode(buf)
            if header["kind"] == "log":
                if on_log is not None:
                    metrics = header.get("metrics")
                    step = header.get("step")
                    if isinstance(metrics, dict):
                        on_log({str(k): float(v) for k, v in metrics.items()
                                if isinstance(v, (int, float)) and math.isfinite(v)},
                               step if isinstance(step, int) else None)
                continue
            if header["kind"] == "error":
                raise self._fail(what, f"the agent raised:\n{str(header.get('message'))[-8000:]}")
            return header, payload

    def _call(self, what: str, msg: dict, timeout: float | None | str = "call", on_log=None):
        """Send one request and wait for its reply (``timeout="call"``: the per-call limit)."""
        if self._closed:
            raise AgentError(f"{what}: the agent process is closed")
        try:
            self._conn.send(msg)
        except (BrokenPipeError, OSError):
            raise self._fail(what, "the agent process is gone") from None
        return self._recv(what, self.call_timeout_s if timeout == "call" else timeout, on_log)

    def _put(self, *arrays: np.ndarray) -> list[list[int]]:
        pos, shapes = 0, []
        for a in arrays:
            a = np.ascontiguousarray(a, dtype=np.uint8)
            if pos + a.size > self._io_bytes:
                raise ValueError(f"batch too large for the agent's buffer (at most {MAX_BATCH})")
            self._io[pos:pos + a.size] = a.reshape(-1)
            pos += a.size
            shapes.append(list(a.shape))
        return shapes

    # ------------------------------------------------------------------ requests
    def fit(self, spec, budget: int, seed: int, logger=None) -> float:
        """Run ``agent.fit`` in the worker (seeded there); returns its wall seconds."""
        header, _ = self._call("agent.fit", {"op": "fit", "spec": spec, "budget": int(budget),
                                             "seed": int(seed)},
                               timeout=self.fit_timeout_s,
                               on_log=None if logger is None else logger.log)
        return float(header.get("seconds", 0.0))

    def act(self, obs: np.ndarray) -> np.ndarray:
        """``agent.act`` on a batch of stacked observations, checked: ``(B, A)`` real array."""
        obs = np.asarray(obs)
        out = []
        for s in range(0, len(obs), MAX_BATCH):
            (shape,) = self._put(obs[s:s + MAX_BATCH])
            header, payload = self._call("agent.act", {"op": "act", "shape": shape})
            if header["kind"] != "array":
                raise self._fail("agent.act", f"returned {header['kind']}, not an array")
            out.append(parse_array(header, payload, "agent.act"))
        return out[0] if len(out) == 1 else np.concatenate(out)

    def latent_actions(self, obs: np.ndarray, next_obs: np.ndarray, random: bool = False
                       ) -> np.ndarray | None:
        """``latent_actions`` of the fitted agent (or, with ``random``, of its untrained copy)."""
        if len(obs) > MAX_BATCH:
            parts = [self.latent_actions(obs[s:s + MAX_BATCH], next_obs[s:s + MAX_BATCH], random)
                     for s in range(0, len(obs), MAX_BATCH)]
            return None if parts[0] is None else np.concatenate(parts)
        shapes = self._put(obs, next_obs)
        header, payload = self._call("agent.latent_actions",
                                     {"op": "latents", "shape": shapes[0], "random": random})
        if header["kind"] == "none":
            return None
        if header["kind"] != "array":
            raise self._fail("agent.latent_actions", f"returned {header['kind']}")
        z = parse_array(header, payload, "agent.latent_actions")
        if len(z) != len(obs) or not np.all(np.isfinite(z)):
            raise self._fail("agent.latent_actions", f"returned shape {z.shape} or non-finite "
                                                     f"values for {len(obs)} pairs")
        return z

    def init_untrained(self, spec, seed: int) -> bool:
        """Build an untrained copy of the agent in the worker (for the random-features probe)."""
        header, _ = self._call("agent.init_untrained", {"op": "init_untrained", "spec": spec,
                                                        "seed": int(seed),
                                                        "agent": self._agent_bytes})
        return header.get("value") is True

    def drop_untrained(self) -> None:
        """Free the untrained copy."""
        self._call("drop_untrained", {"op": "drop_untrained"})

    def save(self, dest: Path) -> None:
        """Checkpoint the agent: it writes into a fresh temporary folder, moved to ``dest``."""
        tmp = Path(tempfile.mkdtemp(prefix="dcsbench-ckpt-"))
        try:
            self._call("agent.save", {"op": "save", "path": str(tmp)})
            staged = dest.with_name(dest.name + ".tmp")
            shutil.rmtree(staged, ignore_errors=True)
            shutil.copytree(tmp, staged, symlinks=True)
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(staged, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def load(self, src: Path) -> None:
        """Restore a checkpoint: a copy of ``src`` in a fresh temporary folder is loaded."""
        tmp = Path(tempfile.mkdtemp(prefix="dcsbench-ckpt-"))
        try:
            shutil.copytree(src, tmp / "ckpt", symlinks=True)
            self._call("agent.load", {"op": "load", "path": str(tmp / "ckpt")})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def num_parameters(self) -> int | None:
        """``agent.num_parameters()`` (``None`` if not applicable)."""
        header, _ = self._call("agent.num_parameters", {"op": "num_parameters"})
        v = header.get("value")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise self._fail("agent.num_parameters", f"returned {v!r}, not a count")
        return v

    # ------------------------------------------------------------------ lifetime
    def _kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)
        self._release()

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.close()
        except OSError:
            pass
        self._io = None
        for shm in (self._io_shm, self._frames_shm):
            try:
                shm.close()
                shm.unlink()
            except (FileNotFoundError, BufferError):
                pass
        shutil.rmtree(self._cwd, ignore_errors=True)

    def close(self) -> None:
        """Stop the worker (politely, then by force) and free the shared memory."""
        if self._closed:
            return
        try:
            self._conn.send({"op": "close"})
            if self._conn.poll(10):
                self._conn.recv_bytes(MAX_REPLY_BYTES)
        except (EOFError, OSError):
            pass
        self._proc.join(10)
        self._kill()

    def __enter__(self) -> "AgentProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcessAgent:
    """The same interface as :class:`AgentProcess`, with the agent in the harness's process.

    For debugging an agent (breakpoints, profilers) only: the agent can reach everything the
    harness holds, so :func:`dcsbench.protocol.evaluate` marks such records
    ``protocol_compliant=False``. Replies are checked exactly as from a worker.
    """

    def __init__(self, agent, unlabeled, labeled, *, call_timeout_s: float = 300.0,
                 fit_timeout_s: float | None = None, torch_threads: int | None = None) -> None:
        self.agent, self.unlabeled, self.labeled = agent, unlabeled, labeled
        self._agent_bytes = pickle.dumps(agent)
        self._random = None

    @staticmethod
    def _checked(value, what: str) -> np.ndarray | None:
        header, payload = decode(array_reply(value, what))
        if header["kind"] == "none":
            return None
        if header["kind"] == "error":
            raise AgentError(f"{what}: {header.get('message')}")
        return parse_array(header, payload, what)

    def fit(self, spec, budget: int, seed: int, logger=None) -> float:  # noqa: D102
        from dcsbench.agent import NullLogger
        from dcsbench.runinfo import seed_everything

        seed_everything(seed)
        t0 = time.perf_counter()
        self.agent.fit(self.unlabeled, self.labeled, spec, budget, seed, logger or NullLogger())
        return time.perf_counter() - t0

    def act(self, obs: np.ndarray) -> np.ndarray:  # noqa: D102
        out = self._checked(self.agent.act(obs), "agent.act")
        if out is None:
            raise AgentError("agent.act returned None")
        return out

    def latent_actions(self, obs, next_obs, random: bool = False):  # noqa: D102
        who = self._random if random else self.agent
        return self._checked(who.latent_actions(obs, next_obs), "agent.latent_actions")

    def init_untrained(self, spec, seed: int) -> bool:  # noqa: D102
        from dcsbench.runinfo import seed_everything

        seed_everything(seed)
        self._random = pickle.loads(self._agent_bytes)
        ok = bool(self._random.init_untrained(spec, seed))
        if not ok:
            self._random = None
        return ok

    def drop_untrained(self) -> None:  # noqa: D102
        self._random = None

    def save(self, dest: Path) -> None:  # noqa: D102
        staged = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        self.agent.save(str(staged))
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(staged, dest)

    def load(self, src: Path) -> None:  # noqa: D102
        self.agent.load(str(src))

    def num_parameters(self) -> int | None:  # noqa: D102
        n = self.agent.num_parameters()
        return None if n is None else int(n)

    def close(self) -> None:  # noqa: D102
        self._random = None

    def __enter__(self) -> "InProcessAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["AgentProcess", "InProcessAgent", "AgentError", "HIDDEN_ENV"]
