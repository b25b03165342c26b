"""Camera shake and agent colour change: the two non-video distractors of the Distracting Control
Suite (Stone et al., 2021), dynamic, implemented for dcsbench.

Both follow the paper's parameterisation by one *scale* (0.1 in the protocol, PROTOCOL.md
section 1); each is a small random process sampled at reset and advanced once per control step
from the episode's own ``numpy.random.Generator``, so an episode seed fixes everything.

* Camera: the view orbits the point the task camera looks at. Its position relative to that
  point is a 3-D vector with a random-walk velocity (per-step Gaussian noise, std
  ``0.1*scale``, speed clipped to ``0.4*scale``); after each move the position is projected back
  into the allowed set: azimuth and elevation within ``(pi/2)*scale`` of the original, distance
  between ``(1 - 0.5*scale)`` and ``(1 + 1.5*scale)`` times the original, and (upper quadrant)
  never below the look-at point's horizon. The camera also rolls about its viewing axis: roll
  angle within ``(pi/2)*scale``, roll velocity noise std ``(pi/300)*scale``, clipped to
  ``(pi/50)*scale``. The initial pose is uniform in the allowed set, velocities start at zero.
* Colour: one RGB offset, shared by every material and geom colour of the agent (all geoms not
  on the world body), starts uniform in ``[-scale, scale]^3`` and then random-walks with
  per-step std ``0.03*scale``, clipped to ``[-scale, scale]``; colours are clipped to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CameraShakeParams:
    """Camera-shake limits for a distraction ``scale`` (paper numbers, PROTOCOL.md section 1)."""

    scale: float = 0.1
    upper_quadrant: bool = True

    @property
    def angle_delta(self) -> float:
        """Max azimuth/elevation/roll offset from the original camera, radians."""
        return math.pi / 2 * self.scale

    @property
    def zoom_in(self) -> float:
        """Max relative decrease of the camera distance."""
        return 0.5 * self.scale

    @property
    def zoom_out(self) -> float:
        """Max relative increase of the camera distance."""
        return 1.5 * self.scale

    @property
    def vel_std(self) -> float:
        """Std of the per-step velocity noise (world units per step)."""
        return 0.1 * self.scale

    @property
    def max_vel(self) -> float:
        """Max camera speed (world units per step)."""
        return 0.4 * self.scale

    @property
    def roll_vel_std(self) -> float:
        """Std of the per-step roll-velocity noise (radians per step)."""
        return math.pi / 300 * self.scale

    @property
    def roll_max_vel(self) -> float:
        """Max roll speed (radians per step)."""
        return math.pi / 50 * self.scale


def _spherical(v: np.ndarray) -> tuple[float, float, float]:
    r = float(np.linalg.norm(v))
    return r, math.atan2(v[1], v[0]), math.asin(max(-1.0, min(1.0, v[2] / r)))


def _cartesian(r: float, az: float, el: float) -> np.ndarray:
    return np.array([r * math.cos(el) * math.cos(az), r * math.cos(el) * math.sin(az),
                     r * math.sin(el)])


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class CameraShake:
    """Dynamic camera shake around a fixed (possibly body-tracking) MuJoCo camera.

    Use :meth:`reset` after the physics is initialised, :meth:`step` once per control step, and
    install :meth:`apply` as the renderer's ``camera_hook``.
    """

    def __init__(self, camera_id: int, params: CameraShakeParams = CameraShakeParams()):
        self.camera_id = camera_id
        self.params = params
        self._offset = np.zeros(3)      # camera position relative to the look-at point
        self._vel = np.zeros(3)
        self._roll = 0.0
        self._roll_vel = 0.0
        self._base = (1.0, 0.0, 0.0)    # (distance, azimuth, elevation) of the task camera

    def _base_frame(self, physics) -> tuple[np.ndarray, np.ndarray, float]:
        """Task camera position, look-at point and distance for the current physics state."""
        data, model = physics.data, physics.model
        pos = np.array(data.cam_xpos[self.camera_id])
        forward = -np.array(data.cam_xmat[self.camera_id]).reshape(3, 3)[:, 2]
        body = int(model.cam_bodyid[self.camera_id]) or 1
        dist = float(np.dot(np.array(data.subtree_com[body]) - pos, forward))
        if dist < 0.1:  # camera not looking at the body: orbit a point 1 unit ahead
            dist = 1.0
        return pos, pos + dist * forward, dist

    def _project(self, offset: np.ndarray) -> np.ndarray:
        p = self.params
        r0, az0, el0 = self._base
        r, az, el = _spherical(offset)
        az = az0 + float(np.clip(_wrap(az - az0), -p.angle_delta, p.angle_delta))
        lo = el0 - p.angle_delta
        if p.upper_quadrant:
            lo = max(lo, min(0.0, el0))
        el = float(np.clip(el, lo, el0 + p.angle_delta))
        r = float(np.clip(r, r0 * (1 - p.zoom_in), r0 * (1 + p.zoom_out)))
        return _cartesian(r, az, el)

    def reset(self, physics, rng: np.random.Generator) -> None:
        """Sample an initial pose uniformly in the allowed set; zero the velocities."""
        p = self.params
        pos, lookat, _ = self._base_frame(physics)
        self._base = _spherical(pos - lookat)
        r0, az0, el0 = self._base
        lo = el0 - p.angle_delta
        if p.upper_quadrant:
            lo = max(lo, min(0.0, el0))
        r = r0 * rng.uniform(1 - p.zoom_in, 1 + p.zoom_out)
        az = az0 + rng.uniform(-p.angle_delta, p.angle_delta)
        el = rng.uniform(lo, el0 + p.angle_delta)
        self._offset = _cartesian(r, az, el)
        self._vel = np.zeros(3)
        self._roll = float(rng.uniform(-p.angle_delta, p.angle_delta))
        self._roll_vel = 0.0

    def step(self, rng: np.random.Generator) -> None:
        """Advance the random walk by one control step."""
        p = self.params
        self._vel = self._vel + rng.normal(0.0, p.vel_std, size=3)
        speed = float(np.linalg.norm(self._vel))
        if speed > p.max_vel:
            self._vel *= p.max_vel / speed
        moved = self._project(self._offset + self._vel)
        self._vel = moved - self._offset  # velocity along the boundary after projection
        self._offset = moved
        self._roll_vel = float(np.clip(self._roll_vel + rng.normal(0.0, p.roll_vel_std),
                                       -p.roll_max_vel, p.roll_max_vel))
        self._roll = float(np.clip(self._roll + self._roll_vel, -p.angle_delta, p.angle_delta))
        if abs(self._roll) >= p.angle_delta:
            self._roll_vel = 0.0

    def apply(self, scene_cameras, physics) -> None:
        """Renderer hook: move the scene's GL cameras to the shaken pose."""
        _, lookat, _ = self._base_frame(physics)
        pos = lookat + self._offset
        forward = -self._offset / np.linalg.norm(self._offset)
        up = np.array([0.0, 0.0, 1.0]) - forward[2] * forward
        norm = np.linalg.norm(up)
        up = up / norm if norm > 1e-6 else np.array([0.0, 1.0, 0.0])
        # Roll: rotate `up` about `forward` (Rodrigues; up is orthogonal to forward).
        up = math.cos(self._roll) * up + math.sin(self._roll) * np.cross(forward, up)
        for cam in scene_cameras:
            cam.pos[:] = pos
            cam.forward[:] = forward
            cam.up[:] = up

    @property
    def state(self) -> np.ndarray:
        """Current (offset xyz, roll) - for tests and debugging."""
        return np.array([*self._offset, self._roll])


class ColorChange:
    """Dynamic colour change of the agent's materials and material-less geoms.

    Args:
        physics: the dm_control physics whose model colours are changed in place.
        scale: distraction scale (max offset per RGB channel; per-step std is 0.03*scale).
    """

    def __init__(self, physics, scale: float = 0.1):
        model = physics.model
        self.scale = scale
        self._model = model
        agent = np.asarray(model.geom_bodyid) != 0
        matids = np.asarray(model.geom_matid)
        self._mats = np.unique(matids[agent & (matids >= 0)])
        self._geoms = np.flatnonzero(agent & (matids < 0))
        self._mat_rgb0 = np.array(model.mat_rgba[self._mats, :3])
        self._geom_rgb0 = np.array(model.geom_rgba[self._geoms, :3])
        self._delta = np.zeros(3)

    def _apply(self) -> None:
        m = self._model
        if len(self._mats):
            m.mat_rgba[self._mats, :3] = np.clip(self._mat_rgb0 + self._delta, 0.0, 1.0)
        if len(self._geoms):
            m.geom_rgba[self._geoms, :3] = np.clip(self._geom_rgb0 + self._delta, 0.0, 1.0)

    def reset(self, rng: np.random.Generator) -> None:
        """Sample the initial colour offset uniformly in [-scale, scale]^3."""
        self._delta = rng.uniform(-self.scale, self.scale, size=3)
        self._apply()

    def step(self, rng: np.random.Generator) -> None:
        """Random-walk the colour offset by one control step."""
        self._delta = np.clip(self._delta + rng.normal(0.0, 0.03 * self.scale, size=3),
                              -self.scale, self.scale)
        self._apply()

    def restore(self) -> None:
        """Put the model's original colours back."""
        self._delta = np.zeros(3)
        self._apply()

    @property
    def delta(self) -> np.ndarray:
        """Current RGB offset."""
        return self._delta.copy()
