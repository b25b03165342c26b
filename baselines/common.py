"""Training-loop pieces shared by the baselines (the method files hold only the method's logic).

* Config: :func:`from_dict` builds a (nested) config dataclass from a plain dict, rejecting unknown
  keys with the list of valid ones; :class:`ActorStage` / :class:`DecoderStage` are the stage
  configs shared by several methods.
* :class:`Runtime`: device, bf16 autocast (CUDA only), channels_last, optional ``torch.compile``,
  and uint8 HWC stacks -> float NCHW in ``[-1, 1]`` (the authors' ``normalize_img``).
* :class:`TransitionSampler`: random ``(o_t, o_{t+1}, o_{t+k}[, a_t])`` batches on the runtime's
  device: the one sampler :class:`dcsbench.data.sampler.Sampler` (the views' semantics), with
  the frames gathered on the GPU when they fit there.
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
import random
import tempfile
import time
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dcsbench.agent import Agent, EnvSpec, NullLogger
from dcsbench.data.sampler import Sampler
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


class TransitionSampler(Sampler):
    """The baselines' batches: :class:`dcsbench.data.sampler.Sampler` on the runtime's device,
    with the frames copied to the GPU when ``runtime.data_on_device`` allows.

    Args:
        view: an ``UnlabeledView`` or ``LabeledView`` (actions are read iff ``labeled``).
        runtime: the agent's :class:`Runtime` (batches are returned on its device).
        labeled: also return ``action`` = ``a_t``.
    """

    def __init__(self, view, runtime: Runtime, labeled: bool = False) -> None:
        mode = check_choice("runtime.data_on_device", runtime.cfg.data_on_device, ("auto", "true", "false"))
        on_device = {"auto": "auto", "true": runtime.cuda, "false": False}[mode]
        super().__init__(view, runtime.device, labeled=labeled, on_device=on_device,
                         max_device_bytes=runtime.cfg.data_on_device_max_gb * 2**30)
        self.runtime = runtime


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
