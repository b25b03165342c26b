"""LAPO (Schmidt & Jiang, "Learning to Act without Actions"), as configured in the LAOM paper.

1. Latent action model on the unlabeled view: an IDM with its own ResNet encoder (scale 6) on the
   channel-concatenated pair ``(o_t, o_{t+k})`` (k uniform in 1..10) -> GELU -> linear to a
   continuous latent action; an FDM with its own ResNet encoder on ``o_t`` whose 8x8 map,
   concatenated with the projected latent action, is decoded by a mirrored transposed-conv
   decoder (tanh output) into the next observation in pixel space; loss = pixel MSE. No
   quantization and no augmentation (the authors' released LAPO: the LAOM paper removed the
   quantizer, section 4). ``lam.quantize: fsq`` re-adds one for the quantization ablation
   (finite scalar quantization, :class:`baselines.nets.FSQ`, on the latent standardised per
   dimension by a non-affine BatchNorm: no codebook, so no collapse, and every level in reach).
   A linear probe ``z.detach() -> a_t`` trains alongside on labeled batches (a diagnostic only).
2. Latent BC and 3. action decoder: as LAOM (:mod:`baselines.laom`).

As in the authors' code, the FDM reconstructs ``o_{t+1}`` by default (``lam.fdm_target: next``;
``future`` reconstructs ``o_{t+k}``). The paper's parameter count (211.8M) corresponds to an
8192-d latent action, the paper default here; the original LAPO used 128.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.common import (ActorStage, DecoderStage, LatentActionAgent, RuntimeConfig,
                              TransitionSampler, epochs_to_updates, train_loop)
from baselines.nets import FSQ, PixelDecoder, ResNetEncoder, orthogonal_init
from dcsbench.catalogue import check_choice


@dataclass
class LAPOStage:
    """Stage 1 (latent action model) hyper-parameters; paper values as defaults."""

    encoder_scale: int = 6
    num_res_blocks: int = 2
    latent_dim: int = 8192
    quantize: str = "none"
    fsq_levels: list = field(default_factory=lambda: [8, 8])
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
    """IDM (own encoder on the stacked pair, GELU + linear to the latent, optional FSQ) + pixel
    FDM (own encoder), orthogonally initialised."""

    def __init__(self, in_channels: int, c: LAPOStage, image_size: int = 64) -> None:
        super().__init__()
        self.idm_encoder = ResNetEncoder(2 * in_channels, c.encoder_scale, c.num_res_blocks, "flatten",
                                         image_size=image_size)
        self.idm_head = nn.Linear(self.idm_encoder.out_dim, c.latent_dim)
        # FSQ rounds each dimension to a few levels of a fixed range, so its input is standardised
        # per dimension (batch statistics, running averages at eval) to spread over that range.
        self.fsq = FSQ(c.latent_dim, c.fsq_levels) if c.quantize == "fsq" else None
        self.fsq_norm = nn.BatchNorm1d(c.latent_dim, affine=False) if self.fsq is not None else None
        self.fdm_encoder = ResNetEncoder(in_channels, c.encoder_scale, c.num_res_blocks, "flatten",
                                         image_size=image_size)
        self.fdm_decoder = PixelDecoder(self.fdm_encoder, c.latent_dim, in_channels, c.num_res_blocks)
        orthogonal_init(self)

    def latent(self, obs: torch.Tensor, future_obs: torch.Tensor, with_codes: bool = False):
        """The (quantized) latent action of ``(o_t, o_{t+k})``; with ``with_codes`` also the FSQ
        codes ``(B, n_groups)`` (``None`` without quantization)."""
        z = self.idm_head(F.gelu(self.idm_encoder(torch.cat([obs, future_obs], dim=1))))
        codes = None
        if self.fsq is not None:
            z, codes = self.fsq(self.fsq_norm(z.float()).to(z.dtype))
        return (z, codes) if with_codes else z

    def forward(self, obs: torch.Tensor, future_obs: torch.Tensor):
        """``(predicted next observation, z)``."""
        z = self.latent(obs, future_obs)
        return self.fdm_decoder(self.fdm_encoder.feature_map(obs), z), z


class LAPOAgent(LatentActionAgent):
    """LAPO baseline, see the module docstring."""

    name = "lapo"
    version = "1"
    Config = LAPOConfig

    def __init__(self, **config) -> None:
        super().__init__(**config)
        check_choice("lam.fdm_target", self.cfg.lam.fdm_target, ("next", "future"))
        check_choice("lam.quantize", self.cfg.lam.quantize, ("none", "fsq"))

    def make_lam(self, in_channels, spec) -> nn.Module:  # noqa: D102
        return LAPOModel(in_channels, self.cfg.lam, spec.frame_shape[0])

    def lam_latents(self, lam, obs, next_obs):
        """The (quantized) latent action."""
        return lam.latent(obs, next_obs)

    def fit_lam(self, unl: TransitionSampler, lab: TransitionSampler, spec, seed: int,
                rng: np.random.Generator, logger) -> dict:
        """Stage 1: train IDM + pixel FDM (and the linear probe alongside); no augmentation."""
        c, rt = self.cfg.lam, self.runtime
        model, probe = self.nets["lam"].train(), self.nets["probe"]
        net = rt.maybe_compile(model)
        target_key = "next_obs" if c.fdm_target == "next" else "future_obs"
        batches = unl.stream(c.batch_size, rng, c.max_offset, keys=("obs", "future_obs", target_key))
        lab_batches = lab.stream(c.probe_batch_size, rng, c.max_offset, keys=("obs", "future_obs", "action"))

        def step(i: int):
            batch = next(batches)
            pred, z = net(rt.to_input(batch["obs"]), rt.to_input(batch["future_obs"]))
            loss = recon = F.mse_loss(pred.float(), rt.to_input(batch[target_key]))
            metrics = {"recon_mse": recon}
            if i % c.probe_every == 0:
                lb = next(lab_batches)
                with torch.no_grad():
                    z_lab = model.latent(rt.to_input(lb["obs"]), rt.to_input(lb["future_obs"]))
                metrics["probe_mse"] = probe.loss(z_lab, lb["action"])
                loss = loss + metrics["probe_mse"]  # probe params only: z is detached
            return loss, metrics

        updates = epochs_to_updates(c.epochs, unl.n_transitions, c.batch_size)
        warmup = epochs_to_updates(c.warmup_epochs, unl.n_transitions, c.batch_size)
        return train_loop("lam", model.parameters(), step, updates, c.lr, warmup, rt, logger,
                          c.weight_decay, extra_optimizers=(probe.attach_optimizer(),))
