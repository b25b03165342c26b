"""Batched on-device image augmentations for latent-action-model training (LAOM, LAOM+sup).

The LAOM authors' scheme (their ``src/augmentations.py``), batched: every image of a batch draws
one of eight choices uniformly - identity, shift, rotate, perspective, shift-then-rotate,
rotate-then-shift, rotate-then-perspective, perspective-then-rotate - with

* shift: an integer translation uniform in ``[-shift_px, shift_px]`` per axis (14 px at 64x64);
* rotate: an angle uniform in ``[-rotate_deg, rotate_deg]`` (90 deg) about the image centre;
* perspective: each corner of the image padded by ``perspective_pad`` px (30) moves inward by
  up to ``perspective * half the padded size`` px per axis (0.5), then the centre is cropped.

All the frames of one stacked observation share its transform; the caller augments ``o_t``,
``o_{t+k}`` and ``o_{t+1}`` with *separate* calls, so each view draws its own choice and
parameters (a cross-view invariance signal). Each sample's choice composes into one 3x3 pixel
homography (the perspective one solved by :func:`kornia.geometry.transform.get_perspective_transform`)
and the whole batch is warped by one ``grid_sample`` call, border (edge) padding, on whatever
device the images live on (kornia's own ``warp_perspective`` measured 10x slower on CPU).

Differences from the authors' loop kept *(documented)*: the rotation angle and perspective corners
are drawn per image (theirs: once per call for all images that chose the transform), and points
outside the image are edge-padded everywhere (theirs: zero fill where a perspective corner moves
past the padding, which touches at most a few corner pixels).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_perspective_transform

#: The authors' eight choices, each a sequence of transforms applied left to right.
CHOICES: tuple[str, ...] = ("nothing", "shift", "rotate", "perspective", "shift-rotate", "rotate-shift",
                            "rotate-perspective", "perspective-rotate")


def _translation(t: torch.Tensor) -> torch.Tensor:
    """``(n, 3, 3)`` translations by ``t`` ``(n, 2)`` pixels."""
    m = torch.eye(3, device=t.device).repeat(len(t), 1, 1)
    m[:, :2, 2] = t
    return m


class Augmenter:
    """One of :data:`CHOICES` per image (see the module docstring).

    Args:
        shift_px: maximal integer translation in pixels per axis.
        rotate_deg: maximal rotation angle in degrees.
        perspective: maximal inward corner displacement as a fraction of half the padded size.
        perspective_pad: padding (pixels) the perspective corners are drawn in (default: 30 at
            64 px, scaled with ``image_size``).
        image_size: height = width of the images.
        choices: the transform sequences to draw from (default: the authors' eight).
    """

    def __init__(self, shift_px: float = 14.0, rotate_deg: float = 90.0, perspective: float = 0.5,
                 perspective_pad: int | None = None, image_size: int = 64, choices: tuple[str, ...] = CHOICES) -> None:
        self.shift, self.rotate, self.perspective = int(shift_px), math.radians(rotate_deg), perspective
        self.size = int(image_size)
        self.pad = int(round(30 * self.size / 64)) if perspective_pad is None else int(perspective_pad)
        for c in choices:
            for part in c.split("-"):
                if part not in ("nothing", "shift", "rotate", "perspective"):
                    raise ValueError(f"unknown augmentation {part!r} in {c!r}")
        self.choices = tuple(choices)

    def homographies(self, n: int, generator: torch.Generator | None, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M, choice)``: ``(n, 3, 3)`` source -> destination pixel homographies and the
        ``(n,)`` index of each sample's choice."""
        rand = lambda *s: torch.rand(*s, generator=generator, device=device)  # noqa: E731
        c = (self.size - 1) / 2.0
        centre = torch.full((n, 2), c, device=device)
        # shift: integers in [-shift, shift]
        shift = torch.floor(rand(n, 2) * (2 * self.shift + 1)) - self.shift
        parts = {"nothing": torch.eye(3, device=device).repeat(n, 1, 1), "shift": _translation(shift)}
        ang = (rand(n) * 2 - 1) * self.rotate
        rot = torch.eye(3, device=device).repeat(n, 1, 1)
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = ang.cos(), -ang.sin(), ang.sin(), ang.cos()
        parts["rotate"] = _translation(centre) @ rot @ _translation(-centre)
        # perspective in the padded frame: corners move inward by up to perspective * half size
        size = self.size + 2 * self.pad
        lo, hi = 0.0, size - 1.0
        start = torch.tensor([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], device=device).expand(n, 4, 2)
        inward = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]], device=device, dtype=torch.float32)
        move = torch.floor(rand(n, 4, 2) * (int(self.perspective * (size // 2)) + 1))
        persp = get_perspective_transform(start, start + inward * move)
        off = torch.full((n, 2), float(self.pad), device=device)
        parts["perspective"] = _translation(-off) @ persp @ _translation(off)
        mats = []
        for choice in self.choices:
            m = parts["nothing"]
            for part in choice.split("-"):
                m = parts[part] @ m  # later transforms act on the output of earlier ones
            mats.append(m)
        idx = torch.floor(rand(n) * len(self.choices)).long().clamp_max(len(self.choices) - 1)
        return torch.stack(mats)[idx, torch.arange(n, device=device)], idx

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a ``(B, C, H, W)`` float batch (all C channels of a sample share its
        transform); returns float32 of the same shape."""
        x = x.float()
        b, _, h, w = x.shape
        m, _ = self.homographies(b, generator, x.device)
        ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float32),
                                torch.arange(w, device=x.device, dtype=torch.float32), indexing="ij")
        dst = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, -1, 3)  # output pixels
        src = dst @ torch.linalg.inv(m).transpose(1, 2)  # (B, HW, 3) source pixels
        src = src[..., :2] / src[..., 2:].clamp_min(1e-6)
        scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=x.device)
        grid = (src * scale - 1).view(b, h, w, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
