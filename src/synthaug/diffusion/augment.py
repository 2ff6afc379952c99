"""Mask-aligned geometric augmentation for small datasets: the same random flip and small
affine (rotation, scale, shift) moves an image and its mask together."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEG = 10.0
MAX_SCALE = 0.1
MAX_SHIFT = 0.06  # of the half-width


def augment(
    images: torch.Tensor, labels: torch.Tensor, p: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """images [B, C, R, R] in [-1, 1] (background −1), labels [B, R, R]: each sample is
    flipped left–right with probability p/2 and warped by a small affine with probability p."""
    if p <= 0:
        return images, labels
    b = len(images)
    u = torch.rand(b, 5, generator=generator)
    flip = torch.where(u[:, 0] < p / 2, -1.0, 1.0)
    warp = (u[:, 1] < p).float()
    angle = math.radians(MAX_ROTATION_DEG) * (2 * u[:, 2] - 1) * warp
    scale = 1 + MAX_SCALE * (2 * u[:, 3] - 1) * warp
    shift = MAX_SHIFT * (2 * torch.rand(b, 2, generator=generator) - 1) * warp[:, None]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift[:, 0]], 1),
            torch.stack([sin * flip, cos, shift[:, 1]], 1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images + 1, grid, mode="bilinear", align_corners=False) - 1
    onehot = F.one_hot(labels.long(), int(labels.max()) + 1).permute(0, 3, 1, 2).float()
    moved = F.grid_sample(onehot, grid, mode="nearest", align_corners=False)
    # Outside the field of view there is background (class 0).
    moved[:, 0] += 1 - moved.sum(dim=1)
    return warped, moved.argmax(dim=1)
