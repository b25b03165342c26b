"""IDM baseline: inverse dynamics on the labels, relabel the unlabeled view, then BC.

1. IDM: one ResNet encoder (scale 12, no output LayerNorm unless ``idm.encoder_norm_out``, as the
   authors' ``IDMLabels``) embeds ``o_t`` and ``o_{t+1}`` (future offset 1); a residual
   MLP head (hidden 1024) conditioned on both embeddings at every layer predicts ``a_t``; MSE on
   the labeled view, 10000 updates, batch 512, lr 1e-4, warmup 3 epochs *of the labeled view*
   (the data this stage trains on), then linear decay to 0.
2. Relabel every ``(o_t, o_{t+1})`` of the unlabeled view with the frozen IDM (one pass of
   ``iter_stacks``).
3. BC: a scale-32 ResNet actor regresses the relabelled actions, 10 epochs over the unlabeled view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from baselines.common import (ActorStage, BaselineAgent, RuntimeConfig, TransitionSampler,
                              epochs_to_updates, fit_actor, train_loop)
from baselines.nets import Actor, InverseDynamics


@dataclass
class IDMStage:
    """Stage 1 (IDM on labels) hyper-parameters; paper values as defaults."""

    encoder_scale: int = 12
    num_res_blocks: int = 2
    hidden_dim: int = 1024
    num_blocks: int = 3
    encoder_norm_out: bool = False
    batch_size: int = 512
    lr: float = 1e-4
    weight_decay: float = 0.0
    updates: int = 10000
    warmup_epochs: float = 3.0
    relabel_batch_size: int = 1024


@dataclass
class IDMConfig:
    """IDM configuration: ``idm`` (stage 1), ``bc`` (BC on relabelled data), ``runtime``."""

    idm: IDMStage = field(default_factory=IDMStage)
    bc: ActorStage = field(default_factory=ActorStage)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


class IDMAgent(BaselineAgent):
    """IDM -> relabel -> BC, see the module docstring."""

    name = "idm"
    version = "1"
    Config = IDMConfig

    def build(self, spec) -> None:  # noqa: D102
        c, ch = self.cfg, spec.obs_shape[-1]
        self.nets = {"idm": self.runtime.place(InverseDynamics(ch, c.idm.encoder_scale, c.idm.hidden_dim,
                                                               spec.action_dim, c.idm.num_res_blocks,
                                                               c.idm.num_blocks, c.idm.encoder_norm_out,
                                                               spec.frame_shape[0])),
                     "actor": self.runtime.place(Actor(ch, c.bc.encoder_scale, spec.action_dim))}

    def fit(self, unlabeled, labeled, spec, budget, seed, logger) -> None:  # noqa: D102
        rng, logger = self._start(spec, seed, logger)
        rt = self.runtime
        self.fit_idm(TransitionSampler(labeled, rt, labeled=True), rng, logger)
        unl = TransitionSampler(unlabeled, rt)
        labels = torch.from_numpy(self.relabel(unlabeled, unl.cum)).to(rt.device)
        fit_actor("bc", self.nets["actor"], unl, ("obs",),
                  lambda b: labels[torch.from_numpy(unl.cum[b["index"][:, 0]] + b["index"][:, 1]).to(rt.device)],
                  self.cfg.bc, rng, rt, logger)

    def fit_idm(self, lab: TransitionSampler, rng: np.random.Generator, logger) -> dict:
        """Stage 1: the IDM ``(o_t, o_{t+1}) -> a_t`` on labeled batches."""
        rt, c = self.runtime, self.cfg.idm
        idm = self.nets["idm"].train()
        net = rt.maybe_compile(idm)
        batches = lab.stream(c.batch_size, rng, keys=("obs", "next_obs", "action"))

        def step(i: int):
            b = next(batches)
            loss = F.mse_loss(net(rt.to_input(b["obs"]), rt.to_input(b["next_obs"])).float(), b["action"])
            return loss, {"mse": loss}

        warmup = epochs_to_updates(c.warmup_epochs, lab.n_transitions, c.batch_size)
        return train_loop("idm", idm.parameters(), step, c.updates, c.lr, warmup, rt, logger, c.weight_decay)

    @torch.no_grad()
    def relabel(self, unlabeled, frame_offsets: np.ndarray) -> np.ndarray:
        """IDM actions for every ``(o_t, o_{t+1})`` of ``unlabeled``: ``(n_frames, A)`` float32,
        row ``frame_offsets[traj] + t`` (the last frame of each trajectory stays 0, never sampled)."""
        idm, rt = self.nets["idm"].eval(), self.runtime
        out = np.zeros((int(frame_offsets[-1]), self.spec.action_dim), dtype=np.float32)
        for b in unlabeled.iter_stacks(self.cfg.idm.relabel_batch_size):
            with rt.autocast():
                a = idm(rt.to_input(b["obs"]), rt.to_input(b["next_obs"]))
            out[frame_offsets[b["index"][:, 0]] + b["index"][:, 1]] = self._to_numpy(a)
        return out

    def policy(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.nets["actor"](x)
