"""The hyper-parameters of ``train-expert``: one config dataclass per ``--algo`` and what is
derived from them (the algorithm's name and training route, ``--set KEY=VALUE`` overrides, the
fields a run's identity leaves out).

PPO hyper-parameters (a documented choice for DeepMind Control locomotion from state): rollouts of
1000 steps x ``n_envs`` (16 envs -> 16k samples per update), 16 minibatches, 10 epochs,
gamma 0.99, GAE lambda 0.95, clip 0.2, lr 3e-4 decayed linearly to 0, no entropy bonus,
max grad norm 0.5, separate 256x256 tanh actor and critic, initial log-std -0.5,
observation and reward normalisation (clip 10). The JAX learners' configs live in
:mod:`dcsbench.experts.jaxtrain` (no jax is imported for them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from dcsbench import catalogue
from dcsbench.experts.jaxtrain import JAX_ALGOS


@dataclass
class PPOConfig:
    """PPO hyper-parameters (see the module docstring for the rationale)."""

    n_steps: int = 1000            # per env per rollout; must be a multiple of episode_length
    n_minibatches: int = 16
    n_epochs: int = 10
    learning_rate: float = 3e-4    # decayed linearly to 0 over total steps
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "tanh"
    log_std_init: float = -0.5
    clip_obs: float = 10.0
    clip_reward: float = 10.0
    episode_length: int = catalogue.EPISODE_LENGTH
    stand_bonus: float = 0.0       # training-only standing term (see experts.stateenv)
    soft_stand_margin: float = 0.0  # hopper-hop: soft standing test in training (experts.stateenv)
    torch_threads: int = 1         # for the learner process


@dataclass
class SACConfig:
    """SAC hyper-parameters (the standard state-based DMC setting: one env, one gradient step of
    batch 256 per env step, 256x256 ReLU actor and twin critics, automatic entropy tuning).
    Sample-efficient where PPO stalls (walker, hopper), but ~10x fewer steps/s on a CPU."""

    buffer_size: int = 1_000_000
    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    learning_starts: int = 5000
    train_freq: int = 1
    gradient_steps: int = 1
    n_step: int = 1                # n-step TD targets (SB3's NStepReplayBuffer) when > 1
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    episode_length: int = catalogue.EPISODE_LENGTH
    stand_bonus: float = 0.0       # training-only standing term (see experts.stateenv)
    soft_stand_margin: float = 0.0  # hopper-hop: soft standing test in training (experts.stateenv)
    torch_threads: int = 1


ALGOS = {"ppo": PPOConfig, "sac": SACConfig, **JAX_ALGOS}
#: Algorithms with a replay buffer (one env, one episode per training unit).
OFF_POLICY = ("sac", *JAX_ALGOS)

#: Config fields that change speed only, never results: left out of a run's identity and command.
_SPEED_ONLY = ("torch_threads", "jax_threads")
#: Off-policy fields a fork may change and still keep the parent's replay buffer: they change
#: how the learner uses stored transitions, never what was stored (rewards, observations, sizes).
_REPLAY_SAFE = frozenset({"learning_rate", "batch_size", "tau", "gamma", "gradient_steps",
                          "train_freq", "policy_delay"})
#: Display names of the algorithms on cards.
_ALGO_NAMES = {"crossq": "CrossQ", "sac-jax": "SAC"}


def algo_of(cfg) -> str:
    """The ``--algo`` name of config ``cfg``."""
    return next(name for name, cls in ALGOS.items() if type(cfg) is cls)


def route_of(algo: str) -> dict:
    """The training route of ``algo`` as recorded in run.json and on cards: the library and
    the versions of what it runs on."""
    from importlib.metadata import version

    if algo in JAX_ALGOS:
        from dcsbench.experts.jaxtrain import library_versions
        return {"library": "sbx-rl (JAX)", "versions": library_versions()}
    return {"library": "stable-baselines3 (torch)",
            "versions": {k: version(k) for k in ("stable-baselines3", "torch")}}


def parse_overrides(algo: str, items: list[str] | tuple[str, ...]) -> dict:
    """Parse ``KEY=VALUE`` hyper-parameter overrides for ``algo``'s config dataclass.

    Values are read by :func:`dcsbench.overrides.parse_value` (``n_step=3``,
    ``learning_rate=1e-4``, ``net_arch=[512,512]``, ``activation=tanh``). Unknown keys are
    refused with the list of valid ones."""
    from dcsbench.overrides import split_assignment

    catalogue.check_choice("algo", algo, tuple(ALGOS))
    fields = {f.name for f in dataclasses.fields(ALGOS[algo])} - set(_SPEED_ONLY)
    out = {}
    for item in items:
        key, value = split_assignment(item)
        if key not in fields:
            raise ValueError(f"unknown {algo} hyper-parameter {key!r}; valid: {', '.join(sorted(fields))}")
        out[key] = value
    return out


def config_overrides(cfg) -> dict:
    """The fields of ``cfg`` that differ from its class defaults (speed-only fields left out)."""
    default = dataclasses.asdict(type(cfg)())
    return {k: v for k, v in dataclasses.asdict(cfg).items()
            if k not in _SPEED_ONLY and default.get(k) != v}
