"""Training-loop pieces shared by the baselines (the method files hold only the method's logic).

This module re-exports them from where they live:

* :mod:`baselines.config` - :func:`from_dict` builds a (nested) config dataclass from a plain
  dict, rejecting unknown keys with the list of valid ones; :class:`ActorStage` /
  :class:`DecoderStage` are the stage configs shared by several methods; :class:`RuntimeConfig`.
* :mod:`baselines.runtime` - :class:`Runtime`: device, bf16 autocast (CUDA only), channels_last,
  optional ``torch.compile``, and uint8 HWC stacks -> float NCHW in ``[-1, 1]`` (the authors'
  ``normalize_img``); :class:`TransitionSampler`: random ``(o_t, o_{t+1}, o_{t+k}[, a_t])``
  batches on the runtime's device, the one sampler :class:`dcsbench.data.sampler.Sampler` (the
  views' semantics) with the frames gathered on the GPU when they fit there;
  :func:`linear_with_warmup` (the authors' schedule: linear warmup, then linear decay to 0),
  :func:`make_optimizer`, :func:`train_loop` (one optimizer + that schedule + logging).
* :mod:`baselines.agent_base` - :class:`BaselineAgent`: the :class:`dcsbench.agent.Agent`
  plumbing (config, act, save/load, parameter counts) every baseline inherits;
  :func:`fit_actor`, :func:`fit_decoder`, :class:`LatentActionAgent`, :class:`LinearProbe`.

Seeding is :func:`dcsbench.runinfo.seed_everything` (the harness's).

"Epochs" of the stages that train on the unlabeled view are measured in that view's transitions:
``updates = ceil(epochs * n_transitions / batch_size)``; batches are drawn uniformly at random
(with replacement) rather than by shuffled passes *(choice, documented)*.
"""

from __future__ import annotations

from baselines.agent_base import BaselineAgent, LatentActionAgent, LinearProbe, fit_actor, fit_decoder
from baselines.config import ActorStage, DecoderStage, RuntimeConfig, from_dict
from baselines.runtime import (Runtime, TransitionSampler, epochs_to_updates, linear_with_warmup,
                               make_optimizer, train_loop)

__all__ = ["ActorStage", "BaselineAgent", "DecoderStage", "LatentActionAgent", "LinearProbe", "Runtime",
           "RuntimeConfig", "TransitionSampler", "epochs_to_updates", "fit_actor", "fit_decoder",
           "from_dict", "linear_with_warmup", "make_optimizer", "train_loop"]
