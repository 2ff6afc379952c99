"""Deformed real masks: the fold's real training masks under a seeded random affine and
elastic deformation, for the ``augmented-mask-*`` sources (GenSeg, Nat. Commun. 2025, found
painting augmented real masks better than generating masks and images together).

Masks are label maps, so they are resampled with nearest-neighbour interpolation; a
deformation that would make a class vanish from a mask that had it (a small lesion pushed out
of the field of view or thinned away) is retried weaker, and the mask is kept as it is when
even the weakest one loses a class.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ROTATE_DEG = 15.0  # rotation range ±, at strength 1
SCALE = 0.1  # log-scale range ±
SHIFT = 0.05  # translation range ±, as a fraction of the side
ELASTIC = 0.03  # standard deviation of the elastic displacement, as a fraction of the side
ELASTIC_GRID = 5  # control points per side of the smooth displacement field
TRIES = 4  # each retry halves the strength


def deform_masks(masks: np.ndarray, seed: int, strength: float = 1.0) -> np.ndarray:
    """masks [N, R, R] int → deformed masks [N, R, R], deterministic for ``seed``; every mask
    keeps every class it had."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(masks)
    for i, mask in enumerate(np.asarray(masks)):
        classes = set(np.unique(mask).tolist())
        out[i] = mask
        for attempt in range(TRIES):
            deformed = _deform(mask, rng, strength * 0.5**attempt)
            if classes <= set(np.unique(deformed).tolist()):
                out[i] = deformed
                break
    return out


def _deform(mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    side = mask.shape[-1]
    angle = np.deg2rad(rng.uniform(-ROTATE_DEG, ROTATE_DEG) * strength)
    scale = np.exp(rng.uniform(-SCALE, SCALE) * strength)
    shift = rng.uniform(-SHIFT, SHIFT, size=2) * side * strength
    coarse = rng.normal(0.0, ELASTIC * side * strength, size=(2, ELASTIC_GRID, ELASTIC_GRID))
    displacement = np.stack(
        [ndimage.zoom(c, side / ELASTIC_GRID, order=3, grid_mode=True, mode="grid-constant")
         for c in coarse]
    )[:, :side, :side]  # fmt: skip
    centre = (side - 1) / 2
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    r, c = rows - centre, cols - centre
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale  # the inverse map: output → input
    src_r = cos * r - sin * c + centre - shift[0] + displacement[0]
    src_c = sin * r + cos * c + centre - shift[1] + displacement[1]
    return ndimage.map_coordinates(mask, [src_r, src_c], order=0, mode="nearest").astype(mask.dtype)
