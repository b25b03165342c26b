"""LAPO (Schmidt & Jiang, "Learning to Act without Actions"), as configured in the LAOM paper.

1. Latent action model on the unlabeled view: an IDM with its own ResNet encoder (scale 6) on the
   channel-concatenated pair ``(o_t, o_{t+k})`` (k uniform in 1..10) -> latent action, vector-
   quantized (VQ-VAE, straight-through); an FDM with its own ResNet encoder on ``o_t`` whose 8x8
   map, plus the projected latent action, is decoded by a mirrored transposed-conv decoder into
   the next observation in pixel space; loss = pixel MSE + VQ loss. No augmentation. A linear
   probe ``z.detach() -> a_t`` trains alongside on labeled batches.
2. Latent BC and 3. action decoder: as LAOM (:mod:`baselines.laom`).

As in LAOM, the FDM reconstructs ``o_{t+1}`` by default (``lam.fdm_target: next``; ``future``
reconstructs ``o_{t+k}``). The paper's parameter count (211.8M) corresponds to an 8192-d latent
action, the paper default here; the original LAPO used 128.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.common import (ActorStage, DecoderStage, LatentActionAgent, RuntimeConfig,
                              TransitionSampler, epochs_to_updates, train_loop)
from baselines.nets import PixelDecoder, ResNetEncoder, VectorQuantizer
from dcsbench.registry import check_choice


@dataclass
class LAPOStage:
    """Stage 1 (latent action model) hyper-parameters; paper values as defaults."""

    encoder_scale: int = 6
    num_res_blocks: int = 2
    latent_dim: int = 8192
    vq: bool = True
    vq_group_dim: int = 16
    vq_codebook_size: int = 64
    vq_beta: float = 0.25
    batch_size: int = 512
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: float = 10.0
    warmup_epochs: float = 3.0
    max_offset: int = 10
    fdm_target: str = "next"
    probe_batch_size: int = 128
    probe_every: int = 1
    probe_lr: float = 1e-4


@dataclass
class LAPOConfig:
    """LAPO configuration: ``lam`` (stage 1), ``bc`` (latent BC), ``decoder``, ``runtime``."""

    lam: LAPOStage = field(default_factory=LAPOStage)
    bc: ActorStage = field(default_factory=ActorStage)
    decoder: DecoderStage = field(default_factory=DecoderStage)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


class LAPOModel(nn.Module):
    """IDM (own encoder on the stacked pair, linear to the latent, VQ) + pixel FDM (own encoder)."""

    def __init__(self, in_channels: int, c: LAPOStage) -> None:
        super().__init__()
        self.idm_encoder = ResNetEncoder(2 * in_channels, c.encoder_scale, c.num_res_blocks, "flatten")
        self.idm_head = nn.Linear(self.idm_encoder.out_dim, c.latent_dim)
        self.vq = VectorQuantizer(c.latent_dim, c.vq_group_dim, c.vq_codebook_size, c.vq_beta) if c.vq else None
        self.fdm_encoder = ResNetEncoder(in_channels, c.encoder_scale, c.num_res_blocks, "flatten")
        self.fdm_decoder = PixelDecoder(self.fdm_encoder, c.latent_dim, in_channels, c.num_res_blocks)

    def latent(self, obs: torch.Tensor, future_obs: torch.Tensor):
        """``(z, vq_loss)``: the (quantized) latent action of ``(o_t, o_{t+k})``."""
        z = self.idm_head(F.relu6(self.idm_encoder(torch.cat([obs, future_obs], dim=1))))
        if self.vq is None:
            return z, z.new_zeros(())
        z_q, vq_loss, _ = self.vq(z)
        return z_q, vq_loss

    def forward(self, obs: torch.Tensor, future_obs: torch.Tensor):
        """``(predicted next observation, z, vq_loss)``."""
        z, vq_loss = self.latent(obs, future_obs)
        return self.fdm_decoder(self.fdm_encoder.feature_map(obs), z), z, vq_loss


class LAPOAgent(LatentActionAgent):
    """LAPO baseline, see the module docstring."""

    name = "lapo"
    version = "1"
    Config = LAPOConfig

    def __init__(self, **config) -> None:
        super().__init__(**config)
        check_choice("lam.fdm_target", self.cfg.lam.fdm_target, ("next", "future"))

    def make_lam(self, in_channels, spec) -> nn.Module:  # noqa: D102
        return LAPOModel(in_channels, self.cfg.lam)

    def lam_latents(self, lam, obs, next_obs):
        """The (quantized) latent action."""
        return lam.latent(obs, next_obs)[0]

    def fit_lam(self, unl: TransitionSampler, lab: TransitionSampler, spec, seed: int,
                rng: np.random.Generator, logger) -> dict:
        """Stage 1: train IDM + pixel FDM (and the linear probe alongside)."""
        c, rt = self.cfg.lam, self.runtime
        model, probe = self.nets["lam"].train(), self.nets["probe"]
        net = rt.maybe_compile(model)
        target_key = "next_obs" if c.fdm_target == "next" else "future_obs"
        batches = unl.stream(c.batch_size, rng, c.max_offset, keys=("obs", "future_obs", target_key))
        lab_batches = lab.stream(c.probe_batch_size, rng, c.max_offset, keys=("obs", "future_obs", "action"))

        def step(i: int):
            batch = next(batches)
            pred, z, vq_loss = net(rt.to_input(batch["obs"]), rt.to_input(batch["future_obs"]))
            recon = F.mse_loss(pred.float(), rt.to_input(batch[target_key]))
            loss = recon + vq_loss
            metrics = {"recon_mse": recon, "vq_loss": vq_loss}
            if i % c.probe_every == 0:
                lb = next(lab_batches)
                with torch.no_grad():
                    z_lab = model.latent(rt.to_input(lb["obs"]), rt.to_input(lb["future_obs"]))[0]
                metrics["probe_mse"] = probe.loss(z_lab, lb["action"])
                loss = loss + metrics["probe_mse"]  # probe params only: z is detached
            return loss, metrics

        updates = epochs_to_updates(c.epochs, unl.n_transitions, c.batch_size)
        warmup = epochs_to_updates(c.warmup_epochs, unl.n_transitions, c.batch_size)
        return train_loop("lam", model.parameters(), step, updates, c.lr, warmup, rt, logger,
                          c.weight_decay, extra_optimizers=(probe.attach_optimizer(),))
