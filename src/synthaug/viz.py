"""Pictures people would rather look at than read: image–mask grids as PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from synthaug.atomic import atomic_file

# Distinct colours for labels 1..K-1 (label 0, background, is left transparent).
LABEL_COLOURS = np.array(
    [
        [0.00, 0.00, 0.00],
        [0.12, 0.47, 0.71],
        [1.00, 0.50, 0.05],
        [0.17, 0.63, 0.17],
        [0.84, 0.15, 0.16],
        [0.58, 0.40, 0.74],
        [0.55, 0.34, 0.29],
        [0.89, 0.47, 0.76],
        [0.74, 0.74, 0.13],
        [0.09, 0.75, 0.81],
    ],
    dtype=np.float32,
)


def overlay(gray: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Grey image [H, W] in [0, 1] with labels [H, W] blended in colour → RGB [H, W, 3]."""
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    colours = LABEL_COLOURS[np.where(mask > 0, (mask - 1) % (len(LABEL_COLOURS) - 1) + 1, 0)]
    fg = (mask > 0)[..., None]
    return np.where(fg, (1 - alpha) * rgb + alpha * colours, rgb)


def pair_rows(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """One row per sample: each modality side by side, then the first modality with the mask
    overlaid. images [N, C, H, W] in [-1, 1] (C may be 0), masks [N, H, W] → RGB [N, H, (C+1)·W, 3]."""
    n, c, h, w = images.shape
    gray = np.clip((images + 1.0) / 2.0, 0.0, 1.0)
    panels = [np.repeat(gray[:, i, ..., None], 3, axis=-1) for i in range(c)]
    base = gray[:, 0] if c else np.zeros((n, h, w), dtype=np.float32)
    panels.append(np.stack([overlay(base[i], masks[i]) for i in range(n)]))
    return np.concatenate(panels, axis=2)


def pair_grid(
    images: np.ndarray, masks: np.ndarray, columns: int | None = None, gap: int = 2
) -> np.ndarray:
    """Arrange samples in a grid of ``columns`` sample-rows each → RGB [H', W', 3] in [0, 1]."""
    rows = pair_rows(images, masks)
    n, h, w, _ = rows.shape
    columns = columns or max(1, math.ceil(math.sqrt(n / 2)))
    nrows = math.ceil(n / columns)
    canvas = np.ones((nrows * (h + gap) - gap, columns * (w + gap) - gap, 3), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = rows[i]
    return canvas


def png_bytes(rgb: np.ndarray, scale: int = 1) -> bytes:
    """Encode an RGB array in [0, 1] as PNG; ``scale`` enlarges pixels for viewing."""
    import matplotlib.image as mpimg

    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    mpimg.imsave(buffer, np.clip(rgb, 0.0, 1.0), format="png")
    return buffer.getvalue()


def save_png(path: Path, rgb: np.ndarray, scale: int = 1) -> None:
    """Write an RGB array in [0, 1] as PNG, atomically."""
    with atomic_file(Path(path)) as handle:
        handle.write(png_bytes(rgb, scale))


def save_pair_grid(
    path: Path, images: np.ndarray, masks: np.ndarray, columns: int | None = None
) -> None:
    save_png(path, pair_grid(images, masks, columns), scale=2 if images.shape[-1] <= 64 else 1)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib Figure as PNG, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    with atomic_file(Path(path)) as handle:
        handle.write(buffer.getvalue())
