"""How the baselines run: :class:`Runtime` (device, bf16 autocast on CUDA, channels_last, optional
``torch.compile``, uint8 HWC stacks -> float NCHW in ``[-1, 1]``), :class:`TransitionSampler`
(the one sampler :class:`dcsbench.data.sampler.Sampler` on the runtime's device),
:func:`epochs_to_updates`, the authors' schedule :func:`linear_with_warmup`,
:func:`make_optimizer` and :func:`train_loop` (one optimizer + that schedule + logging).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from baselines.config import RuntimeConfig
from dcsbench.data.sampler import Sampler
from dcsbench.catalogue import check_choice

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
        view: an ``ArrayUnlabeledView`` or ``ArrayLabeledView`` (actions are read iff ``labeled``).
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
