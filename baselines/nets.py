"""Network parts shared by the reference baselines (docs/baselines.md).

* :class:`ResNetEncoder` - IMPALA/ProcGen-style ResNet: three stages of base channels (16, 32, 32)
  times ``scale``; a stage is a stride-2 3x3 conv (64 -> 32 -> 16 -> 8) followed by residual blocks
  (ReLU6 -> conv -> ReLU6 -> conv, added to the input). Output: the flattened 8x8 map (LAM/IDM
  encoders, optionally LayerNorm-ed without affine parameters as in the LAOM authors' code) or its
  spatial mean (actors).
* :class:`ConditionedMLP` - the LAOM IDM/FDM head: residual MLP blocks
  (``LayerNorm(x + Linear(4d->d)(ReLU6(Linear(d->4d)(x))))``) where the conditioning vector is
  concatenated to the input of *every* layer.
* :class:`InverseDynamics` - shared encoder on ``o_t`` and ``o_{t+k}`` + conditioned MLP head
  (LAOM's latent IDM, and the IDM baseline with the true action as output).
* :class:`Actor` - encoder (mean-pooled) + ReLU6 + Linear (BC, latent BC).
* :class:`ActionDecoder` - MLP latent action -> true action (stage 3 of the LAM methods).
* :class:`PixelDecoder` / :class:`FSQ` - LAPO's pixel-space FDM decoder and its optional
  quantizer (finite scalar quantization, for the quantization ablation).
* :func:`orthogonal_init` - orthogonal weights and zero biases for every linear and conv layer
  (the LAOM authors' ``weight_init``), applied by every model that the authors initialise so.

All convolution nets take float ``(B, C, 64, 64)`` inputs in ``[-1, 1]`` (channels_last friendly);
``image_size`` arguments allow other sizes divisible by 8 (the learning tests use 32x32 video).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Base channels of the three encoder stages (multiplied by ``encoder_scale``).
BASE_CHANNELS = (16, 32, 32)


def orthogonal_init(module: nn.Module) -> nn.Module:
    """Orthogonal weights and zero biases for every Linear / Conv2d / ConvTranspose2d in ``module``
    (LayerNorms keep their defaults); returns ``module``. A no-op on the ``meta`` device."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)) and m.weight.device.type != "meta":
            nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class ResidualBlock(nn.Module):
    """``x + conv(relu6(conv(relu6(x))))`` with 3x3 convolutions keeping the channel count."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x + self.conv1(F.relu6(self.conv0(F.relu6(x))))


class ResNetEncoder(nn.Module):
    """IMPALA-style ResNet encoder.

    Args:
        in_channels: input channels (9 for a 3-frame RGB stack, 18 for a concatenated pair).
        scale: channel multiplier ``encoder_scale`` (LAM 6, IDM 12, actors 32 in the paper).
        num_res_blocks: residual blocks per stage (2).
        pool: ``"flatten"`` (C*8*8 embedding) or ``"mean"`` (global average pool, C embedding).
        out_norm: LayerNorm (no affine) on the flattened embedding.
        image_size: input height = width (64).
    """

    def __init__(self, in_channels: int, scale: int, num_res_blocks: int = 2, pool: str = "flatten",
                 out_norm: bool = False, image_size: int = 64,
                 channels: tuple[int, ...] = BASE_CHANNELS) -> None:
        super().__init__()
        if pool not in ("flatten", "mean"):
            raise ValueError(f"pool must be 'flatten' or 'mean', got {pool!r}")
        layers, c_in, size = [], in_channels, image_size
        for c in channels:
            c_out = c * scale
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1))
            layers.extend(ResidualBlock(c_out) for _ in range(num_res_blocks))
            c_in, size = c_out, (size + 1) // 2
        self.stages = nn.Sequential(*layers)
        self.pool = pool
        self.out_channels, self.out_size = c_in, size
        self.out_dim = c_in * size * size if pool == "flatten" else c_in
        self.norm = nn.LayerNorm(self.out_dim, elementwise_affine=False) if out_norm else nn.Identity()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The final ``(B, C, 8, 8)`` map (before pooling)."""
        return self.stages(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, 64, 64)`` -> ``(B, out_dim)``."""
        h = self.stages(x)
        h = h.flatten(1) if self.pool == "flatten" else h.mean(dim=(2, 3))
        return self.norm(h)


class MLPBlock(nn.Module):
    """Residual MLP block ``LayerNorm(x + W2 relu6(W1 x))`` with a 4x expansion."""

    def __init__(self, dim: int, expand: int = 4) -> None:
        super().__init__()
        self.fc0 = nn.Linear(dim, expand * dim)
        self.fc1 = nn.Linear(expand * dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.norm(x + self.fc1(F.relu6(self.fc0(x))))


class ConditionedMLP(nn.Module):
    """Stack of residual MLP blocks with a conditioning vector concatenated at every layer.

    ``h = block_0(Linear([x, c]))``, then ``h = block_i(Linear([h, c]))`` for ``i >= 1``, output
    ``Linear(h)``. ``in_dim`` may be 0 (the LAOM IDM: the only input is the condition
    ``[emb(o_t), emb(o_{t+k})]``).
    """

    def __init__(self, in_dim: int, cond_dim: int, hidden_dim: int, out_dim: int,
                 num_blocks: int = 3) -> None:
        super().__init__()
        self.proj = nn.ModuleList(
            [nn.Linear(in_dim + cond_dim, hidden_dim)]
            + [nn.Linear(hidden_dim + cond_dim, hidden_dim) for _ in range(num_blocks - 1)])
        self.blocks = nn.ModuleList(MLPBlock(hidden_dim) for _ in range(num_blocks))
        self.out = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = cond if x is None else torch.cat([x, cond], dim=-1)
        for i, (proj, block) in enumerate(zip(self.proj, self.blocks)):
            h = block(proj(h if i == 0 else torch.cat([h, cond], dim=-1)))
        return self.out(h)


class InverseDynamics(nn.Module):
    """``(o_t, o_{t+k}) -> z``: one encoder for both frames, conditioned MLP on both embeddings.

    ``out_norm``: LayerNorm (no affine) on the encoder output (the authors' ``encoder_norm_out``,
    off in their final configs). Orthogonally initialised (:func:`orthogonal_init`).
    """

    def __init__(self, in_channels: int, scale: int, hidden_dim: int, out_dim: int,
                 num_res_blocks: int = 2, num_blocks: int = 3, out_norm: bool = False,
                 image_size: int = 64) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_channels, scale, num_res_blocks, "flatten", out_norm=out_norm,
                                     image_size=image_size)
        self.head = ConditionedMLP(0, 2 * self.encoder.out_dim, hidden_dim, out_dim, num_blocks)
        orthogonal_init(self)

    def encode(self, *obs: torch.Tensor) -> list[torch.Tensor]:
        """Embeddings of several observation batches in one encoder pass."""
        return list(self.encoder(torch.cat(obs)).split(obs[0].shape[0]))

    def head_from_embeddings(self, emb_t: torch.Tensor, emb_k: torch.Tensor) -> torch.Tensor:
        """The head applied to precomputed embeddings."""
        return self.head(None, torch.cat([emb_t, emb_k], dim=-1))

    def forward(self, obs: torch.Tensor, future_obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head_from_embeddings(*self.encode(obs, future_obs))


class Actor(nn.Module):
    """Policy network: mean-pooled ResNet encoder -> ReLU6 -> Linear(out_dim), orthogonal init."""

    def __init__(self, in_channels: int, scale: int, out_dim: int, num_res_blocks: int = 2) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_channels, scale, num_res_blocks, "mean")
        self.head = nn.Linear(self.encoder.out_dim, out_dim)
        orthogonal_init(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head(F.relu6(self.encoder(obs)))


class ActionDecoder(nn.Module):
    """MLP latent action -> true action: two hidden layers of ``hidden_dim`` with ReLU6 (PyTorch's
    default init, as the authors' decoder, which their ``weight_init`` never reaches)."""

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU6(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU6(),
                                 nn.Linear(hidden_dim, action_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(z)


class PixelDecoder(nn.Module):
    """LAPO's FDM decoder: mirrors :class:`ResNetEncoder` with 2x2 stride-2 transposed convs.

    The latent action is projected to the bottleneck shape and *concatenated* (channels) to the
    encoder's 8x8 map; GELU, a 1x1 conv and tanh give a ``(B, out_channels, 64, 64)`` image in
    ``[-1, 1]`` (the input range), as in the authors' FDM.
    """

    def __init__(self, encoder: ResNetEncoder, latent_dim: int, out_channels: int,
                 num_res_blocks: int = 2, channels: tuple[int, ...] = BASE_CHANNELS) -> None:
        super().__init__()
        scale = encoder.out_channels // channels[-1]
        self.shape = (encoder.out_channels, encoder.out_size, encoder.out_size)
        self.action_proj = nn.Linear(latent_dim, math.prod(self.shape))
        layers, c_in = [], 2 * encoder.out_channels
        for c in channels[::-1]:
            layers.append(nn.ConvTranspose2d(c_in, c * scale, 2, stride=2))
            layers.extend(ResidualBlock(c * scale) for _ in range(num_res_blocks))
            c_in = c * scale
        layers += [nn.GELU(), nn.Conv2d(c_in, out_channels, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, feature_map: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        act = self.action_proj(z).view(-1, *self.shape).to(feature_map.dtype)
        return self.net(torch.cat([feature_map, act], dim=1))


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al., 2023) over groups of a latent vector.

    The latent is split into groups of ``len(levels)`` dimensions; dimension ``i`` of a group is
    bounded by a shifted ``tanh`` to ``levels[i]`` values and rounded (straight-through gradient),
    then rescaled to ``[-1, 1]``. A group's code is one of ``prod(levels)``; there is no codebook
    to learn, so no loss and no collapse of unused entries.
    """

    def __init__(self, dim: int, levels: tuple[int, ...] | list[int] = (8, 8), eps: float = 1e-3) -> None:
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"fsq levels must be integers >= 2, got {levels}")
        if dim % len(levels):
            raise ValueError(f"latent dim {dim} is not a multiple of len(fsq_levels) = {len(levels)}")
        lv = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("levels", lv, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.cat([lv.new_ones(1), lv[:-1]]), 0), persistent=False)
        self.group, self.eps = len(levels), eps
        self.codebook_size = math.prod(levels)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(z_q, codes)``: ``z_q`` has ``z``'s shape and dtype, ``codes`` is
        ``(B, n_groups)`` int64 in ``[0, codebook_size)``."""
        g = z.float().reshape(z.shape[0], -1, self.group)
        half = (self.levels - 1) * (1 - self.eps) / 2
        offset = (self.levels % 2 == 0).float() * 0.5
        bounded = torch.tanh(g + torch.atanh(offset / half)) * half - offset
        rounded = bounded + (torch.round(bounded) - bounded).detach()
        width = torch.div(self.levels, 2, rounding_mode="floor")
        codes = ((torch.round(bounded) + width) * self.basis).sum(-1).long()
        return (rounded / width).reshape(z.shape).to(z.dtype), codes


def code_usage(codes: torch.Tensor, codebook_size: int) -> float:
    """Mean over groups of the fraction of the ``codebook_size`` codes that ``codes``
    ``(N, n_groups)`` uses at least once."""
    codes = codes.reshape(codes.shape[0], -1).long()
    onehot = torch.zeros(codes.shape[1], codebook_size, dtype=torch.bool, device=codes.device)
    onehot[torch.arange(codes.shape[1], device=codes.device).expand_as(codes), codes] = True
    return float(onehot.float().mean())


def count_parameters(*modules: nn.Module) -> int:
    """Number of trainable parameters of ``modules`` (works on the ``meta`` device)."""
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)
