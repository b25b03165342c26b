"""The :class:`dcsbench.agent.Agent` plumbing of the baselines: :class:`BaselineAgent` (config,
act, save/load, parameter counts), the shared stages :func:`fit_actor` (behaviour cloning) and
:func:`fit_decoder` (latent -> action), :class:`LatentActionAgent` (the three-stage pipeline of
the latent-action methods) and the in-training :class:`LinearProbe`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.config import ActorStage, DecoderStage, from_dict
from baselines.nets import ActionDecoder, Actor
from baselines.runtime import Runtime, TransitionSampler, epochs_to_updates, train_loop
from dcsbench.agent import Agent, EnvSpec, NullLogger
from dcsbench.runinfo import seed_everything

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
        """Seed everything (:func:`dcsbench.runinfo.seed_everything`), build the networks;
        returns ``(rng, logger)`` (``rng``: the numpy generator of batch sampling)."""
        seed_everything(seed)
        rng = np.random.default_rng(seed)
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
