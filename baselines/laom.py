"""LAOM and LAOM+supervision (Nikulin et al., "Latent Action Learning Requires Supervision in the
Presence of Distractors"), three stages:

1. Latent action model on the unlabeled view: one ResNet encoder (scale 6) for ``o_t`` and
   ``o_{t+k}`` (k uniform in 1..10), an IDM head (residual MLP conditioned on both embeddings at
   every layer) giving a continuous 8192-d latent action ``z`` (no quantization), an FDM head
   (residual MLP conditioned on ``z`` at every layer) predicting the target encoder's embedding
   of ``o_{t+1}`` from ``emb(o_t)``; MSE. Target encoder: EMA of the online one (tau 0.001), with
   and without supervision (the authors' ``train_laom.py`` and ``train_laom_labels.py``);
   ``lam.target: online`` uses the stop-gradient online encoder instead. Augmentations as the
   authors' (:mod:`baselines.augment`: one of eight choices per image, identity included, drawn
   independently for ``o_t``, ``o_{t+k}`` and ``o_{t+1}``). With ``lam.supervised``: plus a
   linear head ``z -> a_t`` on an (augmented) labeled batch of 128 each step, loss coefficient
   0.01 (0.001 on cheetah-run). A linear probe ``z.detach() -> a_t`` trains alongside on labeled
   batches (a diagnostic only; the harness's probe is :mod:`dcsbench.probe`).
2. Latent BC: a scale-32 ResNet actor regresses the frozen LAM's ``z`` for ``(o_t, o_{t+1})``
   over the unlabeled view (no augmentation, as the authors' final configs).
3. Action decoder: MLP ``z -> a`` on the labeled view, actor frozen. ``act = decoder(actor(o))``.

FDM target *(documented choice)*: the FDM predicts ``emb(o_{t+1})`` (``lam.fdm_target: next``, the
multi-step-inverse design of the authors' public code: the IDM sees ``o_{t+k}`` to infer the action
taken at ``t``); ``lam.fdm_target: future`` predicts ``emb(o_{t+k})`` instead. As in that code,
the FDM sees ``emb(o_t)`` with stop-gradient (``lam.detach_fdm_obs``). The encoder output has
no LayerNorm by default (``lam.encoder_norm_out: false``, the authors' final configs; ``true``
adds one without affine parameters). All linear and conv layers are orthogonally initialised.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.augment import Augmenter
from baselines.common import (ActorStage, DecoderStage, LatentActionAgent, RuntimeConfig,
                              TransitionSampler, epochs_to_updates, train_loop)
from baselines.nets import ConditionedMLP, InverseDynamics, orthogonal_init
from dcsbench.catalogue import check_choice


@dataclass
class LAOMStage:
    """Stage 1 (latent action model) hyper-parameters; paper values as defaults."""

    encoder_scale: int = 6
    num_res_blocks: int = 2
    hidden_dim: int = 1024
    num_blocks: int = 3
    latent_dim: int = 8192
    batch_size: int = 512
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: float = 10.0
    warmup_epochs: float = 3.0
    max_offset: int = 10
    fdm_target: str = "next"
    detach_fdm_obs: bool = True
    encoder_norm_out: bool = False
    target: str = "ema"
    target_tau: float = 0.001
    augment: bool = True
    aug_shift_px: float = 14.0
    aug_rotate_deg: float = 90.0
    aug_perspective: float = 0.5
    supervised: bool = False
    labeled_batch_size: int = 128
    sup_coef: float = 0.01
    sup_coef_by_task: dict = field(default_factory=lambda: {"cheetah-run": 0.001})
    probe_batch_size: int = 128
    probe_every: int = 1
    probe_lr: float = 1e-4


@dataclass
class LAOMConfig:
    """LAOM configuration: ``lam`` (stage 1), ``bc`` (latent BC), ``decoder``, ``runtime``."""

    lam: LAOMStage = field(default_factory=LAOMStage)
    bc: ActorStage = field(default_factory=ActorStage)
    decoder: DecoderStage = field(default_factory=DecoderStage)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


class LAOMModel(nn.Module):
    """Encoder + IDM head (``idm``), FDM head (``fdm``), optional true-action head."""

    def __init__(self, in_channels: int, action_dim: int, c: LAOMStage, image_size: int = 64) -> None:
        super().__init__()
        self.idm = InverseDynamics(in_channels, c.encoder_scale, c.hidden_dim, c.latent_dim,
                                   c.num_res_blocks, c.num_blocks, out_norm=c.encoder_norm_out,
                                   image_size=image_size)
        emb = self.idm.encoder.out_dim
        self.fdm = ConditionedMLP(emb, c.latent_dim, c.hidden_dim, emb, c.num_blocks)
        self.action_head = nn.Linear(c.latent_dim, action_dim) if c.supervised else None
        orthogonal_init(self)

    def forward(self, obs, future_obs, target_obs=None):
        """``(z, predicted target embedding, online embedding of target_obs or None)``."""
        embs = self.idm.encode(obs, future_obs, *([] if target_obs is None else [target_obs]))
        z = self.idm.head_from_embeddings(embs[0], embs[1])
        return z, embs[0], (embs[2] if target_obs is not None else None)


class LAOMAgent(LatentActionAgent):
    """LAOM (``lam.supervised: false``) and LAOM+supervision (``true``), see the module docstring."""

    name = "laom"
    version = "1"
    Config = LAOMConfig

    def __init__(self, **config) -> None:
        super().__init__(**config)
        check_choice("lam.fdm_target", self.cfg.lam.fdm_target, ("next", "future"))
        check_choice("lam.target", self.cfg.lam.target, ("ema", "online"))
        self.name = "laom-sup" if self.cfg.lam.supervised else "laom"

    def make_lam(self, in_channels, spec) -> nn.Module:  # noqa: D102
        return LAOMModel(in_channels, spec.action_dim, self.cfg.lam, spec.frame_shape[0])

    def lam_latents(self, lam, obs, next_obs):  # noqa: D102
        return lam.idm(obs, next_obs)

    def fit_lam(self, unl: TransitionSampler, lab: TransitionSampler, spec, seed: int,
                rng: np.random.Generator, logger) -> dict:
        """Stage 1: train the latent action model (and the linear probe alongside)."""
        c, rt = self.cfg.lam, self.runtime
        model, probe = self.nets["lam"].train(), self.nets["probe"]
        net = rt.maybe_compile(model)
        ema = c.target == "ema"
        target_enc = copy.deepcopy(model.idm.encoder).requires_grad_(False) if ema else None
        coef = c.sup_coef_by_task.get(spec.task, c.sup_coef)
        aug = (Augmenter(c.aug_shift_px, c.aug_rotate_deg, c.aug_perspective, image_size=spec.frame_shape[0])
               if c.augment else None)
        gen = torch.Generator(rt.device).manual_seed(seed)
        target_key = "next_obs" if c.fdm_target == "next" else "future_obs"
        batches = unl.stream(c.batch_size, rng, c.max_offset, keys=("obs", "future_obs", target_key))
        n_lab = c.labeled_batch_size if c.supervised else c.probe_batch_size
        lab_batches = lab.stream(n_lab, rng, c.max_offset, keys=("obs", "future_obs", "action"))

        def inputs(batch, keys):
            """Each view augmented by its own call: independent choices and parameters."""
            xs = [rt.to_input(batch[k]) for k in keys]
            return [aug(x, generator=gen) for x in xs] if aug is not None else xs

        def step(i: int):
            batch = next(batches)
            obs, fut, tgt = inputs(batch, ("obs", "future_obs", target_key))
            z, emb, emb_tgt = net(obs, fut, None if ema else tgt)
            if ema:
                with torch.no_grad():
                    target = target_enc(tgt)
            else:
                target = emb_tgt.detach()
            pred = model.fdm(emb.detach() if c.detach_fdm_obs else emb, z)
            loss = F.mse_loss(pred.float(), target.float())
            metrics = {"fdm_mse": loss}
            if c.supervised or i % c.probe_every == 0:
                lb = next(lab_batches)
                with torch.set_grad_enabled(c.supervised):
                    z_lab = net(*inputs(lb, ("obs", "future_obs")))[0]
                if c.supervised:
                    sup = F.mse_loss(model.action_head(z_lab).float(), lb["action"])
                    loss = loss + coef * sup
                    metrics["sup_mse"] = sup
                metrics["probe_mse"] = probe.loss(z_lab, lb["action"])
                loss = loss + metrics["probe_mse"]  # probe params only: z is detached inside
            return loss, metrics

        def ema_update(i: int) -> None:
            if target_enc is not None:
                torch._foreach_lerp_(list(target_enc.parameters()), list(model.idm.encoder.parameters()),
                                     c.target_tau)

        updates = epochs_to_updates(c.epochs, unl.n_transitions, c.batch_size)
        warmup = epochs_to_updates(c.warmup_epochs, unl.n_transitions, c.batch_size)
        return train_loop("lam", model.parameters(), step, updates, c.lr, warmup, rt, logger,
                          c.weight_decay, extra_optimizers=(probe.attach_optimizer(),), after_step=ema_update)


class LAOMSupAgent(LAOMAgent):
    """LAOM+supervision: :class:`LAOMAgent` whose ``lam.supervised`` defaults to true."""

    name = "laom-sup"

    def __init__(self, **config) -> None:
        config = dict(config)
        config["lam"] = {"supervised": True, **config.get("lam", {})}
        super().__init__(**config)
