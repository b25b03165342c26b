"""State-based dm_control environments for training and evaluating experts (no rendering).

The observation is :func:`dcsbench.envs.state.flatten_state` of the dm_control observation dict,
i.e. exactly the vector that :func:`dcsbench.make_env` puts in ``info["state"]``, so an expert
trained here acts unchanged during data collection.

Episode seeding is explicit: ``reset(seed=s)`` fully determines the physics initialisation.
Without a seed, episode ``k`` of an environment built with ``(seed, index)`` uses the seed
``SeedSequence([seed, index, k])``; the episode counter can be set at construction, which is how
``train-expert`` resumes a run exactly where it stopped.

Optional training-only shaping (``stand_bonus > 0``): the reward the learner sees becomes
``task_reward + stand_bonus * clip(h / h_stand, 0, 1)``, a dense term for getting the body up
(``h``: hopper torso-above-foot height, walker torso height, humanoid head height; ``h_stand``:
the task's own stand height 0.6 / 1.2 / 1.4). It exists for hopper-hop, whose task reward is
zero until the hopper is upright *and* moving, so a learner that has fallen sees no signal.
A second, hopper-hop-only option (``soft_stand_margin = m > 0``) replaces the task's hard
standing test (torso-above-foot height >= 0.6, else no reward at all) by the soft one that
walker-run and humanoid-walk already have: the learner sees ``soft(h) * hopping(v)`` with
``soft(h) = dm_control.utils.rewards.tolerance(h, (0.6, 2), margin=m)`` (Gaussian, 0.1 at the
margin) and the task's own hopping term. It equals the task reward whenever the hopper is
upright and gives partial credit for hopping a little too low, the local optimum SAC reaches on
hopper-hop (a fast, crouched bound that is upright only ~28% of the time).
The unshaped task reward is always in ``info["task_reward"]`` (and its episode sum in
``info["task_return"]`` at the last step); evaluation and data collection use the task reward
only.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

from dcsbench import catalogue
from dcsbench.envs.state import flatten_state


#: hopper-hop's hopping speed for full reward (dm_control.suite.hopper); the reward falls
#: linearly to 0.5 at half this speed and to 0 at standstill.
HOP_SPEED = 2.0

#: Height readout and stand height per task for the ``stand_bonus`` shaping term.
STAND_HEIGHT: dict[str, tuple[str, float]] = {
    "hopper-hop": ("height", 0.6),
    "walker-run": ("torso_height", 1.2),
    "humanoid-walk": ("head_height", 1.4),
}


def _episode_seed(seed: int, index: int, episode: int) -> int:
    """A 31-bit episode seed derived from (run seed, env index, episode counter)."""
    return int(np.random.SeedSequence([seed, index, episode]).generate_state(1)[0] >> 1)


class StateEnv(gym.Env):
    """A dm_control suite task as a Gymnasium env with a flat float32 state observation.

    Args:
        task: a task name of :data:`dcsbench.catalogue.TASKS`, e.g. ``"cheetah-run"``.
        seed: run seed used to derive per-episode seeds when ``reset`` gets none.
        index: index of this env in a vector env (decorrelates parallel envs).
        episode: number of episodes already played (for exact resumption of training).
        episode_length: control steps per episode; the episode is *truncated* after that many.
        stand_bonus: weight of the training-only standing term (module docstring); 0 = the
            task reward unchanged.
        soft_stand_margin: hopper-hop only: margin of the soft standing term that replaces the
            task's hard one in the training reward (module docstring); 0 = off.
    """

    metadata = {"render_modes": []}

    def __init__(self, task: str, seed: int = 0, index: int = 0, episode: int = 0,
                 episode_length: int = catalogue.EPISODE_LENGTH, stand_bonus: float = 0.0,
                 soft_stand_margin: float = 0.0):
        catalogue.check_choice("task", task, catalogue.TASKS)
        if stand_bonus and task not in STAND_HEIGHT:
            raise ValueError(f"stand_bonus is defined for {', '.join(STAND_HEIGHT)}, not {task!r}")
        if stand_bonus < 0:
            raise ValueError(f"stand_bonus must be >= 0, got {stand_bonus}")
        if soft_stand_margin and task != "hopper-hop":
            raise ValueError(f"soft_stand_margin is defined for hopper-hop, not {task!r}")
        if soft_stand_margin < 0:
            raise ValueError(f"soft_stand_margin must be >= 0, got {soft_stand_margin}")
        self.stand_bonus = float(stand_bonus)
        self.soft_stand_margin = float(soft_stand_margin)
        os.environ.setdefault("MUJOCO_GL", "egl")
        from dm_control import suite

        domain, name = catalogue.TASKS[task]
        self.task = task
        self._env = suite.load(domain, name, task_kwargs={"random": 0})
        self._seed, self._index, self._episode = int(seed), int(index), int(episode)
        self.episode_length = int(episode_length)
        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(spec.minimum.astype(np.float32),
                                           spec.maximum.astype(np.float32), dtype=np.float32)
        dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float32)
        self._t = 0

    @property
    def episodes_started(self) -> int:
        """How many episodes this env has started (the next unseeded reset uses this index)."""
        return self._episode

    def reset(self, *, seed: int | None = None, options=None):
        """Start an episode; ``seed`` (or the derived per-episode seed) fixes the initial state."""
        super().reset(seed=seed)
        if seed is None:
            seed = _episode_seed(self._seed, self._index, self._episode)
        self._episode += 1
        self._env.task._random = np.random.RandomState(seed)
        time_step = self._env.reset()
        self._t = 0
        self._task_return = 0.0
        return flatten_state(time_step.observation), {"episode_seed": int(seed)}

    def step(self, action):
        """Apply ``action`` (clipped to the action bounds) for one control step."""
        action = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low,
                         self.action_space.high)
        time_step = self._env.step(action)
        self._t += 1
        truncated = bool(time_step.last() or self._t >= self.episode_length)
        task_reward = float(time_step.reward or 0.0)
        self._task_return += task_reward
        reward = task_reward
        if self.soft_stand_margin:
            from dm_control.utils import rewards

            physics = self._env.physics
            stand = STAND_HEIGHT[self.task][1]
            soft = rewards.tolerance(float(physics.height()), (stand, 2.0), margin=self.soft_stand_margin)
            hopping = rewards.tolerance(float(physics.speed()), bounds=(HOP_SPEED, float("inf")),
                                        margin=HOP_SPEED / 2, value_at_margin=0.5, sigmoid="linear")
            reward = float(soft * hopping)
        if self.stand_bonus:
            readout, stand = STAND_HEIGHT[self.task]
            height = float(getattr(self._env.physics, readout)())
            reward += self.stand_bonus * min(max(height / stand, 0.0), 1.0)
        info = {"task_reward": task_reward}
        if truncated:
            info["task_return"] = self._task_return
        return flatten_state(time_step.observation), reward, False, truncated, info

    def close(self):
        """Release the physics."""
        self._env.close()


def evaluate_state_policy(policy, task: str, seeds, episode_length: int = catalogue.EPISODE_LENGTH
                          ) -> list[float]:
    """Undiscounted returns of ``policy(state) -> action`` on the state env, one per seed."""
    env = StateEnv(task, episode_length=episode_length)
    returns = []
    try:
        for seed in seeds:
            state, _ = env.reset(seed=int(seed))
            total, done = 0.0, False
            while not done:
                state, reward, terminated, truncated, _ = env.step(policy(state))
                total += reward
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return returns
