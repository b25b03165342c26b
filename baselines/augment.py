"""Batched on-device image augmentations for latent-action-model training (LAOM).

A subset of Almuzairee et al. (2024): random shift, rotation and perspective. Each sample draws
one projective transform (the composition of the three) and it is applied *identically* to all
of that sample's frames (``o_t``, ``o_{t+1}``, ``o_{t+k}``: every stack and every stacked frame),
so the model never sees spurious motion created by the augmentation *(choice, documented)*.
One ``grid_sample`` call per batch, on whatever device the images live on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class Augmenter:
    """Random shift + rotation + perspective, one transform per sample.

    Args:
        shift_px: maximal translation in pixels (uniform in ``[-shift_px, shift_px]`` per axis;
            4 px at 64x64 as DrQ's pad-4 random crop).
        rotate_deg: maximal rotation angle in degrees (uniform in ``[-rotate_deg, rotate_deg]``).
        perspective: maximal displacement of each image corner, as a fraction of the half-size.
        image_size: height = width of the images.
    """

    def __init__(self, shift_px: float = 4.0, rotate_deg: float = 5.0, perspective: float = 0.1,
                 image_size: int = 64) -> None:
        self.shift = 2.0 * shift_px / image_size  # in normalized [-1, 1] coordinates
        self.rotate = math.radians(rotate_deg)
        self.perspective = perspective

    def homographies(self, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
        """``(n, 3, 3)`` random transforms mapping output to input normalized coordinates."""
        u = lambda *s: torch.rand(*s, generator=generator, device=device) * 2 - 1  # noqa: E731
        ang, t = u(n) * self.rotate, u(n, 2) * self.shift
        cos, sin = torch.cos(ang), torch.sin(ang)
        h = torch.zeros(n, 3, 3, device=device)
        h[:, 0, 0], h[:, 0, 1], h[:, 1, 0], h[:, 1, 1] = cos, -sin, sin, cos
        h[:, :2, 2], h[:, 2, 2] = t, 1.0
        # Perspective: the last row's small terms move the corners by up to `perspective`.
        h[:, 2, :2] = u(n, 2) * self.perspective
        return h

    def __call__(self, *images: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Augment several ``(B, C_i, H, W)`` float batches with the same per-sample transform.

        Returns the augmented batches (same shapes, float32, border padding).
        """
        x = torch.cat([im.float() for im in images], dim=1)
        b, _, hgt, wid = x.shape
        hom = self.homographies(b, generator, x.device)
        ys = torch.linspace(-1, 1, hgt, device=x.device)
        xs = torch.linspace(-1, 1, wid, device=x.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        base = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).view(1, -1, 3)  # (1, HW, 3)
        src = base @ hom.transpose(1, 2)  # (B, HW, 3)
        grid = (src[..., :2] / src[..., 2:].clamp_min(1e-3)).view(b, hgt, wid, 2)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return list(out.split([im.shape[1] for im in images], dim=1))
