"""Building a fresh learner for ``train-expert``: the seeded state envs and the model of each
algorithm (PPO on a normalised vector env, torch SAC or a JAX learner on one in-process env).
Nothing here reads or writes a run folder; :mod:`dcsbench.experts.checkpoint` restores a built
learner's state."""

from __future__ import annotations

from dcsbench import catalogue
from dcsbench.experts.config import JAX_ALGOS, SACConfig, algo_of


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
    catalogue.check_choice("vec env", vec_env, ("subproc", "dummy"))
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
