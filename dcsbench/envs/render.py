"""Fast 64x64 offscreen rendering of a dm_control physics, with sky and ground masks.

``physics.render()`` builds a new camera and reads back a multisampled frame on every call
(~75 frames/s for cheetah on a 2-core CPU with Mesa llvmpipe). :class:`FastRenderer` keeps one
``MjvScene``/``MjvCamera`` per environment, turns off multisampling, shadows and reflections, and
renders the RGB frame (and, when asked, sky and ground masks) from one scene update: about an
order of magnitude faster. See ``benchmarks/RESULTS-envs.md`` for measured numbers.

The masks are what make background-video compositing cheap: instead of uploading a new skybox
texture every step (the original Distracting Control Suite approach), pixels where no geom was
hit are replaced by the video frame in image space (:mod:`dcsbench.envs.dcs_env`). They come
either from the depth buffer read with the RGB frame (one render pass) or from a second,
segmentation render pass.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
from dm_control.mujoco import wrapper

_FLAGS = mujoco.mjtRndFlag

#: Ways to find the sky and ground pixels (see :meth:`FastRenderer.render`).
MASK_MODES = ("segmentation", "depth")

#: GL + MuJoCo render contexts shared by all renderers of one process with the same share key.
_SHARED_CONTEXTS: dict = {}


def _make_contexts(model):
    """An OpenGL context and a MuJoCo render context for ``model`` (as dm_control makes them)."""
    from dm_control import _render
    from dm_control.mujoco.engine import Contexts

    gl = _render.Renderer(max_width=model.vis.global_.offwidth,
                          max_height=model.vis.global_.offheight)
    return Contexts(gl=gl, mujoco=wrapper.MjrContext(model, gl))


class FastRenderer:
    """Render one fixed camera of a dm_control ``Physics`` at a small resolution, quickly.

    Args:
        physics: the dm_control physics (its model's ``offsamples`` is set to 0 here, so create
            the renderer before anything else touches ``physics.contexts``).
        size: image height and width in pixels.
        camera_id: index of the fixed camera in the model (camera 0 in the protocol).
        share_key: renderers created with the same (hashable) key in one process share one GL
            context and MuJoCo render context (built from the first model), which saves ~50 MB
            and ~0.5 s per additional environment. Only share between *identical* models (same
            task); colours may differ, they are read at every scene update. ``None``: use the
            physics' own contexts.
        mesh_quality: ``(numslices, numstacks)`` of MuJoCo's built-in capsule/sphere/cylinder
            meshes. The default (16, 8) instead of MuJoCo's (28, 16) makes humanoid rendering
            ~1.5x faster on a software rasteriser; measured difference at 64x64: mean absolute
            pixel difference < 0.15 (of 255) for all four tasks. ``None`` keeps the model's.

    After :meth:`render` the attributes ``rgb`` (H,W,3 uint8) and, if requested, ``background``
    (H,W bool: no geom hit) and ``floor`` (H,W bool: the ground plane) hold the frame, top row first.
    A ``camera_hook(scene_cameras, physics)`` callable may be set to move the view (camera shake):
    it is called after the scene update and may overwrite ``pos``/``forward``/``up`` of the
    scene's GL cameras.
    """

    def __init__(self, physics, size: int = 64, camera_id: int = 0, share_key=None,
                 mesh_quality: tuple[int, int] | None = (16, 8)):
        model = physics.model
        # Must happen before the GL context (its offscreen buffer and built-in meshes) exists.
        model.vis.quality.offsamples = 0
        # A 64x64 offscreen buffer instead of the model's 640x480 saves memory per env
        # (``physics.render`` of larger images is then unavailable on this physics).
        model.vis.global_.offwidth = size
        model.vis.global_.offheight = size
        if mesh_quality is not None:
            model.vis.quality.numslices, model.vis.quality.numstacks = mesh_quality
        self.physics = physics
        self.size = size
        self.camera_hook = None
        self._scene = wrapper.MjvScene(model=model)
        self._scene.flags[_FLAGS.mjRND_SHADOW] = 0
        self._scene.flags[_FLAGS.mjRND_REFLECTION] = 0
        self._option = wrapper.MjvOption()
        self._perturb = wrapper.MjvPerturb()
        self._camera = wrapper.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = camera_id
        self._rect = mujoco.MjrRect(0, 0, size, size)
        self._rgb = np.empty((size, size, 3), np.uint8)
        self._seg = np.empty((size, size, 3), np.uint8)
        self._depth = np.empty((size, size), np.float32)
        # Pixel-centre coordinates in [-1, 1] (x to the right, y up; rows top first).
        centers = (np.arange(size) + 0.5) / size * 2 - 1
        self._ndc_x = np.broadcast_to(centers[None, :], (size, size))
        self._ndc_y = np.broadcast_to(-centers[:, None], (size, size))
        # Ground planes: plane geoms of the world body (``floor``/``ground`` in the suite).
        self._floor_geoms = {int(i) for i in range(model.ngeom)
                             if model.geom_type[i] == mujoco.mjtGeom.mjGEOM_PLANE
                             and model.geom_bodyid[i] == 0}
        self.rgb = self._rgb
        self.background = None
        self.floor = None
        if share_key is None:
            self.contexts = physics.contexts
        else:
            # The pid keeps a forked child from using its parent's (unusable) GL context.
            key = (os.getpid(), share_key, size, mesh_quality)
            if key not in _SHARED_CONTEXTS:
                _SHARED_CONTEXTS[key] = _make_contexts(model)
            self.contexts = _SHARED_CONTEXTS[key]
        with self.contexts.gl.make_current() as ctx:
            ctx.call(mujoco.mjr_setBuffer, mujoco.mjtFramebuffer.mjFB_OFFSCREEN,
                     self.contexts.mujoco.ptr)

    def _draw(self, masks: str | None) -> None:
        con = self.contexts.mujoco.ptr
        flags = self._scene.flags
        if masks == "depth":
            # The sky is replaced by the background video anyway: leave it out so that
            # "nothing hit" keeps the cleared depth of exactly 1.0.
            skybox = flags[_FLAGS.mjRND_SKYBOX]
            flags[_FLAGS.mjRND_SKYBOX] = 0
            try:
                mujoco.mjr_render(self._rect, self._scene.ptr, con)
                mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, con)
            finally:
                flags[_FLAGS.mjRND_SKYBOX] = skybox
            return
        mujoco.mjr_render(self._rect, self._scene.ptr, con)
        mujoco.mjr_readPixels(self._rgb, None, self._rect, con)
        if masks == "segmentation":
            skybox = flags[_FLAGS.mjRND_SKYBOX]
            flags[_FLAGS.mjRND_SEGMENT] = 1
            flags[_FLAGS.mjRND_IDCOLOR] = 1
            flags[_FLAGS.mjRND_SKYBOX] = 0
            try:
                mujoco.mjr_render(self._rect, self._scene.ptr, con)
                mujoco.mjr_readPixels(self._seg, None, self._rect, con)
            finally:
                flags[_FLAGS.mjRND_SEGMENT] = 0
                flags[_FLAGS.mjRND_IDCOLOR] = 0
                flags[_FLAGS.mjRND_SKYBOX] = skybox

    def render(self, masks: str | None = None) -> np.ndarray:
        """Render the current physics state; return the RGB frame (H,W,3 uint8, a fresh array).

        Args:
            masks: ``None`` (RGB only, with the skybox), ``"segmentation"`` (exact masks from a
                second, segmentation render pass) or ``"depth"`` (masks from the depth buffer
                of the one RGB pass, which is then drawn without the skybox: sky = cleared
                depth; floor = pixels whose unprojected 3-D point lies on a ground plane).
                Both fill :attr:`background` and :attr:`floor`; see :data:`MASK_MODES`.
        """
        if masks is not None and masks not in MASK_MODES:
            raise ValueError(f"unknown mask mode {masks!r}; valid: {', '.join(MASK_MODES)}")
        physics = self.physics
        mujoco.mjv_updateScene(physics.model.ptr, physics.data.ptr, self._option.ptr,
                               self._perturb.ptr, self._camera.ptr, mujoco.mjtCatBit.mjCAT_ALL,
                               self._scene.ptr)
        if self.camera_hook is not None:
            self.camera_hook(self._scene.camera, physics)
        with self.contexts.gl.make_current() as ctx:
            ctx.call(self._draw, masks)
        # OpenGL's first row is the bottom of the image.
        self.rgb = self._rgb[::-1].copy()
        if masks == "segmentation":
            self._masks_from_segmentation()
        elif masks == "depth":
            self._masks_from_depth()
        return self.rgb

    def _masks_from_segmentation(self) -> None:
        seg = self._seg[::-1]
        # IDCOLOR encodes (scene geom index + 1) in the colour; 0 = nothing hit (sky).
        segid = (seg[..., 0].astype(np.int32) | (seg[..., 1].astype(np.int32) << 8)
                 | (seg[..., 2].astype(np.int32) << 16))
        self.background = segid == 0
        floor = np.zeros_like(self.background)
        scene = self._scene
        for k in range(scene.ngeom):
            g = scene.geoms[k]
            if g.objtype == mujoco.mjtObj.mjOBJ_GEOM and g.objid in self._floor_geoms:
                floor |= segid == (g.segid + 1)
        self.floor = floor

    def _masks_from_depth(self) -> None:
        depth = self._depth[::-1]
        self.background = depth >= 1.0
        floor = np.zeros_like(self.background)
        if self._floor_geoms:
            cam = self._scene.camera[0]
            near, far = float(cam.frustum_near), float(cam.frustum_far)
            # OpenGL perspective depth in [0, 1] -> distance along the viewing axis.
            z_eye = near * far / (far - np.minimum(depth, 0.999999) * (far - near))
            forward = np.array(cam.forward, np.float64)
            up = np.array(cam.up, np.float64)
            right = np.cross(forward, up)
            half_h = 0.5 * (cam.frustum_top - cam.frustum_bottom)
            center_y = 0.5 * (cam.frustum_top + cam.frustum_bottom)
            # Square viewport: the horizontal half-extent equals the vertical one.
            sx = (cam.frustum_center + self._ndc_x * half_h) / near
            sy = (center_y + self._ndc_y * half_h) / near
            rays = (forward[None, None] + sx[..., None] * right[None, None]
                    + sy[..., None] * up[None, None])
            points = np.array(cam.pos, np.float64) + z_eye[..., None] * rays
            # Depth quantisation grows with distance: tolerance 1 mm + 0.1% of the distance.
            tol = 1e-3 + 1e-3 * z_eye
            data, model = self.physics.data, self.physics.model
            for g in self._floor_geoms:
                local = (points - data.geom_xpos[g]) @ data.geom_xmat[g].reshape(3, 3)
                size = model.geom_size[g]
                on = np.abs(local[..., 2]) <= tol
                if size[0] > 0:
                    on &= np.abs(local[..., 0]) <= size[0] + tol
                if size[1] > 0:
                    on &= np.abs(local[..., 1]) <= size[1] + tol
                floor |= on
        self.floor = floor & ~self.background
