"""The Distracting Control Suite environment as a Gymnasium env (single 64x64 RGB frame).

:class:`DCSEnv` wraps a dm_control suite task directly (no shimmy layer: one less copy per
step) and adds, in the ``distractors`` setting, the three dynamic distractors:

1. background video, composited in image space: the pixels where no geom was hit (the sky,
   found from the depth buffer or a segmentation pass) show the current video frame; the
   ground plane stays opaque (cheetah, walker, hopper) or is blended with alpha 0.3 over the
   video (humanoid);
2. camera shake (:class:`dcsbench.envs.distractors.CameraShake`);
3. agent colour change (:class:`dcsbench.envs.distractors.ColorChange`).

Randomness: ``reset(seed=s)`` derives independent generators for the task's initial state, the
background (video, start frame, direction), the camera and the colour from ``s``, so the
episode - physics and pixels - is a pure function of ``(task, setting, source, pool, s)``.
A ``reset()`` without a seed draws the next episode seed from the env's seed stream.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from dcsbench.catalogue import EPISODE_LENGTH, IMAGE_SIZE, POOLS, SETTINGS, SOURCES, TASKS, check_choice

from .backgrounds import BackgroundPlayer, get_source
from .distractors import CameraShake, CameraShakeParams, ColorChange
from .render import MASK_MODES, FastRenderer
from .state import flatten_state

#: Distraction scale of camera shake and colour change (paper's "easy" scale, PROTOCOL.md 1).
DISTRACTION_SCALE = 0.1

#: Opacity of the ground plane over the background video, per domain (PROTOCOL.md section 1).
GROUND_ALPHA = {"cheetah": 1.0, "walker": 1.0, "hopper": 1.0, "humanoid": 0.3}

#: Rendered camera per domain (camera 0 everywhere in the protocol).
CAMERA_ID = {"cheetah": 0, "walker": 0, "hopper": 0, "humanoid": 0}


class DCSEnv(gym.Env):
    """One Distracting Control Suite task with 64x64 RGB uint8 observations.

    Args:
        task: ``cheetah-run``, ``walker-run``, ``hopper-hop`` or ``humanoid-walk``.
        setting: ``clean`` (plain rendering) or ``distractors`` (all three, dynamic).
        backgrounds: background pool, ``train`` or ``novel`` (ignored when clean).
        source: background video source, ``procedural`` or ``davis`` (ignored when clean).
        seed: seed of the first ``reset()`` that is called without one.
        davis_dir: DAVIS-2017 folder for ``source="davis"``.
        episode_length: control steps before ``truncated=True``.
        size: image side in pixels (64 in the protocol).
        mask_mode: how sky and ground pixels are found for compositing: ``depth`` (default:
            from the depth buffer of the one RGB pass) or ``segmentation`` (a second,
            segmentation render pass; ~1.4x slower for humanoid). Both give the same sky mask
            and ground masks that differ in < 0.01% of pixels (tested);
            see :meth:`dcsbench.envs.render.FastRenderer.render`.

    ``info["state"]`` (float32) is the proprioceptive state for data collection; agents must not
    see it. ``info["video"]`` is the index of the background video of the episode (or -1).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, task: str, setting: str = "distractors", backgrounds: str = "train",
                 source: str = "procedural", seed: int | None = None, davis_dir=None,
                 episode_length: int = EPISODE_LENGTH, size: int = IMAGE_SIZE,
                 render_mode: str | None = "rgb_array", mask_mode: str = "depth"):
        from dm_control import suite

        self.task = check_choice("task", task, TASKS)
        self.setting = check_choice("setting", setting, SETTINGS)
        self.backgrounds = check_choice("background pool", backgrounds, POOLS)
        self.source = check_choice("background source", source, SOURCES)
        if int(episode_length) < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = int(episode_length)
        check_choice("mask mode", mask_mode, MASK_MODES)
        self.render_mode = render_mode
        domain, task_name = TASKS[task]
        self.domain = domain
        # dcsbench counts steps itself, so the dm_control time limit is lifted.
        self._env = suite.load(domain, task_name, task_kwargs={"time_limit": float("inf")})
        self._physics = self._env.physics
        camera_id = CAMERA_ID[domain]
        self._renderer = FastRenderer(self._physics, size=size, camera_id=camera_id,
                                      share_key=domain)
        self.distractors = setting == "distractors"
        self.mask_mode = mask_mode
        if self.distractors:
            self._player = BackgroundPlayer(get_source(source, davis_dir, size), backgrounds)
            self._shake = CameraShake(camera_id, CameraShakeParams(scale=DISTRACTION_SCALE))
            self._color = ColorChange(self._physics, scale=DISTRACTION_SCALE)
            self._renderer.camera_hook = self._shake.apply
            self._ground_alpha = GROUND_ALPHA[domain]

        spec = self._env.action_spec()
        self._act_low = spec.minimum.astype(np.float64)
        self._act_high = spec.maximum.astype(np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=spec.shape, dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, shape=(size, size, 3), dtype=np.uint8)
        self.state_dim = int(sum(int(np.prod(v.shape)) for v in
                                 self._env.observation_spec().values()))
        self._seed_stream = np.random.default_rng(seed)
        self._rngs: dict[str, np.random.Generator] = {}
        self._steps = 0
        self._frame = None
        self.episode_seed: int | None = None

    # -- rendering ---------------------------------------------------------------------------
    def _render_frame(self) -> np.ndarray:
        r = self._renderer
        if not self.distractors:
            return r.render()
        rgb = r.render(masks=self.mask_mode)
        video = self._player.frame
        out = np.where(r.background[..., None], video, rgb)
        if self._ground_alpha < 1.0:
            a = self._ground_alpha
            blend = (a * rgb.astype(np.float32) + (1 - a) * video.astype(np.float32))
            out = np.where(r.floor[..., None], (blend + 0.5).astype(np.uint8), out)
        return out

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; ``seed`` fixes physics init and every distractor of the episode."""
        super().reset(seed=seed)
        if seed is None:
            seed = int(self._seed_stream.integers(2**63))
        else:
            self._seed_stream = np.random.default_rng(seed)
        self.episode_seed = int(seed)
        children = np.random.SeedSequence(int(seed)).spawn(4)
        self._rngs = {name: np.random.default_rng(ss)
                      for name, ss in zip(("task", "background", "camera", "color"), children)}
        # dm_control tasks draw their initial state from task._random (a RandomState).
        task_seed = self._rngs["task"].integers(2**32)
        self._env.task._random = np.random.RandomState(task_seed)
        if self.distractors:
            self._color.reset(self._rngs["color"])
        time_step = self._env.reset()
        if self.distractors:
            self._player.reset(self._rngs["background"])
            self._shake.reset(self._physics, self._rngs["camera"])
        self._steps = 0
        self._frame = self._render_frame()
        return self._frame, self._info(time_step)

    def step(self, action):
        """Apply ``action`` (in [-1, 1], rescaled to the task's bounds) for one control step."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        a = self._act_low + (a + 1.0) * 0.5 * (self._act_high - self._act_low)
        time_step = self._env.step(a)
        self._steps += 1
        if self.distractors:
            self._player.step()
            self._shake.step(self._rngs["camera"])
            self._color.step(self._rngs["color"])
        self._frame = self._render_frame()
        reward = float(time_step.reward or 0.0)
        truncated = self._steps >= self.episode_length
        return self._frame, reward, False, truncated, self._info(time_step)

    def _info(self, time_step) -> dict:
        return {"state": flatten_state(time_step.observation),
                "video": self._player.video_index if self.distractors else -1}

    def render(self) -> np.ndarray | None:
        """The last observation frame (64x64x3 uint8)."""
        return None if self._frame is None else self._frame.copy()

    def close(self):
        """Release the physics and its GL context."""
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()
            self._env = None
        super().close()

    @property
    def physics(self):
        """The underlying dm_control physics (for experts and debugging, not for agents)."""
        return self._physics
