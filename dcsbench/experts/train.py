"""Train a state-based expert with PPO or SAC (stable-baselines3), resumably, and export it.

One screen of logic: :class:`PPOConfig` holds the hyper-parameters, :func:`train_expert` runs
PPO's rollout/update loop itself (the same calls as ``PPO.learn``) so that it can stop between
two updates, write a checkpoint and pick up again *exactly*:

* a rollout is ``n_steps`` (a multiple of the 1000-step episode) per env, so every rollout ends
  at an episode boundary of every env;
* per-episode physics seeds are derived from (run seed, env index, episode counter), and the
  counter is restored on resume;
* a checkpoint holds the policy and optimizer state dicts, the VecNormalize statistics, the step
  count and the python/numpy/torch RNG states (no pickled code: ``torch.load(weights_only=True)``,
  ``.npz`` and JSON).

Running the same command again on the same output folder therefore continues the same run, and
``N`` steps in several chunks give the same weights as ``N`` steps in one go (tested).

SAC (``--algo sac``, :class:`SACConfig`) uses the same machinery with one env, one episode per
unit and the replay buffer in the checkpoint; it is far more sample-efficient on walker/hopper
but does ~10x fewer steps/s on a CPU. The JAX learners of :mod:`dcsbench.experts.jaxtrain`
(``--algo crossq``, ``--algo sac-jax``; sbx-rl, an optional extra) run in the same loop as SAC.

PPO hyper-parameters (a documented choice for DeepMind Control locomotion from state): rollouts of
1000 steps x ``n_envs`` (16 envs -> 16k samples per update), 16 minibatches, 10 epochs,
gamma 0.99, GAE lambda 0.95, clip 0.2, lr 3e-4 decayed linearly to 0, no entropy bonus,
max grad norm 0.5, separate 256x256 tanh actor and critic, initial log-std -0.5,
observation and reward normalisation (clip 10).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dcsbench import registry
from dcsbench.results import atomic_write_text

#: Episode seeds of the 20-episode evaluation on an expert's card (disjoint from data seeds).
EXPERT_EVAL_SEEDS: tuple[int, ...] = tuple(3_000_000 + i for i in range(100))
#: Episode seeds on which :func:`select_run` compares a run's snapshots: disjoint from the card's
#: seeds, so the card's evaluation of the chosen policy is not inflated by the choice.
SELECTION_SEEDS: tuple[int, ...] = tuple(4_000_000 + i for i in range(100))

CKPT_PREFIX = "step_"
#: Policy-only copies of a run, every ``snapshot_every`` steps (see :func:`select_run`).
SNAPSHOT_DIR = "snapshots"
#: The SAC replay buffer inside a checkpoint; `pack_run` leaves it out (see the warm start).
REPLAY_FILE = "replay.npz"
#: The SB3 replay-buffer arrays saved in REPLAY_FILE and restored from it.
_REPLAY_KEYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


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
    episode_length: int = registry.EPISODE_LENGTH
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
    episode_length: int = registry.EPISODE_LENGTH
    stand_bonus: float = 0.0       # training-only standing term (see experts.stateenv)
    soft_stand_margin: float = 0.0  # hopper-hop: soft standing test in training (experts.stateenv)
    torch_threads: int = 1


from dcsbench.experts.jaxtrain import JAX_ALGOS  # noqa: E402  (config classes only, no jax)

ALGOS = {"ppo": PPOConfig, "sac": SACConfig, **JAX_ALGOS}
#: Algorithms with a replay buffer (one env, one episode per training unit).
OFF_POLICY = ("sac", *JAX_ALGOS)

#: Config fields that change speed only, never results: left out of a run's identity and command.
_SPEED_ONLY = ("torch_threads", "jax_threads")
#: Off-policy fields a fork may change and still keep the parent's replay buffer: they change
#: how the learner uses stored transitions, never what was stored (rewards, observations, sizes).
_REPLAY_SAFE = frozenset({"learning_rate", "batch_size", "tau", "gamma", "gradient_steps",
                          "train_freq", "policy_delay"})


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

    registry.check_choice("algo", algo, tuple(ALGOS))
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


def _minibatch_size(rollout: int, n_minibatches: int) -> int:
    """Largest divisor of ``rollout`` not above ``rollout / n_minibatches`` (no ragged batch)."""
    target = max(1, rollout // n_minibatches)
    return next(b for b in range(target, 0, -1) if rollout % b == 0)


def _make_env_fn(task: str, seed: int, index: int, episode: int, episode_length: int,
                 stand_bonus: float = 0.0, soft_stand_margin: float = 0.0):
    def _thunk():
        from dcsbench.experts.stateenv import StateEnv
        return StateEnv(task, seed=seed, index=index, episode=episode,
                        episode_length=episode_length, stand_bonus=stand_bonus,
                        soft_stand_margin=soft_stand_margin)
    return _thunk


def _build(task: str, n_envs: int, seed: int, cfg, episodes_done: int,
           vec_env: str = "subproc", device: str = "cpu"):
    """Vector env (VecMonitor + VecNormalize) and a fresh PPO model.

    ``vec_env="subproc"`` steps each env in its own process, ``"dummy"`` all in this process
    (better where inter-process communication is slow or physics is cheap); both give
    identical results. ``device`` is the torch device of the learner (``cpu``, ``cuda``).
    A :class:`SACConfig` builds SAC on one in-process env instead (no normalisation)."""
    if isinstance(cfg, SACConfig):
        return _build_sac(task, n_envs, seed, cfg, episodes_done, device)
    if type(cfg) in JAX_ALGOS.values():
        return _build_jax(task, n_envs, seed, cfg, episodes_done, device)
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor, VecNormalize

    fns = [_make_env_fn(task, seed, i, episodes_done, cfg.episode_length, cfg.stand_bonus,
                        cfg.soft_stand_margin) for i in range(n_envs)]
    registry.check_choice("vec env", vec_env, ("subproc", "dummy"))
    use_subproc = vec_env == "subproc" and n_envs > 1
    venv = SubprocVecEnv(fns, start_method="spawn") if use_subproc else DummyVecEnv(fns)
    env = VecNormalize(VecMonitor(venv, info_keywords=("task_return",)), norm_obs=True,
                       norm_reward=True, clip_obs=cfg.clip_obs, clip_reward=cfg.clip_reward,
                       gamma=cfg.gamma)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[cfg.activation]
    lr0 = cfg.learning_rate
    model = PPO(
        "MlpPolicy", env, n_steps=cfg.n_steps,
        batch_size=_minibatch_size(n_envs * cfg.n_steps, cfg.n_minibatches), n_epochs=cfg.n_epochs,
        learning_rate=lambda progress: lr0 * progress, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip_range, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm, device=device, verbose=0,
        policy_kwargs=dict(net_arch=dict(pi=list(cfg.net_arch), vf=list(cfg.net_arch)),
                           activation_fn=act, log_std_init=cfg.log_std_init))
    return model, env


def _build_sac(task: str, n_envs: int, seed: int, cfg: SACConfig, episodes_done: int, device: str):
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    if n_envs != 1:
        raise ValueError("SAC trains on one env: use --n-envs 1")
    env = VecMonitor(DummyVecEnv([_make_env_fn(task, seed, 0, episodes_done, cfg.episode_length,
                                                cfg.stand_bonus, cfg.soft_stand_margin)]),
                     info_keywords=("task_return",))
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[cfg.activation]
    model = SAC("MlpPolicy", env, buffer_size=cfg.buffer_size, batch_size=cfg.batch_size,
                learning_rate=cfg.learning_rate, gamma=cfg.gamma, tau=cfg.tau,
                learning_starts=cfg.learning_starts, train_freq=cfg.train_freq,
                gradient_steps=cfg.gradient_steps, n_steps=cfg.n_step, device=device, verbose=0,
                policy_kwargs=dict(net_arch=list(cfg.net_arch), activation_fn=act))
    model.action_space.seed(seed)  # warm-up actions (before learning_starts) are seeded too
    return model, env


def _build_jax(task: str, n_envs: int, seed: int, cfg, episodes_done: int, device: str):
    """A JAX (sbx) learner on one in-process env, as :func:`_build_sac`."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from dcsbench.experts import jaxtrain

    if n_envs != 1:
        raise ValueError(f"{algo_of(cfg)} trains on one env: use --n-envs 1")
    env = VecMonitor(DummyVecEnv([_make_env_fn(task, seed, 0, episodes_done, cfg.episode_length,
                                                cfg.stand_bonus, cfg.soft_stand_margin)]),
                     info_keywords=("task_return",))
    return jaxtrain.build(env, seed, cfg, device), env


def _iterate(model, callback) -> None:
    """One unit of training that ends at an episode boundary of every env."""
    if hasattr(model, "replay_buffer"):  # one episode: episode_length env steps, one update each
        steps = model.env.get_attr("episode_length")[0]
        model.learn(steps, callback=callback, log_interval=None, reset_num_timesteps=False)
        return
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    model._update_current_progress_remaining(model.num_timesteps, model._total_timesteps)
    model.train()


# ------------------------------------------------------------------------------ checkpoints
def _step_dirs(root: Path) -> list[Path]:
    """The complete ``step_N`` folders (checkpoints or snapshots) under ``root``, oldest first."""
    return sorted(p for p in root.glob(f"{CKPT_PREFIX}*") if (p / "state.json").is_file())


def _latest_checkpoint(out: Path) -> Path | None:
    done = _step_dirs(out / "checkpoints")
    return done[-1] if done else None


def _resolve_checkpoint(out: Path, ckpt: str | os.PathLike | None) -> Path:
    """``ckpt`` as a path, or the last checkpoint of run ``out`` when it is None."""
    found = _latest_checkpoint(out) if ckpt is None else Path(ckpt)
    if found is None:
        raise FileNotFoundError(f"{out} has no checkpoint")
    return found


def _write_step_dir(root: Path, steps: int, write, state) -> Path:
    """Write ``root/step_N`` atomically: ``write(tmp)`` fills a temporary folder, then
    ``state()`` is written as its ``state.json`` (last: it marks the folder complete) and the
    folder is renamed into place. An existing complete folder is kept as it is."""
    final = root / f"{CKPT_PREFIX}{steps:012d}"
    if (final / "state.json").is_file():
        return final
    tmp = root / f".tmp-{os.getpid()}-{steps}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    (tmp / "state.json").write_text(json.dumps(state()))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def _save_checkpoint(out: Path, model, env, extra: dict, keep: int = 2) -> Path:
    root = out / "checkpoints"
    final = _write_step_dir(root, model.num_timesteps,
                            lambda tmp: _write_checkpoint_files(tmp, model, env),
                            lambda: _checkpoint_state(model, extra))
    old = sorted(p for p in root.glob(f"{CKPT_PREFIX}*") if p != final)
    for p in old[:max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def _save_replay(tmp: Path, model) -> None:
    """The replay buffer's filled part as ``tmp/replay.npz``."""
    rb = model.replay_buffer
    n = rb.buffer_size if rb.full else rb.pos
    np.savez(tmp / REPLAY_FILE, pos=rb.pos, full=rb.full, **{
        k: getattr(rb, k)[:n] for k in _REPLAY_KEYS})


def _write_checkpoint_files(tmp: Path, model, env) -> None:
    """A checkpoint's weights, optimizer state, RNG states and SAC replay buffer or PPO statistics."""
    import torch

    from dcsbench.experts import jaxtrain

    torch.save(torch.get_rng_state(), tmp / "torch_rng.pt")
    if torch.cuda.is_available():
        torch.save(torch.cuda.get_rng_state_all(), tmp / "cuda_rng.pt")
    if jaxtrain.is_jax_model(model):  # train states, PRNG keys, policy arrays, replay buffer
        jaxtrain.write_checkpoint(tmp, model)
        _save_replay(tmp, model)
        return
    torch.save(model.policy.state_dict(), tmp / "policy.pt")
    if hasattr(model, "replay_buffer"):  # SAC: optimizers, entropy coefficient, replay buffer
        torch.save({"actor": model.actor.optimizer.state_dict(),
                    "critic": model.critic.optimizer.state_dict(),
                    "ent_coef": model.ent_coef_optimizer.state_dict(),
                    "log_ent_coef": model.log_ent_coef.detach().cpu()}, tmp / "optimizer.pt")
        _save_replay(tmp, model)
    else:
        torch.save(model.policy.optimizer.state_dict(), tmp / "optimizer.pt")
        np.savez(tmp / "vecnormalize.npz", obs_mean=env.obs_rms.mean, obs_var=env.obs_rms.var,
                 obs_count=np.float64(env.obs_rms.count), ret_mean=env.ret_rms.mean,
                 ret_var=env.ret_rms.var, ret_count=np.float64(env.ret_rms.count), returns=env.returns)


def _checkpoint_state(model, extra: dict) -> dict:
    """A checkpoint's ``state.json``: step and update counters, RNG states, ``extra``."""
    if hasattr(model, "replay_buffer"):
        extra = {**extra, "episode_num": int(model._episode_num),
                 "action_space_rng": model.action_space.np_random.bit_generator.state}
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {"num_timesteps": int(model.num_timesteps), "n_updates": int(model._n_updates),
            "numpy_rng": [np_state[0], np_state[1].tolist(), *map(float, np_state[2:])],
            "python_rng": [py_state[0], list(py_state[1]), py_state[2]], **extra}


def _save_snapshot(out: Path, model, env) -> Path:
    """Keep the current policy (and PPO's normalisation statistics) as
    ``out/snapshots/step_N/``, laid out like a checkpoint so :func:`policy_from_checkpoint`
    reads it. Weights only (~1 MB), no optimizer or replay buffer: a snapshot is for
    evaluation and export, never for resuming. Written atomically; no RNG is touched."""
    import torch

    from dcsbench.experts import jaxtrain

    def write(tmp: Path) -> None:
        if jaxtrain.is_jax_model(model):
            jaxtrain.write_policy(tmp, model)
            return
        torch.save(model.policy.state_dict(), tmp / "policy.pt")
        if not hasattr(model, "replay_buffer"):
            np.savez(tmp / "vecnormalize.npz", obs_mean=env.obs_rms.mean, obs_var=env.obs_rms.var)

    return _write_step_dir(out / SNAPSHOT_DIR, model.num_timesteps, write,
                           lambda: {"num_timesteps": int(model.num_timesteps)})


def _snapshots(out: Path) -> list[Path]:
    return _step_dirs(out / SNAPSHOT_DIR)


def _load_checkpoint(ckpt: Path, model, env) -> dict:
    import torch

    from dcsbench.experts import jaxtrain

    cpu = {"map_location": "cpu", "weights_only": True}
    state = json.loads((ckpt / "state.json").read_text())
    if jaxtrain.is_jax_model(model):
        jaxtrain.load_checkpoint(ckpt, model)
        _load_replay_and_counters(ckpt, model, state)
    elif hasattr(model, "replay_buffer"):
        model.policy.load_state_dict(torch.load(ckpt / "policy.pt", **cpu))
        _load_sac_state(ckpt, model, state)
    else:
        model.policy.load_state_dict(torch.load(ckpt / "policy.pt", **cpu))
        _load_ppo_state(ckpt, model, env)
    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    torch.set_rng_state(torch.load(ckpt / "torch_rng.pt", **cpu))
    if (ckpt / "cuda_rng.pt").is_file() and torch.cuda.is_available():
        states = torch.load(ckpt / "cuda_rng.pt", **cpu)
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    name, keys, pos, has_gauss, cached = state["numpy_rng"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), cached))
    v, internal, gauss = state["python_rng"]
    random.setstate((v, tuple(internal), gauss))
    return state


def _load_sac_state(ckpt: Path, model, state: dict) -> None:
    import torch

    opt = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True)
    with torch.no_grad():
        model.log_ent_coef.copy_(opt["log_ent_coef"])
    model.actor.optimizer.load_state_dict(opt["actor"])
    model.critic.optimizer.load_state_dict(opt["critic"])
    model.ent_coef_optimizer.load_state_dict(opt["ent_coef"])
    _load_replay_and_counters(ckpt, model, state)


def _load_replay_and_counters(ckpt: Path, model, state: dict) -> None:
    """Restore an off-policy learner's replay buffer (when the checkpoint has it), episode
    counter and warm-up action RNG, and start the next episode."""
    rb = model.replay_buffer
    if (ckpt / REPLAY_FILE).is_file():  # else a warm start: see train_expert
        with np.load(ckpt / REPLAY_FILE) as z:
            for k in _REPLAY_KEYS:
                arr = z[k]
                getattr(rb, k)[:len(arr)] = arr
            rb.pos, rb.full = int(z["pos"]), bool(z["full"])
    model._episode_num = state["episode_num"]
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]
    model._last_obs = model.env.reset()  # next episode (the env's episode counter was restored)
    model._last_episode_starts = np.ones(model.env.num_envs, dtype=bool)


def _load_ppo_state(ckpt: Path, model, env) -> None:
    import torch

    model.policy.optimizer.load_state_dict(
        torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True))
    with np.load(ckpt / "vecnormalize.npz") as z:
        env.obs_rms.mean, env.obs_rms.var = z["obs_mean"].copy(), z["obs_var"].copy()
        env.obs_rms.count = float(z["obs_count"])
        env.ret_rms.mean, env.ret_rms.var = z["ret_mean"].copy(), z["ret_var"].copy()
        env.ret_rms.count = float(z["ret_count"])
        returns = z["returns"].copy()
    # The envs are at an episode boundary: start the next episodes without touching the
    # normalisation statistics (an uninterrupted run updated them on the auto-reset already).
    raw = env.venv.reset()
    env.old_obs, env.returns = raw, returns
    model._last_obs = env.normalize_obs(raw)
    model._last_episode_starts = np.ones(env.num_envs, dtype=bool)


# ------------------------------------------------------------------------------ training
def canonical_command(task: str, total_steps: int, n_envs: int, seed: int, algo: str = "ppo",
                      overrides: dict | None = None) -> str:
    """The command that reproduces a run (output folder and time limits do not change results);
    ``overrides`` (see :func:`config_overrides`) become ``--set KEY=VALUE`` options."""
    cmd = f"dcsbench train-expert {task} --total-steps {total_steps} --n-envs {n_envs} --seed {seed}"
    cmd += f" --algo {algo}" if algo != "ppo" else ""
    for key, value in sorted((overrides or {}).items()):
        cmd += f" --set {key}={json.dumps(value, separators=(',', ':'))}"
    return cmd


def _read_run(run_file: Path) -> dict:
    """A run's ``run.json`` with the defaults of older runs filled in: ``algo`` (PPO before SAC
    existed) and config fields added to the config class later (they take their default)."""
    run = json.loads(run_file.read_text())
    run.setdefault("algo", "ppo")
    run["config"] = {**dataclasses.asdict(ALGOS[run["algo"]]()), **run["config"]}
    return run


def fork_run(parent: str | os.PathLike, out: str | os.PathLike, config, task: str, seed: int,
             n_envs: int, log=print) -> dict:
    """Start run ``out`` from the last checkpoint of run ``parent`` with a changed ``config``.

    The way to change a hyper-parameter of a run mid-way (e.g. a training-only shaping term once
    the policy has learnt to move) without touching the parent, which stays resumable. ``out``
    gets the parent's last checkpoint. A SAC fork that changes only fields in ``_REPLAY_SAFE``
    (learning rate, batch size, tau, gamma, gradient steps, train frequency: how stored
    transitions are used, not what they hold) keeps the parent's replay buffer and continues
    without a warm start. Any other change drops the buffer, so the fork resumes by a warm
    start and learns only from transitions gathered under the new config (the stored rewards
    of a changed shaping term would otherwise stay in the buffer for up to ``buffer_size``
    steps). A PPO fork keeps its normalisation statistics. Task, algorithm, seed and envs must
    match the parent. ``run.json`` records the parent's command, step, config and chunks, the
    changed fields and whether the buffer was kept under ``forked_from``; exported cards carry
    it. Returns that record."""
    parent, out = Path(parent), Path(out)
    if not (parent / "run.json").is_file():
        raise FileNotFoundError(f"--fork-from {parent}: no run.json there (not a train-expert run)")
    prun = _read_run(parent / "run.json")
    ckpt = _latest_checkpoint(parent)
    if ckpt is None:
        raise FileNotFoundError(f"--fork-from {parent} has no checkpoint")
    algo = algo_of(config)
    for key, was, want in (("task", prun["task"], task), ("algo", prun["algo"], algo),
                           ("seed", prun["seed"], seed), ("n_envs", prun["n_envs"], n_envs)):
        if was != want:
            raise ValueError(f"--fork-from {parent} has {key}={was!r}, not {want!r}")
    old = prun["config"]
    new = dataclasses.asdict(config)
    changes = {k: [old.get(k), v] for k, v in new.items() if k not in _SPEED_ONLY and old.get(k) != v}
    steps = json.loads((ckpt / "state.json").read_text())["num_timesteps"]
    keep_replay = (algo in OFF_POLICY and set(changes) <= _REPLAY_SAFE
                   and (ckpt / REPLAY_FILE).is_file())
    record = {"run": str(parent), "command": prun["command"], "at_steps": steps,
              "config": {k: v for k, v in old.items() if k not in _SPEED_ONLY},
              "changes": changes, "chunks": prun.get("chunks", []),
              "train_seconds": prun.get("train_seconds")}
    if algo in OFF_POLICY:
        record["replay_kept"] = keep_replay
    tmp, dest = out / "checkpoints" / f".tmp-fork-{os.getpid()}", out / "checkpoints" / ckpt.name
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ckpt, tmp, ignore=None if keep_replay else shutil.ignore_patterns(REPLAY_FILE))
    shutil.rmtree(dest, ignore_errors=True)  # left by a fork killed before run.json was written
    os.replace(tmp, dest)
    if (parent / "progress.csv").is_file():
        shutil.copyfile(parent / "progress.csv", out / "progress.csv")
    log(f"forked {parent} at {steps} steps into {out}; changed: "
        + (", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items()) or "nothing")
        + ("; replay buffer kept" if keep_replay else ""))
    return record


def train_expert(task: str, out: str | os.PathLike, total_steps: int = 10_000_000, n_envs: int = 8,
                 seed: int = 0, max_minutes: float | None = None, checkpoint_minutes: float = 3.0,
                 config: PPOConfig | None = None, log=print, export: bool = True,
                 eval_episodes: int = 20, vec_env: str = "subproc", device: str = "cpu",
                 stop_at: int | None = None, fork_from: str | os.PathLike | None = None,
                 snapshot_every: int = 50_000) -> dict:
    """Train (or resume) a PPO expert for ``task`` in folder ``out``.

    Re-running with the same folder resumes from its last checkpoint and continues to
    ``total_steps`` (rounded up to whole rollouts of ``n_envs * n_steps``). Stops early, after
    writing a checkpoint, when ``max_minutes`` would be exceeded by the next update or on
    SIGTERM/SIGINT. When finished (and ``export``), writes ``out/export/{task}.safetensors``,
    ``.json`` and ``.md`` with a deterministic ``eval_episodes``-episode evaluation.
    ``vec_env`` (``subproc`` or ``dummy``) changes speed only, never results; ``device``
    (``cpu``/``cuda``) runs the learner on a GPU (results then differ in the last bits).
    ``stop_at`` pauses (and exports) at that many steps, mid-schedule: the way to reproduce an
    expert that was exported from an intermediate checkpoint. ``fork_from`` starts a new
    ``out`` from another run's last checkpoint with this ``config`` (see :func:`fork_run`); once
    ``out`` exists it is ignored, so the same command resumes the fork. Every time the step
    count crosses a multiple of ``snapshot_every`` (0: never) the policy is kept under
    ``out/snapshots/`` for :func:`select_run`; that changes nothing in training.

    Returns a status dict: ``num_timesteps``, ``total_steps``, ``finished``, ``checkpoint``.
    """
    import torch
    from stable_baselines3.common.utils import set_random_seed

    t_start = time.monotonic()
    registry.check_choice("task", task, registry.TASKS)
    cfg = config or PPOConfig()
    algo = algo_of(cfg)
    off_policy = algo in OFF_POLICY
    n_steps = cfg.episode_length if off_policy else cfg.n_steps  # env steps per env per unit
    if n_steps % cfg.episode_length:
        raise ValueError(f"n_steps ({cfg.n_steps}) must be a multiple of episode_length "
                         f"({cfg.episode_length}) for exact resumption")
    if n_envs < 1 or total_steps < 1:
        raise ValueError("--n-envs and --total-steps must be positive")
    if snapshot_every < 0:
        raise ValueError("--snapshot-every must be >= 0 (0: no snapshots)")
    per_iter = n_envs * n_steps
    total = int(math.ceil(total_steps / per_iter) * per_iter)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "run.json"
    cfg_dict = dataclasses.asdict(cfg)
    if run_file.is_file():
        run = _read_run(run_file)
        checks = [("task", run["task"], task), ("algo", run["algo"], algo),
                  ("seed", run["seed"], seed), ("n_envs", run["n_envs"], n_envs)]
        checks += [(k, run["config"].get(k), v) for k, v in cfg_dict.items() if k not in _SPEED_ONLY]
        for key, old, new in checks:
            if old != new:
                raise ValueError(f"{out} holds a run with {key}={old!r}, not {new!r}; "
                                 f"use another --out folder")
        run["config"].update({k: cfg_dict[k] for k in _SPEED_ONLY if k in cfg_dict})
        if run["total_steps"] != total:
            log(f"note: total steps changed {run['total_steps']} -> {total} (the lr schedule follows)")
    else:
        run = {"task": task, "algo": algo, "seed": seed, "n_envs": n_envs, "config": cfg_dict,
               "chunks": [],
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if fork_from is not None:
            run["forked_from"] = fork_run(fork_from, out, cfg, task, seed, n_envs, log=log)
    run["total_steps"] = total
    run.setdefault("route", route_of(algo))
    run["command"] = canonical_command(task, total, n_envs, seed, algo, config_overrides(cfg))
    if run.get("forked_from"):
        run["command"] += f" --fork-from {run['forked_from']['run']}"

    atomic_write_text(run_file, json.dumps(run, indent=2) + "\n")  # a killed run stays resumable
    torch.set_num_threads(cfg.torch_threads)
    for stale in (out / "checkpoints").glob(".tmp-*"):  # left by a run killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    ckpt = _latest_checkpoint(out)
    done_steps = json.loads((ckpt / "state.json").read_text())["num_timesteps"] if ckpt else 0
    set_random_seed(seed)
    model, env = _build(task, n_envs, seed, cfg, episodes_done=done_steps // (n_envs * cfg.episode_length),
                        vec_env=vec_env, device=device)
    recent = deque(maxlen=20)
    shaped = deque(maxlen=20)  # returns the learner saw (differ from `recent` with stand_bonus)
    train_seconds = 0.0
    refill_until = 0  # SAC warm start: collect with the policy, no updates, until this step
    warm_start = None
    if ckpt:
        state = _load_checkpoint(ckpt, model, env)
        recent.extend(state.get("recent_returns", []))
        train_seconds = state.get("train_seconds", 0.0)
        log(f"resuming {task} from {ckpt.name}: {model.num_timesteps}/{total} steps")
        if off_policy and not (ckpt / REPLAY_FILE).is_file():  # the buffer starts empty
            refill = int(math.ceil(max(1, cfg.learning_starts) / cfg.episode_length)) * cfg.episode_length
            refill_until = model.num_timesteps + refill
            warm_start = {"refill_steps": refill,
                          "reason": f"{ckpt.name} has no replay buffer ({REPLAY_FILE})"}
            log(f"warm start: {warm_start['reason']}; the policy refills the buffer for {refill} "
                f"steps before updates resume. Not an exact resume: recorded in run.json and the card")
    else:
        envs = f"{n_envs} envs ({vec_env})" if algo == "ppo" else "1 env"
        log(f"training {task} with {algo.upper()}: {total} steps, {envs}, learner on "
            f"{'jax' if algo in JAX_ALGOS else model.device}, "
            f"seed {seed} -> {out}")

    stop = {"signal": None}

    def _on_signal(signum, frame):
        if stop["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop["signal"] = signal.Signals(signum).name
        log(f"{stop['signal']}: checkpointing after the current update")

    old_handlers = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    chunk = {"start_steps": int(model.num_timesteps),
             "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "versions": route_of(algo)["versions"]}
    if warm_start:
        chunk["warm_start"] = warm_start
    last_ckpt_t, last_log_t, reason = time.monotonic(), 0.0, "finished"
    try:
        if algo == "ppo":
            total_arg, callback = model._setup_learn(total - model.num_timesteps, None,
                                                     reset_num_timesteps=False)
            assert total_arg == total
            callback.on_training_start(locals(), globals())
        limit = total if stop_at is None else min(total, int(stop_at))
        while model.num_timesteps < limit:
            t_iter = time.monotonic()
            steps0 = model.num_timesteps
            if off_policy:
                model.gradient_steps = 0 if model.num_timesteps < refill_until else cfg.gradient_steps
                _iterate(model, None)
                t_collect = float("nan")
            else:
                model.collect_rollouts(model.env, callback, model.rollout_buffer,
                                       n_rollout_steps=model.n_steps)
                t_collect = time.monotonic() - t_iter
                model._update_current_progress_remaining(model.num_timesteps, total)
                model.train()
            # The task's own return (the same as "r" unless a training-only shaping term is on).
            recent.extend(float(info.get("task_return", info["r"])) for info in model.ep_info_buffer)
            shaped.extend(float(info["r"]) for info in model.ep_info_buffer)
            model.ep_info_buffer.clear()
            now = time.monotonic()
            dt = now - t_iter
            train_seconds += dt
            sps = (model.num_timesteps - steps0) / dt
            ret = float(np.mean(recent)) if recent else float("nan")
            with open(out / "progress.csv", "a", encoding="utf-8") as f:
                if f.tell() == 0:
                    f.write("steps,steps_per_s,mean_return_last20,train_seconds,collect_fraction\n")
                f.write(f"{model.num_timesteps},{sps:.1f},{ret:.2f},{train_seconds:.1f},{t_collect / dt:.3f}\n")
            if snapshot_every and model.num_timesteps // snapshot_every > steps0 // snapshot_every:
                _save_snapshot(out, model, env)
            if now - last_log_t > 30 or model.num_timesteps >= total:
                log(f"{task} {model.num_timesteps:>10d}/{total} steps  {sps:7.0f} steps/s  "
                    f"return(last {len(recent)}) {ret:7.1f}  "
                    + (f"shaped {np.mean(shaped):7.1f}  " if cfg.stand_bonus and shaped else "")
                    + (f"collect {t_collect / dt:4.0%}  " if algo == "ppo" else "")
                    + f"lr {model.lr_schedule(model._current_progress_remaining):.2e}")
                last_log_t = now
            extra = {"recent_returns": list(recent), "train_seconds": train_seconds}
            if stop["signal"]:
                reason = stop["signal"]
                break
            if max_minutes is not None and (now - t_start) + 1.5 * dt + 5 > 60 * max_minutes \
                    and model.num_timesteps < limit:
                reason = "time limit"
                break
            if now - last_ckpt_t > 60 * checkpoint_minutes:
                _save_checkpoint(out, model, env, extra)
                last_ckpt_t = time.monotonic()
        if reason == "finished" and model.num_timesteps < total:
            reason = "stop-at"
        extra = {"recent_returns": list(recent), "train_seconds": train_seconds}
        ckpt = _save_checkpoint(out, model, env, extra)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        env.close()
    finished = model.num_timesteps >= total
    stopped_at = stop_at is not None and model.num_timesteps >= min(total, int(stop_at))
    chunk.update(end_steps=int(model.num_timesteps), reason=reason,
                 seconds=round(time.monotonic() - t_start, 1))
    run["chunks"].append(chunk)
    run["train_seconds"] = round(train_seconds, 1)
    atomic_write_text(run_file, json.dumps(run, indent=2) + "\n")
    status = {"num_timesteps": int(model.num_timesteps), "total_steps": total,
              "finished": finished, "checkpoint": str(ckpt)}
    if finished or stopped_at:
        if export:
            status["export"] = str(export_run(out, eval_episodes=eval_episodes, log=log))
        log(f"{'finished' if finished else 'stopped'}: {model.num_timesteps} steps")
    else:
        log(f"paused ({reason}) at {model.num_timesteps}/{total} steps; "
            f"re-run the same command to resume")
    return status


def policy_from_checkpoint(out: str | os.PathLike, ckpt: str | os.PathLike | None = None):
    """The :class:`~dcsbench.experts.policy.ExpertPolicy` of run ``out``: of its last checkpoint,
    or of ``ckpt`` (a checkpoint or snapshot folder of that run)."""
    import torch

    from dcsbench.experts.policy import ExpertPolicy

    out = Path(out)
    run = json.loads((out / "run.json").read_text())
    ckpt = _resolve_checkpoint(out, ckpt)
    cfg = run["config"]
    if run.get("algo", "ppo") in JAX_ALGOS:  # policy.npz: plain arrays, tanh of the last layer
        from dcsbench.experts.jaxtrain import read_policy

        weights, biases = read_policy(ckpt)
        dim = weights[0].shape[1]
        return ExpertPolicy(run["task"], np.zeros(dim), np.ones(dim), weights, biases,
                            activation=cfg["activation"], obs_clip=float("inf"), obs_epsilon=0.0,
                            output="tanh")
    sd = torch.load(ckpt / "policy.pt", map_location="cpu", weights_only=True)
    n = len(run["config"]["net_arch"])
    if run.get("algo", "ppo") == "sac":  # squashed Gaussian: tanh(mean); no obs normalisation
        names = [f"actor.latent_pi.{2 * i}" for i in range(n)] + ["actor.mu"]
        dim = sd[f"{names[0]}.weight"].shape[1]
        return ExpertPolicy(run["task"], np.zeros(dim), np.ones(dim),
                            [sd[f"{k}.weight"].numpy() for k in names],
                            [sd[f"{k}.bias"].numpy() for k in names], activation=cfg["activation"],
                            obs_clip=float("inf"), obs_epsilon=0.0, output="tanh")
    names = [f"mlp_extractor.policy_net.{2 * i}" for i in range(n)] + ["action_net"]
    with np.load(ckpt / "vecnormalize.npz") as z:
        mean, var = z["obs_mean"].copy(), z["obs_var"].copy()
    return ExpertPolicy(run["task"], mean, var, [sd[f"{k}.weight"].numpy() for k in names],
                        [sd[f"{k}.bias"].numpy() for k in names], activation=cfg["activation"],
                        obs_clip=cfg["clip_obs"], obs_epsilon=1e-8)


def export_run(out: str | os.PathLike, eval_episodes: int = 20, log=print,
               ckpt: str | os.PathLike | None = None, selection: dict | None = None) -> Path:
    """Export the last checkpoint of run ``out`` (or the checkpoint/snapshot folder ``ckpt``) to
    ``out/export/{task}.{safetensors,json,md}`` after a deterministic ``eval_episodes``-episode
    evaluation on the state env (seeds :data:`EXPERT_EVAL_SEEDS`). ``selection`` (from
    :func:`select_run`) is stored on the card."""
    import hashlib

    import stable_baselines3

    from dcsbench.experts.cards import render_card
    from dcsbench.experts.stateenv import evaluate_state_policy

    out = Path(out)
    run = json.loads((out / "run.json").read_text())
    task = run["task"]
    algo = run.get("algo", "ppo")
    route = route_of(algo)
    trained_with = run.get("route")  # the versions the run was trained with, if recorded
    if trained_with and trained_with != route:
        route = {**route, "trained_with": trained_with}
    ckpt = _resolve_checkpoint(out, ckpt)
    policy = policy_from_checkpoint(out, ckpt)
    steps = json.loads((ckpt / "state.json").read_text())["num_timesteps"]
    seeds = list(EXPERT_EVAL_SEEDS[:eval_episodes])
    log(f"evaluating {task} expert on {len(seeds)} episodes ...")
    returns = evaluate_state_policy(policy, task, seeds)
    dest = out / "export"
    policy.metadata = {"steps": steps, "seed": run["seed"]}
    path = policy.save(dest / f"{task}.safetensors")
    card = {
        "task": task,
        "algorithm": (f"{_ALGO_NAMES.get(algo, algo.upper())} "
                      + (f"(sbx-rl {route['versions'].get('sbx-rl')}, jax {route['versions'].get('jax')})"
                         if algo in JAX_ALGOS else f"(stable-baselines3 {stable_baselines3.__version__})")),
        "route": route,
        "steps": steps, "seed": run["seed"], "n_envs": run["n_envs"],
        "command": run["command"] + (f" --stop-at {steps}" if steps < run["total_steps"] else ""),
        "total_steps_of_run": run["total_steps"], "hyperparameters": run["config"],
        "train_seconds": run.get("train_seconds"),
        "warm_starts": [{"at_steps": c["start_steps"], **c["warm_start"]}
                        for c in (run.get("forked_from") or {}).get("chunks", []) + run.get("chunks", [])
                        if c.get("warm_start")],
        **({"forked_from": {k: run["forked_from"][k] for k in ("run", "command", "at_steps", "changes",
                                                                 "replay_kept") if k in run["forked_from"]}}
           if run.get("forked_from") else {}),
        "state_dim": policy.state_dim, "action_dim": policy.action_dim, "output": policy.output,
        "eval": {"episodes": len(seeds), "seeds": seeds, "returns": [round(r, 3) for r in returns],
                 "mean": float(np.mean(returns)), "std": float(np.std(returns)),
                 "deterministic": True, "env": "state (dcsbench.experts.stateenv.StateEnv)"},
        **({"selection": selection} if selection else {}),
        "paper_expert_return": registry.PAPER_EXPERT_RETURNS.get(task),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "date": datetime.now(timezone.utc).date().isoformat(),
    }
    atomic_write_text(dest / f"{task}.json", json.dumps(card, indent=2) + "\n")
    atomic_write_text(dest / f"{task}.md", render_card(card))
    log(f"{task}: mean return {card['eval']['mean']:.1f} +- {card['eval']['std']:.1f} "
        f"over {len(seeds)} episodes -> {dest}")
    return dest


def _policy_file(folder: Path) -> str:
    """The policy file of a checkpoint or snapshot folder (torch ``policy.pt`` or JAX arrays)."""
    from dcsbench.experts.jaxtrain import POLICY_FILE
    return POLICY_FILE if (folder / POLICY_FILE).is_file() else "policy.pt"


#: Display names of the algorithms on cards.
_ALGO_NAMES = {"crossq": "CrossQ", "sac-jax": "SAC"}


def select_run(out: str | os.PathLike, episodes: int = 10, eval_episodes: int = 20, log=print) -> Path:
    """Export the best policy of run ``out`` among its snapshots and its last checkpoint.

    Each candidate is evaluated (deterministic actions, state env) on the first ``episodes`` of
    :data:`SELECTION_SEEDS`; the one with the highest mean return (the later one on a tie) is
    exported by :func:`export_run`, whose card evaluation uses :data:`EXPERT_EVAL_SEEDS`. The
    two seed sets are disjoint, so the card's number is a fair estimate for the chosen policy,
    not the maximum of noisy scores. Scores are cached in ``out/selection.json`` (written
    atomically), so a re-run evaluates only new snapshots. The card's command stops at the
    chosen step (``--stop-at``) and its ``selection`` field lists every candidate's score."""
    import hashlib

    from dcsbench.experts.stateenv import evaluate_state_policy

    out = Path(out)
    if not 1 <= episodes <= len(SELECTION_SEEDS):
        raise ValueError(f"--select-episodes must be in 1..{len(SELECTION_SEEDS)}")
    task = json.loads((out / "run.json").read_text())["task"]
    folders = {json.loads((p / "state.json").read_text())["num_timesteps"]: p for p in _snapshots(out)}
    last = _latest_checkpoint(out)
    if last is not None:
        folders[json.loads((last / "state.json").read_text())["num_timesteps"]] = last
    if not folders:
        raise FileNotFoundError(f"{out} has no snapshot or checkpoint to select from")
    seeds = list(SELECTION_SEEDS[:episodes])
    cache_file = out / "selection.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    scores = {int(k): v for k, v in cache.get("scores", {}).items()} if cache.get("seeds") == seeds else {}
    digest = {k: hashlib.sha256((p / _policy_file(p)).read_bytes()).hexdigest() for k, p in folders.items()}
    for steps in sorted(k for k in folders if scores.get(k, {}).get("sha256") != digest[k]):
        returns = evaluate_state_policy(policy_from_checkpoint(out, folders[steps]), task, seeds)
        scores[steps] = {"mean": round(float(np.mean(returns)), 3), "std": round(float(np.std(returns)), 3),
                         "sha256": digest[steps]}  # a re-trained step is scored again
        log(f"{task} {steps:>10d} steps: {scores[steps]['mean']:7.1f} +- {scores[steps]['std']:5.1f}"
            f" over {episodes} selection episodes")
        atomic_write_text(cache_file, json.dumps({"seeds": seeds, "scores": {
            str(k): v for k, v in sorted(scores.items())}}, indent=1) + "\n")
    candidates = sorted(folders)
    best = max(candidates, key=lambda k: (scores[k]["mean"], k))
    log(f"best of {len(candidates)}: {best} steps ({scores[best]['mean']:.1f} on the selection seeds)")
    selection = {"episodes": episodes, "seeds": [seeds[0], seeds[-1]], "chosen_steps": best,
                 "chosen_mean": scores[best]["mean"],
                 "candidates": [[k, scores[k]["mean"]] for k in candidates]}
    return export_run(out, eval_episodes=eval_episodes, log=log, ckpt=folders[best], selection=selection)


def pack_run(out: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy run ``out`` into ``dest`` small enough to move between machines (or commit): run.json,
    progress.csv and the last checkpoint, without the SAC replay buffer (``replay.npz``, tens to
    hundreds of MB). Training resumes from ``dest`` (or a copy of it) as a PPO run exactly, and as
    a SAC run by a recorded warm start (the policy refills the buffer before updates resume).
    ``dest`` is replaced atomically; returns it."""
    out, dest = Path(out), Path(dest)
    ckpt = _latest_checkpoint(out)
    if ckpt is None:
        raise FileNotFoundError(f"{out} has no checkpoint to pack")
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints").mkdir(parents=True)
    for name in ("run.json", "progress.csv"):
        if (out / name).is_file():
            shutil.copyfile(out / name, tmp / name)
    shutil.copytree(ckpt, tmp / "checkpoints" / ckpt.name, ignore=shutil.ignore_patterns(REPLAY_FILE))
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def install_export(out: str | os.PathLike, experts_dir: str | os.PathLike | None = None) -> list[Path]:
    """Copy ``out/export/{task}.*`` into the package's experts folder (to be committed)."""
    from dcsbench.experts import EXPERTS_DIR

    out = Path(out)
    task = json.loads((out / "run.json").read_text())["task"]
    dest = Path(experts_dir or EXPERTS_DIR)
    copied = []
    for ext in ("safetensors", "json", "md"):
        src = out / "export" / f"{task}.{ext}"
        if not src.is_file():
            raise FileNotFoundError(f"{src} missing: finish training (or run export) first")
        tmp = dest / f".{task}.{ext}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest / f"{task}.{ext}")
        copied.append(dest / f"{task}.{ext}")
    return copied
