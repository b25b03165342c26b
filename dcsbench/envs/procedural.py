"""Deterministic procedural background videos (numpy only): the embedded default source.

Each clip is a drifting, textured backdrop with a few smoothly moving textured objects on top,
rendered directly at 64x64. Two *styles* make the two pools different in kind, not just in seed:

* ``train`` ("natural"): smooth fractal-noise backdrops (clouds, foliage, water, sand) or
  landscape bands (sky over ground), earthy / sky / foliage palettes, soft round blobs with noise
  or soft-stripe textures, slow drift and gentle Lissajous motion.
* ``novel`` ("synthetic"): cellular (Voronoi, pebble-like) or wavy interference backdrops,
  vivid sunset / neon / coral palettes, rotating rectangles and rings with hard stripe or checker
  textures, faster drift and motion with brightness flicker.

A clip is fully determined by ``(style, index)``; see :func:`generate_clip`.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Frames per clip (DAVIS-2017 videos have 50-100 frames).
CLIP_LENGTH = 90

#: Side of the periodic texture tiles the backdrop and objects are cut from.
_TILE = 128

# Palettes: anchor colours (0-255) interpolated along a scalar field in [0, 1].
_TRAIN_PALETTES = {
    "forest": [(22, 48, 20), (46, 92, 38), (98, 140, 60), (170, 190, 110), (210, 220, 170)],
    "sky": [(60, 100, 160), (110, 150, 200), (170, 200, 230), (225, 235, 245), (250, 250, 252)],
    "sand": [(120, 90, 60), (170, 135, 90), (205, 175, 125), (230, 210, 170), (245, 235, 210)],
    "water": [(10, 40, 70), (20, 80, 110), (40, 120, 140), (110, 170, 180), (200, 225, 225)],
    "stone": [(55, 55, 58), (95, 92, 88), (135, 130, 122), (175, 170, 160), (215, 212, 205)],
    "autumn": [(70, 35, 15), (140, 70, 25), (190, 120, 40), (220, 170, 80), (240, 215, 150)],
}
_NOVEL_PALETTES = {
    "sunset": [(40, 10, 60), (120, 20, 90), (220, 60, 70), (250, 150, 60), (255, 230, 120)],
    "neon": [(10, 0, 30), (80, 0, 160), (0, 160, 220), (0, 255, 170), (240, 255, 60)],
    "coral": [(30, 20, 70), (200, 50, 120), (255, 120, 100), (255, 190, 150), (120, 230, 220)],
    "candy": [(250, 80, 160), (140, 90, 250), (80, 200, 250), (250, 240, 90), (255, 150, 60)],
}

STYLES = ("train", "novel")


def _rng(style: str, index: int) -> np.random.Generator:
    digest = hashlib.sha256(f"dcsbench-procedural-v1/{style}/{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _palette_map(field: np.ndarray, anchors) -> np.ndarray:
    """Map a scalar field in [0, 1] through a piecewise-linear palette -> float RGB in [0, 255]."""
    anchors = np.asarray(anchors, np.float32)
    pos = np.clip(field, 0.0, 1.0) * (len(anchors) - 1)
    lo = np.minimum(pos.astype(np.int32), len(anchors) - 2)
    frac = (pos - lo)[..., None]
    return anchors[lo] * (1 - frac) + anchors[lo + 1] * frac


def _normalize(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, 1), np.percentile(x, 99)
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _fractal_noise(rng: np.random.Generator, beta: float, size: int = _TILE) -> np.ndarray:
    """Periodic 1/f^beta noise in [0, 1] (higher beta = smoother)."""
    f = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2
    f[0, 0] = 1.0
    amp = f ** (-beta / 2)
    amp[0, 0] = 0.0
    spec = amp * (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape))
    return _normalize(np.fft.irfft2(spec, s=(size, size)))


def _voronoi(rng: np.random.Generator, n_cells: int, size: int = _TILE):
    """Periodic cellular texture: (cell value in [0,1], edge-distance field in [0,1])."""
    pts = rng.uniform(0, size, size=(n_cells, 2))
    vals = rng.uniform(0, 1, size=n_cells)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d1 = np.full((size, size), np.inf, np.float32)
    d2 = np.full((size, size), np.inf, np.float32)
    owner = np.zeros((size, size), np.int32)
    for k, (py, px) in enumerate(pts):
        dy = np.abs(yy - py)
        dx = np.abs(xx - px)
        d = np.sqrt(np.minimum(dy, size - dy) ** 2 + np.minimum(dx, size - dx) ** 2)
        closer = d < d1
        d2 = np.where(closer, d1, np.minimum(d2, d))
        owner = np.where(closer, k, owner)
        d1 = np.where(closer, d, d1)
    edge = np.clip((d2 - d1) / (size / np.sqrt(n_cells) * 0.25), 0.0, 1.0)
    return vals[owner], edge


def _sample(tile: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear lookup into a periodic tile (H,W[,C]) at float coordinates."""
    size = tile.shape[0]
    y0 = np.floor(ys).astype(np.int32)
    x0 = np.floor(xs).astype(np.int32)
    fy = ys - y0
    fx = xs - x0
    if tile.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    y0 %= size
    x0 %= size
    y1 = (y0 + 1) % size
    x1 = (x0 + 1) % size
    top = tile[y0, x0] * (1 - fx) + tile[y0, x1] * fx
    bot = tile[y1, x0] * (1 - fx) + tile[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _backdrop_train(rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(tile, is_landscape): fractal-noise texture or sky-over-ground bands."""
    names = sorted(_TRAIN_PALETTES)
    pal = _TRAIN_PALETTES[names[rng.integers(len(names))]]
    if rng.uniform() < 0.5:
        field = _fractal_noise(rng, beta=rng.uniform(2.6, 3.6))
        return _palette_map(field, pal), False
    # Landscape bands: a sky gradient over a textured ground, horizon wobbling gently.
    sky = _TRAIN_PALETTES["sky"]
    yy = np.linspace(0, 1, _TILE, dtype=np.float32)[:, None] * np.ones((1, _TILE), np.float32)
    xx = np.linspace(0, 2 * np.pi, _TILE, endpoint=False, dtype=np.float32)[None, :]
    horizon = 0.5 + 0.08 * np.sin(xx * rng.integers(1, 4) + rng.uniform(0, 6.3))
    clouds = _fractal_noise(rng, beta=3.2)
    sky_rgb = _palette_map(0.15 + 1.2 * yy + 0.35 * (clouds - 0.5), sky)
    ground = _fractal_noise(rng, beta=2.4)
    ground_rgb = _palette_map(0.2 + 0.6 * ground, pal) * (0.8 + 0.4 * yy[..., None])
    w = _smoothstep(-0.02, 0.02, yy - horizon)[..., None]
    return sky_rgb * (1 - w) + ground_rgb * w, True


def _backdrop_novel(rng: np.random.Generator) -> np.ndarray:
    """Cellular (Voronoi) or wave-interference texture in a vivid palette."""
    names = sorted(_NOVEL_PALETTES)
    pal = _NOVEL_PALETTES[names[rng.integers(len(names))]]
    if rng.uniform() < 0.5:
        vals, edge = _voronoi(rng, n_cells=int(rng.integers(12, 40)))
        rgb = _palette_map(vals, pal)
        return rgb * (0.35 + 0.65 * _smoothstep(0.0, 0.6, edge))[..., None]
    yy, xx = np.mgrid[0:_TILE, 0:_TILE].astype(np.float32) * (2 * np.pi / _TILE)
    field = np.zeros_like(xx)
    for _ in range(3):
        ky, kx = rng.integers(-4, 5, size=2)
        field += np.sin(ky * yy + kx * xx + rng.uniform(0, 6.3))
    return _palette_map(0.5 + field / 6.0, pal)


def _object_texture(rng: np.random.Generator, style: str) -> np.ndarray:
    if style == "train":
        names = sorted(_TRAIN_PALETTES)
        pal = _TRAIN_PALETTES[names[rng.integers(len(names))]]
        if rng.uniform() < 0.6:
            return _palette_map(_fractal_noise(rng, beta=rng.uniform(1.6, 2.4)), pal)
        yy, xx = np.mgrid[0:_TILE, 0:_TILE].astype(np.float32) * (2 * np.pi / _TILE)
        k = rng.integers(2, 6)
        stripes = 0.5 + 0.5 * np.sin(k * (xx + 0.3 * yy))  # soft stripes (fur, bark, waves)
        return _palette_map(0.2 + 0.6 * stripes, pal)
    names = sorted(_NOVEL_PALETTES)
    pal = _NOVEL_PALETTES[names[rng.integers(len(names))]]
    yy, xx = np.mgrid[0:_TILE, 0:_TILE].astype(np.float32) * (2 * np.pi / _TILE)
    k = int(rng.integers(4, 10))
    if rng.uniform() < 0.5:
        field = (np.sin(k * xx) > 0).astype(np.float32)  # hard stripes
    else:
        field = ((np.sin(k * xx) > 0) ^ (np.sin(k * yy) > 0)).astype(np.float32)  # checker
    return _palette_map(0.15 + 0.7 * field, pal)


def generate_clip(style: str, index: int, size: int = 64, length: int = CLIP_LENGTH) -> np.ndarray:
    """Generate clip ``index`` of pool style ``style`` as a (length, size, size, 3) uint8 array.

    Deterministic: the same arguments always give the same bytes (seeded from a hash of
    ``(style, index)``, numpy's PCG64 generator).
    """
    if style not in STYLES:
        raise ValueError(f"unknown procedural style {style!r}; valid: {', '.join(STYLES)}")
    rng = _rng(style, index)
    novel = style == "novel"
    backdrop, landscape = (_backdrop_novel(rng), False) if novel else _backdrop_train(rng)
    backdrop = backdrop.astype(np.float32)

    # Backdrop drift (tile pixels per frame) plus a slow wobble; landscapes pan sideways only.
    speed = rng.uniform(0.6, 1.4) if novel else rng.uniform(0.15, 0.5)
    angle = rng.uniform(0, 2 * np.pi)
    zoom = _TILE / size * rng.uniform(0.55, 0.9)  # backdrop pixels per output pixel
    drift = speed * np.array([np.sin(angle), np.cos(angle)])
    wobble = np.array([3.0, 3.0])
    base = np.zeros(2)
    if landscape:
        drift = np.array([0.0, speed * np.sign(np.cos(angle))])
        wobble = np.array([0.0, 3.0])
        base = np.array([(_TILE - size * zoom) / 2, 0.0])

    n_obj = int(rng.integers(2, 5) if novel else rng.integers(2, 6))
    objects = []
    for _ in range(n_obj):
        objects.append(dict(
            tex=_object_texture(rng, style).astype(np.float32),
            center=rng.uniform(0.15, 0.85, size=2) * size,
            amp=rng.uniform(0.1, 0.35, size=2) * size,
            freq=rng.uniform(0.03, 0.08, size=2) * (2.0 if novel else 1.0),
            phase=rng.uniform(0, 2 * np.pi, size=2),
            radius=rng.uniform(0.1, 0.22) * size,
            aspect=rng.uniform(0.6, 1.5),
            rot0=rng.uniform(0, np.pi),
            spin=(rng.uniform(-0.08, 0.08) if novel else rng.uniform(-0.01, 0.01)),
            shape=("ring" if rng.uniform() < 0.4 else "rect") if novel else "blob",
            wobble=rng.uniform(0, 2 * np.pi, size=3),
            tex_drift=rng.uniform(-0.5, 0.5, size=2),
            tex_scale=rng.uniform(30, 50),
        ))
    # Paint larger objects first (farther away).
    objects.sort(key=lambda o: -o["radius"])
    flicker_f = rng.uniform(0.1, 0.3)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = np.empty((length, size, size, 3), np.uint8)
    for t in range(length):
        oy, ox = base + drift * t + wobble * np.sin(0.02 * t + angle)
        img = _sample(backdrop, yy * zoom + oy, xx * zoom + ox)
        for o in objects:
            cy = o["center"][0] + o["amp"][0] * np.sin(o["freq"][0] * t + o["phase"][0])
            cx = o["center"][1] + o["amp"][1] * np.sin(o["freq"][1] * t + o["phase"][1])
            rot = o["rot0"] + o["spin"] * t
            c, s = np.cos(rot), np.sin(rot)
            dy, dx = yy - cy, xx - cx
            u = (c * dx + s * dy) / o["radius"]
            v = (-s * dx + c * dy) / (o["radius"] * o["aspect"])
            if o["shape"] == "blob":
                # Soft round blob whose outline breathes a little.
                ang = np.arctan2(v, u)
                w = o["wobble"]
                rr = 1.0 + 0.12 * np.sin(3 * ang + w[0] + 0.05 * t) + 0.08 * np.sin(5 * ang + w[1])
                d = np.sqrt(u * u + v * v) / rr
                alpha = 1.0 - _smoothstep(0.85, 1.0, d)
                shade = 1.05 - 0.35 * d ** 2  # rounded look
            elif o["shape"] == "rect":
                d = np.maximum(np.abs(u), np.abs(v))
                alpha = 1.0 - _smoothstep(0.95, 1.0, d)
                shade = np.ones_like(d)
            else:  # ring
                d = np.sqrt(u * u + v * v)
                alpha = (1.0 - _smoothstep(0.95, 1.05, d)) * _smoothstep(0.45, 0.55, d)
                shade = np.ones_like(d)
            if not alpha.any():
                continue
            ty = v * o["tex_scale"] + o["tex_drift"][0] * t
            tx = u * o["tex_scale"] + o["tex_drift"][1] * t
            col = _sample(o["tex"], ty, tx) * shade[..., None]
            a = alpha[..., None]
            img = img * (1 - a) + col * a
        if novel:
            img = img * (0.85 + 0.15 * np.sin(flicker_f * t))
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return frames
