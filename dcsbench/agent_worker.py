"""The agent's side of :mod:`dcsbench.isolation`: the worker process and the wire format.

The worker (:func:`worker_main`, the target of a ``spawn``-ed process) rebuilds the unlabeled and
labeled views over the shared memory the harness filled, unpickles the agent and serves the
harness's requests until told to close. Everything it sends back is **bytes**: a JSON header
line, plus raw array data for array replies (:func:`array_reply`); the harness rebuilds arrays
with :func:`parse_array`, which refuses anything but real numbers, and never unpickles a reply.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import time
import traceback
from multiprocessing import shared_memory
from typing import Any

import numpy as np

#: Environment variables the worker never sees (where the data and the references live).
HIDDEN_ENV = ("DCSBENCH_HOME", "DCSBENCH_DAVIS_DIR", "DCSBENCH_REFERENCES")

#: Largest reply (bytes) accepted from the worker: 256 pairs x 16,384-d float64 latents.
MAX_REPLY_BYTES = 256 * 16384 * 8 + 4096

#: Largest batch (pairs) the harness sends in one call.
MAX_BATCH = 256

#: Dtype kinds accepted in array replies: bool, signed/unsigned int, float.
_REAL_KINDS = "biuf"


class AgentError(RuntimeError):
    """The agent's process crashed, hung, raised or answered something malformed."""


# --------------------------------------------------------------------------- wire format


def encode(header: dict, payload: bytes = b"") -> bytes:
    """One message: the JSON ``header`` line, then ``payload``."""
    return json.dumps(header).encode() + b"\n" + payload


def decode(buf: bytes) -> tuple[dict, bytes]:
    """``(header, payload)`` of a message; :class:`AgentError` if it is malformed."""
    head, sep, payload = buf.partition(b"\n")
    if not sep:
        raise AgentError("malformed reply from the agent process (no header)")
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AgentError("malformed reply from the agent process (header is not JSON)") from None
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
        raise AgentError("malformed reply from the agent process (no kind)")
    return header, payload


def array_reply(value: Any, what: str) -> bytes:
    """Worker side: an ndarray (or None) as a reply; anything else as an error reply."""
    if value is None:
        return encode({"kind": "none"})
    try:
        arr = np.asarray(value)
    except Exception as err:  # noqa: BLE001 - reported to the harness
        return encode({"kind": "error", "message": f"{what} returned {type(value).__name__}, "
                        f"not an array ({err})"})
    if arr.dtype.kind not in _REAL_KINDS:
        return encode({"kind": "error", "message": f"{what} returned a {arr.dtype} array; "
                        "expected real numbers (float)"})
    arr = np.ascontiguousarray(arr)
    return encode({"kind": "array", "dtype": arr.dtype.newbyteorder("<").str,
                    "shape": list(arr.shape)}, arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def parse_array(header: dict, payload: bytes, what: str) -> np.ndarray:
    """Parent side: rebuild an array reply, refusing anything but a real numeric dtype."""
    try:
        dtype = np.dtype(str(header.get("dtype")))
        shape = tuple(int(s) for s in header.get("shape"))
    except (TypeError, ValueError):
        raise AgentError(f"{what}: malformed array reply") from None
    if dtype.kind not in _REAL_KINDS or dtype.hasobject:
        raise AgentError(f"{what} returned dtype {dtype}; expected real numbers")
    if any(s < 0 for s in shape) or math.prod(shape) * dtype.itemsize != len(payload):
        raise AgentError(f"{what}: array reply of {len(payload)} bytes does not match "
                         f"shape {shape} and dtype {dtype}")
    return np.frombuffer(payload, dtype=dtype).reshape(shape)


# --------------------------------------------------------------------------- worker side


class _PipeLogger:
    """The :class:`~dcsbench.agent.Logger` inside the worker: forwards finite scalars."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:  # noqa: D102
        clean = {}
        for k, v in dict(metrics).items():
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                clean[str(k)[:64]] = f
        self.conn.send_bytes(encode({"kind": "log", "step": None if step is None else int(step),
                                      "metrics": clean}))


def _shm_array(name: str, shape, dtype) -> tuple[shared_memory.SharedMemory, np.ndarray]:
    # The spawned worker shares the parent's resource tracker, whose registry is a set: the
    # parent's unlink() unregisters the block once for both.
    shm = shared_memory.SharedMemory(name=name)
    arr = np.ndarray(tuple(shape), dtype=dtype, buffer=shm.buf)
    return shm, arr


def worker_main(conn, setup: dict) -> None:  # pragma: no cover - runs in the child process
    """Entry point of the worker process: build the views, then serve requests until 'close'."""
    from dcsbench.data.views import ArrayLabeledView, ArrayUnlabeledView, readonly_copy

    os.chdir(setup["cwd"])
    for key in HIDDEN_ENV:
        os.environ.pop(key, None)
    if setup.get("torch_threads"):
        try:
            import torch
            torch.set_num_threads(int(setup["torch_threads"]))
        except ImportError:
            pass
    frames_shm, frames = _shm_array(setup["frames"], setup["frames_shape"], np.uint8)
    io_shm, io = _shm_array(setup["io"], (setup["io_bytes"],), np.uint8)
    frames.flags.writeable = False
    starts, lengths = np.asarray(setup["starts"]), np.asarray(setup["lengths"])
    ids = list(setup["labeled_ids"])
    unlabeled = ArrayUnlabeledView(frames, starts, lengths)
    labeled = ArrayLabeledView(frames, starts[ids], lengths[ids], readonly_copy(setup["labeled_actions"]),
                          ids)
    agent = pickle.loads(setup["agent"])
    random_agent = None
    del setup

    def obs_from_io(shapes):
        out, pos = [], 0
        for shape in shapes:
            n = math.prod(shape)
            out.append(io[pos:pos + n].reshape(shape).copy())
            pos += n
        return out

    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        op = msg["op"]
        try:
            if op == "close":
                conn.send_bytes(encode({"kind": "ok"}))
                break
            if op == "fit":
                from dcsbench.runinfo import seed_everything
                seed_everything(msg["seed"])
                t0 = time.perf_counter()
                agent.fit(unlabeled, labeled, msg["spec"], msg["budget"], msg["seed"],
                          _PipeLogger(conn))
                reply = encode({"kind": "ok", "seconds": time.perf_counter() - t0})
            elif op == "act":
                (obs,) = obs_from_io([msg["shape"]])
                reply = array_reply(agent.act(obs), "agent.act")
            elif op == "latents":
                obs, nxt = obs_from_io([msg["shape"], msg["shape"]])
                who = random_agent if msg.get("random") else agent
                if who is None:
                    raise RuntimeError("no untrained copy was built")
                reply = array_reply(who.latent_actions(obs, nxt), "agent.latent_actions")
            elif op == "init_untrained":
                from dcsbench.runinfo import seed_everything
                seed_everything(msg["seed"])
                random_agent = pickle.loads(msg["agent"])
                ok = bool(random_agent.init_untrained(msg["spec"], msg["seed"]))
                if not ok:
                    random_agent = None
                reply = encode({"kind": "ok", "value": ok})
            elif op == "drop_untrained":
                random_agent = None
                reply = encode({"kind": "ok"})
            elif op == "save":
                agent.save(msg["path"])
                reply = encode({"kind": "ok"})
            elif op == "load":
                agent.load(msg["path"])
                reply = encode({"kind": "ok"})
            elif op == "num_parameters":
                n = agent.num_parameters()
                reply = encode({"kind": "ok", "value": None if n is None else int(n)})
            else:
                reply = encode({"kind": "error", "message": f"unknown request {op!r}"})
        except Exception:  # noqa: BLE001 - the harness reports it
            reply = encode({"kind": "error", "message": traceback.format_exc()[-8000:]})
        conn.send_bytes(reply)
    del unlabeled, labeled, frames
    frames_shm.close()
    io_shm.close()
