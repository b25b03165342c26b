"""Training-loop pieces shared by the baselines (the method files hold only the method's logic).

* Config: :func:`from_dict` builds a (nested) config dataclass from a plain dict, rejecting unknown
  keys with the list of valid ones; :class:`ActorStage` / :class:`DecoderStage` are the stage
  configs shared by several methods.
* :class:`Runtime`: device, bf16 autocast (CUDA only), channels_last, optional ``torch.compile``,
  and uint8 HWC stacks -> float NCHW in ``[-1, 1]`` (the authors' ``normalize_img``).
* :class:`TransitionSampler`: random ``(o_t, o_{t+1}, o_{t+k}[, a_t])`` batches built from a view's
  public API (``frames``/``actions``) with the view's semantics (first frame repeated at the
  episode start, never crossing the episode end). Frames are gathered on the GPU when they fit there.
* :func:`linear_with_warmup` (the authors' schedule: linear warmup, then linear decay to 0),
  :func:`train_loop` (one optimizer + that schedule + logging), :class:`LinearProbe`.
* :class:`BaselineAgent`: the :class:`dcsbench.agent.Agent` plumbing (config, act, save/load,
  parameter counts) every baseline inherits.

"Epochs" of the stages that train on the unlabeled view are measured in that view's transitions:
``updates = ceil(epochs * n_transitions / batch_size)``; batches are drawn uniformly at random
(with replacement) rather than by shuffled passes *(choice, documented)*.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import queue
import random
import tempfile
import threading
import time
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dcsbench.agent import Agent, EnvSpec, NullLogger
from dcsbench.registry import check_choice
from baselines.nets import ActionDecoder, Actor

# ----------------------------------------------------------------------------------- config


@dataclass
class ActorStage:
    """A behaviour-cloning stage: ResNet actor regressing targets from ``o_t``.

    ``updates > 0`` fixes the number of updates; otherwise ``epochs`` (over the unlabeled view's
    transitions) sets it. ``warmup_epochs`` is measured the same way (0: no warmup).
    """

    encoder_scale: int = 32
    batch_size: int = 512
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: float = 10.0
    updates: int = 0
    warmup_epochs: float = 0.0


@dataclass
class DecoderStage:
    """Stage 3 of the LAM methods: MLP latent -> action on the labeled view, actor frozen."""

    hidden_dim: int = 256
    batch_size: int = 512
    lr: float = 3e-4
    updates: int = 2500


@dataclass
class RuntimeConfig:
    """Where and how to run: ``device`` ``"auto"`` picks CUDA when available; ``bf16`` autocast
    applies on CUDA only; ``data_on_device`` ``"auto"`` copies the frames to the GPU when they take
    less than ``data_on_device_max_gb``."""

    device: str = "auto"
    bf16: bool = True
    compile: bool = False
    channels_last: bool = True
    data_on_device: str = "auto"
    data_on_device_max_gb: float = 40.0
    log_every: int = 100


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Light type check/coercion of one config value against a dataclass field type."""
    if isinstance(tp, str):
        tp = {"int": int, "float": float, "bool": bool, "str": str}.get(tp, Any)
    origin = typing.get_origin(tp)
    if tp in (int, float) and isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config {where}: expected true/false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ValueError(f"config {where}: expected an integer, got {value!r}")
        value = int(value)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config {where}: expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if isinstance(value, bool):  # YAML reads true/false unquoted
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise ValueError(f"config {where}: expected a string, got {value!r}")
    elif (tp is dict or origin is dict) and not isinstance(value, dict):
        raise ValueError(f"config {where}: expected a mapping, got {value!r}")
    return value


def from_dict(cls: type, data: dict | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data`` (nested dicts for nested dataclasses).

    Missing keys keep their defaults; unknown keys raise ``ValueError`` listing the valid keys.
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    kwargs = {}
    valid = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        try:
            check_choice("config key", key, valid)
        except ValueError as err:
            raise ValueError(f"{err} (in {where or 'top level'})") from None
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ValueError(f"config {path}: expected a mapping, got {value!r}")
            kwargs[key] = from_dict(tp, value, path)
        else:
            kwargs[key] = _coerce(value, tp, path)
    return cls(**kwargs)


# ----------------------------------------------------------------------------------- runtime


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return the numpy generator used for batch sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


class Runtime:
    """Device placement and numerics for one agent (see :class:`RuntimeConfig`)."""

    def __init__(self, cfg: RuntimeConfig) -> None:
        name = cfg.device
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(name)
        self.cuda = self.device.type == "cuda"
        self.bf16 = cfg.bf16 and self.cuda
        self.compile = cfg.compile
        self.channels_last = cfg.channels_last
        self.cfg = cfg
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    def autocast(self):
        """bf16 autocast on CUDA (if enabled), a no-op context otherwise."""
        if self.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def place(self, module: nn.Module) -> nn.Module:
        """Move ``module`` to the device (channels_last memory format for conv nets)."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def maybe_compile(self, fn):
        """``torch.compile(fn)`` when enabled, else ``fn`` (keep the original module for state dicts)."""
        return torch.compile(fn) if self.compile else fn

    def to_input(self, obs) -> torch.Tensor:
        """uint8 HWC stacks ``(B, 64, 64, C)`` (numpy or tensor) -> float ``(B, C, 64, 64)`` in
        ``[-1, 1]`` (``2 * x / 255 - 1``, as the authors' ``normalize_img``).

        The NCHW result is a permuted view of the HWC data, i.e. already channels_last.
        """
        if isinstance(obs, np.ndarray):
            obs = torch.from_numpy(np.ascontiguousarray(obs))
        if obs.device != self.device:
            obs = obs.to(self.device, non_blocking=True)
        x = obs.permute(0, 3, 1, 2).float().mul_(2.0 / 255.0).sub_(1.0)
        return x if self.channels_last else x.contiguous()


# ----------------------------------------------------------------------------------- data


class TransitionSampler:
    """Random batches of stacked observations drawn from a view through its public API.

    Args:
        view: an ``UnlabeledView`` or ``LabeledView`` (actions are read iff ``labeled``).
        runtime: the agent's :class:`Runtime` (batches are returned on its device).
        labeled: also return ``action`` = ``a_t``.
    """

    def __init__(self, view, runtime: Runtime, labeled: bool = False) -> None:
        self.runtime = runtime
        self.frame_stack = int(getattr(view, "frame_stack", 3))
        self.frames = [view.frames(i) for i in range(view.n_trajectories)]
        self.lengths = np.array([len(f) for f in self.frames], dtype=np.int64)
        self.cum = np.concatenate([[0], np.cumsum(self.lengths)])
        self.n_transitions = int((self.lengths - 1).sum())
        self.actions = np.concatenate([view.actions(i) for i in range(view.n_trajectories)]) if labeled else None
        nbytes = int(self.cum[-1]) * self.frames[0][0].nbytes
        mode = check_choice("runtime.data_on_device", runtime.cfg.data_on_device, ("auto", "true", "false"))
        self.on_device = runtime.cuda and (mode == "true" or (
            mode == "auto" and nbytes < runtime.cfg.data_on_device_max_gb * 2**30))
        if self.on_device:
            self.store = torch.empty((int(self.cum[-1]), *self.frames[0].shape[1:]), dtype=torch.uint8,
                                     device=runtime.device)
            for i, f in enumerate(self.frames):
                self.store[self.cum[i]:self.cum[i + 1]] = torch.from_numpy(np.array(f)).to(runtime.device)

    def draw(self, n: int, rng: np.random.Generator, max_offset: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random ``(traj, t, k)``: k uniform in ``1..max_offset``, frames equally likely, ``t+k <= T-1``."""
        if int(self.lengths.min()) <= max_offset:
            raise ValueError(f"offset {max_offset} needs trajectories longer than {max_offset} frames")
        k = rng.integers(1, max_offset + 1, size=n)
        traj = np.searchsorted(self.cum, rng.integers(0, int(self.cum[-1]), size=n), side="right") - 1
        t = (rng.random(n) * (self.lengths[traj] - k)).astype(np.int64)
        return traj, t, k

    def _frame_index(self, t: np.ndarray) -> np.ndarray:
        """``(B, S)`` in-trajectory frame indices of the stacks ending at steps ``t``."""
        back = np.arange(-(self.frame_stack - 1), 1)
        return np.maximum(t[:, None] + back[None], 0)

    def _to_stacks(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, S, H, W, C)`` frames -> ``(B, H, W, S * C)`` stacks (oldest frame first)."""
        b, s, h, w, c = x.shape
        return x.permute(0, 2, 3, 1, 4).reshape(b, h, w, s * c)

    def stacks(self, traj: np.ndarray, t: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, 64, 64, 3 * frame_stack)`` stacks of steps ``t`` of trajectories ``traj``, on device."""
        return self.sample_at(traj, t, np.ones_like(t), ("obs",))["obs"]

    def sample_at(self, traj: np.ndarray, t: np.ndarray, k: np.ndarray, keys: Iterable[str],
                  to_device: bool = True) -> dict[str, Any]:
        """The batch of :meth:`sample` for given ``(traj, t, k)``. With ``to_device=False`` (host
        gathering only) tensors stay on the host (pinned on CUDA machines): see :meth:`to_device`."""
        keys = tuple(keys)
        steps = {"obs": t, "next_obs": t + 1, "future_obs": t + k}
        unknown = [key for key in keys if key not in (*steps, "action", "offset")]
        if unknown:
            raise ValueError(f"unknown batch keys {unknown}; valid: obs, next_obs, future_obs, action, offset")
        img = [key for key in keys if key in steps]
        out: dict[str, Any] = {"index": np.stack([traj, t], 1)}
        if img:
            idx = np.concatenate([self._frame_index(steps[key]) for key in img], axis=1)
            if self.on_device:
                g = torch.from_numpy(idx + self.cum[traj][:, None]).to(self.runtime.device, non_blocking=True)
                x = self.store[g]  # (B, n_keys * S, H, W, C)
            else:
                x = torch.from_numpy(np.stack([self.frames[tr][ix] for tr, ix in zip(traj, idx)]))
                if self.runtime.cuda:
                    x = x.pin_memory()
            for key, part in zip(img, x.split(self.frame_stack, dim=1)):
                out[key] = self._to_stacks(part)
        if "action" in keys:
            out["action"] = torch.from_numpy(self.actions[self.cum[traj] + t])
        if "offset" in keys:
            out["offset"] = torch.from_numpy(k)
        return self.to_device(out) if to_device else out

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move a batch's tensors to the runtime device (non-blocking)."""
        dev = self.runtime.device
        return {k: v.to(dev, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def sample(self, n: int, rng: np.random.Generator, max_offset: int = 1,
               keys: Iterable[str] = ("obs", "next_obs"), to_device: bool = True) -> dict[str, Any]:
        """A batch with the requested ``keys`` among ``obs`` (o_t), ``next_obs`` (o_{t+1}),
        ``future_obs`` (o_{t+k}), ``action`` (a_t, labeled only), ``offset`` (k); ``index`` = (traj, t)
        as numpy. Image stacks are uint8 ``(B, 64, 64, 9)`` tensors on the device."""
        traj, t, k = self.draw(n, rng, max_offset)
        return self.sample_at(traj, t, k, keys, to_device)

    def stream(self, n: int, rng: np.random.Generator, max_offset: int = 1,
               keys: Iterable[str] = ("obs", "next_obs"), prefetch: bool | None = None) -> Iterator[dict]:
        """Endless batches of :meth:`sample` drawn with a child generator of ``rng``.

        ``prefetch`` (default: when frames are gathered on the host for a CUDA device) gathers
        the next batches in a background thread so that the GPU does not wait for the host. The
        batches are the same with and without prefetching (one producer, its own generator).
        """
        child = np.random.default_rng(int(rng.integers(2**63)))
        keys = tuple(keys)
        if prefetch is None:
            prefetch = self.runtime.cuda and not self.on_device
        if not prefetch:
            while True:
                yield self.sample(n, child, max_offset, keys)
        q: queue.Queue = queue.Queue(maxsize=3)
        stop = threading.Event()

        def produce() -> None:
            try:
                while not stop.is_set():
                    item = self.sample(n, child, max_offset, keys, to_device=False)
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
            except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
                q.put(err)

        thread = threading.Thread(target=produce, daemon=True, name="batch-prefetch")
        thread.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield self.to_device(item)
        finally:
            stop.set()


def epochs_to_updates(epochs: float, n_transitions: int, batch_size: int) -> int:
    """``ceil(epochs * n_transitions / batch_size)`` (0 epochs -> 0 updates)."""
    return int(math.ceil(epochs * n_transitions / batch_size)) if epochs > 0 else 0


# ----------------------------------------------------------------------------------- training


def linear_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The authors' schedule: factor ``step / warmup`` for ``step < warmup`` (so the first update
    of a warmed-up stage has lr 0), then ``1 - (step - warmup) / (total - warmup)``, reaching 0 at
    ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return max(0.0, 1.0 - (step - warmup) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(params, lr: float, weight_decay: float, runtime: Runtime) -> torch.optim.Optimizer:
    """AdamW, fused on CUDA; as the authors' ``get_optim_groups``, weight decay applies only to
    parameters with at least 2 dimensions (never to biases and norms). Plain Adam at decay 0."""
    params = [p for p in params if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
              {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=runtime.cuda or None)


def train_loop(tag: str, params, step_fn: Callable[[int], tuple[torch.Tensor, dict]], updates: int,
               lr: float, warmup: int, runtime: Runtime, logger, weight_decay: float = 0.0,
               extra_optimizers: tuple = (), after_step: Callable[[int], None] | None = None) -> dict:
    """Run ``updates`` optimizer steps of ``step_fn`` (which samples its own batch and returns
    ``(loss, metrics)``) under autocast, with :func:`linear_with_warmup`.

    ``extra_optimizers`` (e.g. a linear probe's) are stepped after the main one with the same
    backward pass (their parameters only see detached inputs). ``after_step(i)`` runs after each
    update (e.g. an EMA target update). Logs ``{tag}/{metric}`` every ``log_every`` updates and
    returns the last logged metrics.
    """
    opt = make_optimizer(params, lr, weight_decay, runtime)
    sched = linear_with_warmup(opt, warmup, updates)
    every = max(1, runtime.cfg.log_every)
    last: dict = {}
    t0 = time.perf_counter()
    for i in range(updates):
        with runtime.autocast():
            loss, metrics = step_fn(i)
        opt.zero_grad(set_to_none=True)
        for o in extra_optimizers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for o in extra_optimizers:
            o.step()
        sched.step()
        if after_step is not None:
            after_step(i)
        if i % every == 0 or i == updates - 1:
            last = {f"{tag}/{k}": float(v.detach() if torch.is_tensor(v) else v) for k, v in metrics.items()}
            last[f"{tag}/lr"] = sched.get_last_lr()[0]
            last[f"{tag}/updates_per_s"] = (i + 1) / (time.perf_counter() - t0)
            logger.log(last, step=i)
    return last


class LinearProbe(nn.Module):
    """Linear map latent action -> true action with its own Adam optimizer.

    It only ever sees ``z.detach()``, so it never sends gradient into the model; its MSE on
    labeled batches is the paper's latent-action-quality metric (logged as ``probe_mse``).
    """

    def __init__(self, latent_dim: int, action_dim: int, lr: float) -> None:
        super().__init__()
        self.linear = nn.Linear(latent_dim, action_dim)
        self.lr = lr
        self.optimizer: torch.optim.Optimizer | None = None

    def attach_optimizer(self) -> torch.optim.Optimizer:
        """Create (after device placement) and return the probe's own optimizer."""
        self.optimizer = torch.optim.Adam(self.linear.parameters(), lr=self.lr)
        return self.optimizer

    def loss(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """MSE of the probe's prediction from ``z.detach()`` (float32)."""
        return F.mse_loss(self.linear(z.detach().float()).float(), action.float())


# ----------------------------------------------------------------------------------- agent


class BaselineAgent(Agent):
    """Shared :class:`~dcsbench.agent.Agent` plumbing of the baselines.

    Subclasses set ``Config`` (a dataclass with a ``runtime: RuntimeConfig`` field), implement
    :meth:`build` (create ``self.nets`` for a spec), :meth:`fit` and :meth:`policy` (float input
    -> action tensor). Constructor keywords are the config (validated; unknown keys raise).
    """

    Config: type = object

    @classmethod
    def from_config(cls, config: dict, preset: str | None = None) -> "BaselineAgent":
        """The method at ``preset`` (YAML values) with ``config`` merged over them. Without a
        preset, :func:`baselines.choose_preset` picks one for the machine and says why."""
        import sys

        from baselines import choose_preset, make_agent

        chosen, reason, warning = choose_preset(cls.name, preset)
        if preset is None:
            print(f"[dcsbench] {cls.name}: preset {chosen} ({reason})", file=sys.stderr, flush=True)
        if warning:
            print(f"[dcsbench] warning: {warning}", file=sys.stderr, flush=True)
        agent = make_agent(cls.name, preset=chosen, **config)
        agent.preset = chosen
        return agent

    def __init__(self, **config: Any) -> None:
        self.cfg = from_dict(self.Config, config)
        super().__init__(**asdict(self.cfg))
        self.runtime = Runtime(self.cfg.runtime)
        self.nets: dict[str, nn.Module] = {}
        self.spec: EnvSpec | None = None

    # -- to implement
    def build(self, spec: EnvSpec) -> None:
        """Create the networks of ``self.nets`` for ``spec`` (on the runtime's device)."""
        raise NotImplementedError

    def policy(self, x: torch.Tensor) -> torch.Tensor:
        """Actions from float observations ``(B, C, 64, 64)``."""
        raise NotImplementedError

    # -- helpers
    def _start(self, spec: EnvSpec, seed: int, logger) -> tuple[np.random.Generator, Any]:
        """Seed everything, build the networks; returns ``(rng, logger)``."""
        rng = seed_everything(seed)
        self.spec = spec
        self.build(spec)
        return rng, logger if logger is not None else NullLogger()

    def _to_numpy(self, t: torch.Tensor) -> np.ndarray:
        return t.float().cpu().numpy().astype(np.float32)

    # -- Agent API
    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions ``(B, action_dim)`` float32 for uint8 stacks ``(B, 64, 64, 9)``."""
        if self.spec is None:
            raise RuntimeError(f"{self.name}: call fit() or load() before act()")
        obs = np.asarray(obs)
        if obs.ndim != 4 or obs.shape[1:] != tuple(self.spec.obs_shape) or obs.dtype != np.uint8:
            raise ValueError(f"act expects uint8 (B, {', '.join(map(str, self.spec.obs_shape))}), "
                             f"got {obs.dtype} {obs.shape}")
        for m in self.nets.values():
            m.eval()
        with self.runtime.autocast():
            return self._to_numpy(self.policy(self.runtime.to_input(obs)))

    def num_parameters(self) -> int | None:
        """Trainable parameters of every network the method trains (probes excluded)."""
        return sum(self.param_breakdown().values()) if self.nets else None

    def param_breakdown(self) -> dict[str, int]:
        """Trainable parameters per network (probes excluded), e.g. ``{"lam": ..., "actor": ...}``."""
        return {k: sum(p.numel() for p in m.parameters()) for k, m in self.nets.items() if k != "probe"}

    def save(self, path: str) -> None:
        """Write ``weights.pt`` (state dicts only) and ``meta.json`` (spec + config) into ``path``."""
        if self.spec is None:
            raise RuntimeError("nothing to save: the agent is not fitted")
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".weights.", suffix=".tmp")
        os.close(fd)
        torch.save({k: m.state_dict() for k, m in self.nets.items()}, tmp)
        os.replace(tmp, out / "weights.pt")
        from dcsbench.results import atomic_write_text
        meta = {"method": self.name, "version": self.version, "spec": asdict(self.spec), "config": self.config}
        atomic_write_text(out / "meta.json", json.dumps(meta, indent=2))

    def load(self, path: str) -> None:
        """Restore networks saved by :meth:`save` (the checkpoint's spec; this agent's config)."""
        meta = json.loads((Path(path) / "meta.json").read_text())
        if meta.get("method") != self.name:
            raise ValueError(f"checkpoint is for method {meta.get('method')!r}, not {self.name!r}")
        spec = meta["spec"]
        for key in ("obs_shape", "frame_shape"):
            spec[key] = tuple(spec[key])
        self.spec = EnvSpec(**spec)
        self.build(self.spec)
        state = torch.load(Path(path) / "weights.pt", map_location=self.runtime.device, weights_only=True)
        for k, m in self.nets.items():
            m.load_state_dict(state[k])


# ----------------------------------------------------------------------------------- shared stages


def fit_actor(tag: str, actor: nn.Module, sampler: TransitionSampler, keys: tuple[str, ...],
              target_fn: Callable[[dict], torch.Tensor], stage: ActorStage, rng: np.random.Generator,
              runtime: Runtime, logger) -> dict:
    """Behaviour cloning: MSE from ``actor(o_t)`` to ``target_fn(batch)`` (computed without grad).

    Used by BC (targets = true actions), IDM (targets = IDM relabels) and latent BC (targets = the
    frozen LAM's latent actions for ``(o_t, o_{t+1})``).
    """
    updates = stage.updates or epochs_to_updates(stage.epochs, sampler.n_transitions, stage.batch_size)
    warmup = epochs_to_updates(stage.warmup_epochs, sampler.n_transitions, stage.batch_size)
    net = runtime.maybe_compile(actor)
    actor.train()
    batches = sampler.stream(stage.batch_size, rng, keys=keys)

    def step(i: int):
        batch = next(batches)
        with torch.no_grad():
            target = target_fn(batch).float()
        loss = F.mse_loss(net(runtime.to_input(batch["obs"])).float(), target)
        return loss, {"mse": loss}

    return train_loop(tag, actor.parameters(), step, updates, stage.lr, warmup, runtime, logger,
                      stage.weight_decay)


def fit_decoder(decoder: nn.Module, actor: nn.Module, sampler: TransitionSampler, stage: DecoderStage,
                rng: np.random.Generator, runtime: Runtime, logger) -> dict:
    """Stage 3: train ``decoder(actor(o_t)) -> a_t`` on labeled batches with the actor frozen."""
    actor.eval()
    for p in actor.parameters():
        p.requires_grad_(False)
    decoder.train()
    batches = sampler.stream(stage.batch_size, rng, keys=("obs", "action"))

    def step(i: int):
        batch = next(batches)
        with torch.no_grad():
            z = actor(runtime.to_input(batch["obs"])).float()
        loss = F.mse_loss(decoder(z).float(), batch["action"])
        return loss, {"mse": loss}

    out = train_loop("decoder", decoder.parameters(), step, stage.updates, stage.lr, 0, runtime, logger)
    for p in actor.parameters():
        p.requires_grad_(True)
    return out


class LatentActionAgent(BaselineAgent):
    """Stages shared by the latent-action methods (LAPO, LAOM, LAOM+sup).

    A subclass supplies the LAM: :meth:`make_lam`, :meth:`fit_lam` (stage 1) and
    :meth:`lam_latents` (the latent action of a batch of float input pairs). This class owns
    the rest of the pipeline: latent BC of the frozen LAM's latents on the unlabeled view
    (stage 2), the action decoder on the labeled view (stage 3), ``act = decoder(actor(o))``,
    and the ``latent_actions`` hook for the harness's probe. The config must have ``lam``
    (with ``latent_dim``, ``probe_lr``), ``bc`` and ``decoder`` sections.
    """

    def make_lam(self, in_channels: int, spec: EnvSpec) -> nn.Module:
        """The latent action model (stage 1)."""
        raise NotImplementedError

    def fit_lam(self, unl: TransitionSampler, lab: TransitionSampler, spec: EnvSpec, seed: int,
                rng: np.random.Generator, logger) -> dict:
        """Train ``self.nets["lam"]`` (and the probe alongside) on the unlabeled view."""
        raise NotImplementedError

    def lam_latents(self, lam: nn.Module, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Latent actions of the LAM for float input batches ``(o_t, o_{t+1})``."""
        raise NotImplementedError

    def build(self, spec: EnvSpec) -> None:  # noqa: D102
        c, place, ch = self.cfg, self.runtime.place, spec.obs_shape[-1]
        self.nets = {"lam": place(self.make_lam(ch, spec)),
                     "actor": place(Actor(ch, c.bc.encoder_scale, c.lam.latent_dim)),
                     "decoder": place(ActionDecoder(c.lam.latent_dim, spec.action_dim, c.decoder.hidden_dim)),
                     "probe": place(LinearProbe(c.lam.latent_dim, spec.action_dim, c.lam.probe_lr))}

    def fit(self, unlabeled, labeled, spec, budget, seed, logger) -> None:  # noqa: D102
        rng, logger = self._start(spec, seed, logger)
        unl = TransitionSampler(unlabeled, self.runtime)
        lab = TransitionSampler(labeled, self.runtime, labeled=True)
        self.fit_lam(unl, lab, spec, seed, rng, logger)
        lam, rt = self.nets["lam"].eval(), self.runtime
        fit_actor("bc", self.nets["actor"], unl, ("obs", "next_obs"),
                  lambda b: self.lam_latents(lam, rt.to_input(b["obs"]), rt.to_input(b["next_obs"])),
                  self.cfg.bc, rng, rt, logger)
        fit_decoder(self.nets["decoder"], self.nets["actor"], lab, self.cfg.decoder, rng, rt, logger)

    def policy(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.nets["decoder"](self.nets["actor"](x).float())

    def init_untrained(self, spec: EnvSpec, seed: int) -> bool:
        """Build the networks with the random weights :meth:`fit` starts from for ``seed`` (same
        seeding, same construction), without training, so that :meth:`latent_actions` works
        (the harness's random-features probe). Returns True (supported)."""
        self._start(spec, seed, None)
        return True

    @torch.no_grad()
    def latent_actions(self, obs: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """The LAM's latent actions for ``(o_t, o_{t+1})`` batches, ``(B, latent_dim)`` float32."""
        lam, rt = self.nets["lam"].eval(), self.runtime
        with rt.autocast():
            return self._to_numpy(self.lam_latents(lam, rt.to_input(obs), rt.to_input(next_obs)))
