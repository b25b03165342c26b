"""The checkpoints and snapshots of a ``train-expert`` run folder, and restoring a learner from one.

Layout (kept stable: runs written by older versions resume, export and select as they are)::

    checkpoints/step_{N:012d}/   state.json (written last: marks the folder complete), torch_rng.pt,
                                 [cuda_rng.pt], and per learner:
                                   PPO   policy.pt  optimizer.pt  vecnormalize.npz
                                   SAC   policy.pt  optimizer.pt  replay.npz
                                   JAX   jaxtrain's files (train states, PRNG keys, policy.npz)
                                         replay.npz
    snapshots/step_{N:012d}/     state.json and the policy only (policy.pt [+ vecnormalize.npz
                                 means and variances] or policy.npz): for evaluation and export

No pickled code: ``torch.load(weights_only=True)``, ``.npz`` and JSON. ``state.json`` holds the
step and update counters, the python/numpy RNG states and what the training loop adds
(``recent_returns``, ``train_seconds``; for off-policy learners ``episode_num`` and
``action_space_rng``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np

CKPT_PREFIX = "step_"
#: Policy-only copies of a run, every ``snapshot_every`` steps (see :func:`select_run`).
SNAPSHOT_DIR = "snapshots"
#: The SAC replay buffer inside a checkpoint; `pack_run` leaves it out (see the warm start).
REPLAY_FILE = "replay.npz"
#: The SB3 replay-buffer arrays saved in REPLAY_FILE and restored from it.
_REPLAY_KEYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _learner(model) -> str:
    """What kind of learner ``model`` is, which decides what its checkpoint holds: ``"jax"`` (an
    sbx learner), ``"sac"`` (torch SAC) or ``"ppo"``. Both off-policy kinds have a replay
    buffer (``model.replay_buffer``), PPO has none."""
    from dcsbench.experts import jaxtrain

    if jaxtrain.is_jax_model(model):
        return "jax"
    return "sac" if hasattr(model, "replay_buffer") else "ppo"


# ------------------------------------------------------------------------------ finding
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


def _snapshots(out: Path) -> list[Path]:
    return _step_dirs(out / SNAPSHOT_DIR)


def _policy_file(folder: Path) -> str:
    """The policy file of a checkpoint or snapshot folder (torch ``policy.pt`` or JAX arrays)."""
    from dcsbench.experts.jaxtrain import POLICY_FILE
    return POLICY_FILE if (folder / POLICY_FILE).is_file() else "policy.pt"


# ------------------------------------------------------------------------------ writing
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
    kind = _learner(model)
    if kind == "jax":  # train states, PRNG keys, policy arrays, replay buffer
        jaxtrain.write_checkpoint(tmp, model)
        _save_replay(tmp, model)
        return
    torch.save(model.policy.state_dict(), tmp / "policy.pt")
    if kind == "sac":  # optimizers, entropy coefficient, replay buffer
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
    if _learner(model) != "ppo":  # off-policy: episode counter and warm-up action RNG
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
        kind = _learner(model)
        if kind == "jax":
            jaxtrain.write_policy(tmp, model)
            return
        torch.save(model.policy.state_dict(), tmp / "policy.pt")
        if kind == "ppo":
            np.savez(tmp / "vecnormalize.npz", obs_mean=env.obs_rms.mean, obs_var=env.obs_rms.var)

    return _write_step_dir(out / SNAPSHOT_DIR, model.num_timesteps, write,
                           lambda: {"num_timesteps": int(model.num_timesteps)})


# ------------------------------------------------------------------------------ loading
def _load_checkpoint(ckpt: Path, model, env) -> dict:
    import torch

    from dcsbench.experts import jaxtrain

    cpu = {"map_location": "cpu", "weights_only": True}
    state = json.loads((ckpt / "state.json").read_text())
    kind = _learner(model)
    if kind == "jax":
        jaxtrain.load_checkpoint(ckpt, model)
        _load_replay_and_counters(ckpt, model, state)
    elif kind == "sac":
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
