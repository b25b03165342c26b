"""Frame stacking for agent observations (channel-concatenated, oldest frame first)."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np


class FrameStack(gym.Wrapper):
    """Stack the last ``k`` (H,W,C) frames along channels -> (H,W,C*k), oldest first.

    At reset the first frame is repeated ``k`` times, so ``obs[..., -C:]`` is always the newest
    frame. ``info`` is passed through unchanged (``info["state"]`` stays the current state).
    """

    def __init__(self, env: gym.Env, k: int = 3):
        super().__init__(env)
        if int(k) < 1:
            raise ValueError(f"frame_stack must be >= 1, got {k}")
        self.k = int(k)
        space = env.observation_space
        h, w, c = space.shape
        self.observation_space = gym.spaces.Box(0, 255, shape=(h, w, c * self.k), dtype=space.dtype)
        self._frames: deque = deque(maxlen=self.k)

    def _obs(self) -> np.ndarray:
        return np.concatenate(self._frames, axis=-1)

    def reset(self, **kwargs):
        """Reset the env and fill the stack with copies of the first frame."""
        obs, info = self.env.reset(**kwargs)
        for _ in range(self.k):
            self._frames.append(obs)
        return self._obs(), info

    def step(self, action):
        """Step the env and push the new frame."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(obs)
        return self._obs(), reward, terminated, truncated, info
