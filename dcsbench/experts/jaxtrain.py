"""JAX learners for ``train-expert``: CrossQ and SAC from sbx-rl, with jit-compiled updates.

Optional (``pip install -e .[experts-jax]``: sbx-rl, which brings jax, flax and optax). The
training loop, seeding, checkpoints, snapshots, packing, forks and export are those of
:mod:`dcsbench.experts.train`; this module holds what differs from the torch SAC path:

* :class:`CrossQConfig` (``--algo crossq``): CrossQ (Bhatt et al., ICLR 2024): no target
  networks, batch renormalisation in actor and critic, actor updated every ``policy_delay``
  critic steps, Adam with beta1 0.5. The critic is 256x256 by default (CPU-sized; sbx's own
  default is 1024x1024, the paper's 2048x2048), set ``--set qf_net_arch=[1024,1024]`` where
  compute allows.
* :class:`JaxSACConfig` (``--algo sac-jax``): SAC as ``--algo sac`` but in JAX; DroQ is this
  with ``dropout_rate=0.01 layer_norm=true gradient_steps=20``.

A checkpoint holds the flax train states (parameters, batch statistics, optimizer states, step
counters) as msgpack (``jax_state.msgpack``, :mod:`flax.serialization`: no pickled code), the
three JAX PRNG keys (``jax_keys.npz``), the replay buffer (as the torch SAC path) and the policy
as plain arrays (``policy.npz``: the deterministic actor with the evaluation-mode batch
renormalisation folded into the dense layers, the same MLP a committed expert stores). With the
replay buffer a resume is exact on the same machine and library versions (tested); a packed run
(no buffer) resumes by the same recorded warm start as torch SAC.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcsbench import catalogue

#: Checkpoint files of a JAX run (besides the shared replay buffer and state.json).
STATE_FILE = "jax_state.msgpack"
KEYS_FILE = "jax_keys.npz"
POLICY_FILE = "policy.npz"
#: Epsilon of sbx's BatchRenorm (``sbx.common.jax_layers.BatchRenorm``).
_BRN_EPSILON = 1e-3


@dataclass
class CrossQConfig:
    """CrossQ hyper-parameters (sbx's defaults except the CPU-sized 256x256 critic and
    ``learning_starts``); see the module docstring."""

    buffer_size: int = 1_000_000
    batch_size: int = 256
    learning_rate: float = 1e-3
    gamma: float = 0.99
    learning_starts: int = 5000
    train_freq: int = 1
    gradient_steps: int = 1
    policy_delay: int = 3
    n_step: int = 1
    net_arch: list[int] = field(default_factory=lambda: [256, 256])      # actor
    qf_net_arch: list[int] = field(default_factory=lambda: [256, 256])   # each of the 2 critics
    batch_norm_momentum: float = 0.99
    renorm_warmup_steps: int = 100_000
    adam_b1: float = 0.5
    activation: str = "relu"
    episode_length: int = catalogue.EPISODE_LENGTH
    stand_bonus: float = 0.0
    soft_stand_margin: float = 0.0
    torch_threads: int = 1         # speed only (the replay buffer's torch tensors)
    jax_threads: int = 1           # speed only: 1 pins XLA to one CPU thread


@dataclass
class JaxSACConfig:
    """SAC in JAX (sbx): the ``--algo sac`` sizes and rates; ``dropout_rate``/``layer_norm``
    in the critics give DroQ (with many ``gradient_steps``)."""

    buffer_size: int = 1_000_000
    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    learning_starts: int = 5000
    train_freq: int = 1
    gradient_steps: int = 1
    n_step: int = 1
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    qf_net_arch: list[int] = field(default_factory=lambda: [256, 256])
    dropout_rate: float = 0.0
    layer_norm: bool = False
    activation: str = "relu"
    episode_length: int = catalogue.EPISODE_LENGTH
    stand_bonus: float = 0.0
    soft_stand_margin: float = 0.0
    torch_threads: int = 1
    jax_threads: int = 1


#: ``--algo`` name -> config class of the JAX learners.
JAX_ALGOS = {"crossq": CrossQConfig, "sac-jax": JaxSACConfig}


def is_jax_model(model) -> bool:
    """Whether ``model`` is an sbx (JAX) learner rather than a stable-baselines3 (torch) one."""
    return type(model).__module__.startswith("sbx.")


def library_versions() -> dict:
    """Versions of the JAX learner's libraries (for run.json and the card)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("sbx-rl", "jax", "jaxlib", "flax", "optax", "stable-baselines3"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _configure_jax(cfg, device: str) -> None:
    """Thread and platform settings; they only take effect before jax is first imported."""
    if "jax" in sys.modules:
        return
    if device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if cfg.jax_threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1").strip()


def build(env, seed: int, cfg, device: str = "cpu"):
    """The sbx model of ``cfg`` on ``env`` (a one-env VecEnv), seeded by ``seed``."""
    _configure_jax(cfg, device)
    try:
        import flax.linen as nn
        import sbx
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the JAX learners need sbx-rl: pip install -e '.[experts-jax]'") from exc
    act = {"relu": nn.relu, "tanh": nn.tanh}[cfg.activation]
    arch = dict(pi=list(cfg.net_arch), qf=list(cfg.qf_net_arch))
    common = dict(buffer_size=cfg.buffer_size, batch_size=cfg.batch_size,
                  learning_rate=cfg.learning_rate, gamma=cfg.gamma,
                  learning_starts=cfg.learning_starts, train_freq=cfg.train_freq,
                  gradient_steps=cfg.gradient_steps, n_steps=cfg.n_step, seed=seed, verbose=0)
    if isinstance(cfg, CrossQConfig):
        model = sbx.CrossQ("MlpPolicy", env, policy_delay=cfg.policy_delay, **common,
                           policy_kwargs=dict(net_arch=arch, activation_fn=act,
                                              batch_norm_momentum=cfg.batch_norm_momentum,
                                              renorm_warmup_steps=cfg.renorm_warmup_steps,
                                              optimizer_kwargs={"b1": cfg.adam_b1}))
    elif isinstance(cfg, JaxSACConfig):
        model = sbx.SAC("MlpPolicy", env, tau=cfg.tau, **common,
                        policy_kwargs=dict(net_arch=arch, activation_fn=act,
                                           dropout_rate=cfg.dropout_rate, layer_norm=cfg.layer_norm))
    else:
        raise TypeError(f"not a JAX learner config: {type(cfg).__name__}")
    # SB3's set_random_seed (run by the constructor) also seeds the env's next reset with
    # `seed`; undo that, so every episode keeps its derived physics seed (StateEnv) as in the
    # torch paths, and a resumed run does not replay episode 0's initial state.
    venv = env
    while venv is not None:  # VecMonitor -> DummyVecEnv: the innermost one resets the envs
        venv._seeds = [None] * venv.num_envs
        venv = getattr(venv, "venv", None)
    model.action_space.seed(seed)
    return model


def _states(model) -> dict:
    return {"actor": model.policy.actor_state, "qf": model.policy.qf_state,
            "ent_coef": model.ent_coef_state}


def write_checkpoint(tmp: Path, model) -> None:
    """Write the learner's train states, PRNG keys and policy arrays into folder ``tmp``."""
    from flax import serialization

    (tmp / STATE_FILE).write_bytes(serialization.to_bytes(_states(model)))
    np.savez(tmp / KEYS_FILE, model=np.asarray(model.key), policy=np.asarray(model.policy.key),
             noise=np.asarray(model.policy.noise_key))
    write_policy(tmp, model)


def load_checkpoint(ckpt: Path, model) -> None:
    """Restore what :func:`write_checkpoint` wrote into ``model`` (built with the same config)."""
    import jax.numpy as jnp
    from flax import serialization

    states = serialization.from_bytes(_states(model), (ckpt / STATE_FILE).read_bytes())
    model.policy.actor_state, model.policy.qf_state = states["actor"], states["qf"]
    model.ent_coef_state = states["ent_coef"]
    with np.load(ckpt / KEYS_FILE) as z:
        model.key = jnp.asarray(z["model"])
        model.policy.key = jnp.asarray(z["policy"])
        model.policy.noise_key = jnp.asarray(z["noise"])


def policy_arrays(model) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The deterministic actor as plain ``(out, in)`` weights and biases: ``tanh`` of the last
    layer's output is the action. CrossQ's batch renormalisation layers (evaluation mode:
    running mean and variance) are folded into the dense layer that follows each of them."""
    state = model.policy.actor_state
    params = state.params
    if set(params) == {"params"}:  # sbx SAC keeps its actor's variables one level down
        params = params["params"]
    n = len([k for k in params if k.startswith("Dense_")]) - 1  # the last Dense is log_std
    folded = bool(getattr(model.policy, "batch_norm_actor", False))
    stats = getattr(state, "batch_stats", None) if folded else None
    weights, biases = [], []
    for i in range(n):
        kernel = np.asarray(params[f"Dense_{i}"]["kernel"], dtype=np.float64)  # (in, out)
        bias = np.asarray(params[f"Dense_{i}"]["bias"], dtype=np.float64)
        if stats is not None:
            bn, st = params[f"BatchRenorm_{i}"], stats[f"BatchRenorm_{i}"]
            scale = np.asarray(bn["scale"], np.float64) / np.sqrt(np.asarray(st["var"], np.float64)
                                                                  + _BRN_EPSILON)
            shift = np.asarray(bn["bias"], np.float64) - np.asarray(st["mean"], np.float64) * scale
            bias = bias + shift @ kernel
            kernel = scale[:, None] * kernel
        weights.append(kernel.T.astype(np.float32))
        biases.append(bias.astype(np.float32))
    return weights, biases


def write_policy(folder: Path, model) -> Path:
    """Write :func:`policy_arrays` as ``folder/policy.npz`` (``w0, b0, w1, ...``)."""
    weights, biases = policy_arrays(model)
    arrays = {f"w{i}": w for i, w in enumerate(weights)} | {f"b{i}": b for i, b in enumerate(biases)}
    np.savez(folder / POLICY_FILE, **arrays)
    return folder / POLICY_FILE


def read_policy(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weights and biases that :func:`write_policy` wrote into ``folder``."""
    with np.load(folder / POLICY_FILE) as z:
        n = len([k for k in z.files if k.startswith("w")])
        return [z[f"w{i}"] for i in range(n)], [z[f"b{i}"] for i in range(n)]
