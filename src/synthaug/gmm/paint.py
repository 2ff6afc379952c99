"""Label-to-image painting from class intensity statistics (domain randomisation, as in
SynthSeg): per training patient, class and modality the mean and standard deviation of the
intensities; a slice is painted from one patient's statistics (jittered), blurred for partial
volume, given within-class noise and multiplied by a smooth bias field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from synthaug.gmm.presets import GmmPreset

MIN_PIXELS = 10  # a class with fewer pixels in a patient has no statistics there
FLOOR = -1.0  # the store's intensity floor (background): the bias field scales above it


@dataclass(frozen=True)
class ClassStats:
    """mean, std: [P, K, C] per training patient, class and modality (NaN where the class
    has fewer than ``MIN_PIXELS`` pixels in that patient); pixels: [P, K] counts."""

    mean: np.ndarray
    std: np.ndarray
    pixels: np.ndarray

    @property
    def present(self) -> np.ndarray:
        return self.pixels >= MIN_PIXELS

    def pooled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[K, C] mean, std and between-patient spread of the means over the patients that
        have the class (a class no patient has: the image floor, no noise)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: a class no patient has
            mean = np.nanmean(self.mean, axis=0)
            std = np.nanmean(self.std, axis=0)
            spread = np.nanstd(self.mean, axis=0)
        return np.nan_to_num(mean, nan=FLOOR), np.nan_to_num(std), np.nan_to_num(spread)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std, "pixels": self.pixels}


def fit_class_stats(patients: list[tuple[np.ndarray, np.ndarray]], num_classes: int) -> ClassStats:
    """``patients``: per training patient (images [S, C, R, R], labels [S, R, R])."""
    channels = patients[0][0].shape[1]
    shape = (len(patients), num_classes, channels)
    mean, std = np.full(shape, np.nan), np.full(shape, np.nan)
    pixels = np.zeros(shape[:2], np.int64)
    for p, (images, labels) in enumerate(patients):
        per_channel = images.transpose(1, 0, 2, 3).reshape(channels, -1)
        flat = labels.reshape(-1)
        for k in range(num_classes):
            selected = flat == k
            pixels[p, k] = int(selected.sum())
            if pixels[p, k] >= MIN_PIXELS:
                values = per_channel[:, selected]
                mean[p, k], std[p, k] = values.mean(axis=1), values.std(axis=1)
    return ClassStats(mean, std, pixels)


def _smooth_field(rng: np.random.Generator, grid: int, size: int) -> np.ndarray:
    """A smooth zero-mean, unit-scale random field [size, size] from a grid² of normals."""
    coarse = rng.normal(0.0, 1.0, (grid, grid))
    return ndimage.zoom(coarse, size / grid, order=3, mode="nearest")[:size, :size]


def deform(mask: np.ndarray, rng: np.random.Generator, sigma_px: float, grid: int) -> np.ndarray:
    """The mask [R, R] moved by a smooth random displacement (nearest neighbour: labels stay
    labels)."""
    size = mask.shape[0]
    dy = _smooth_field(rng, grid, size) * sigma_px
    dx = _smooth_field(rng, grid, size) * sigma_px
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    return ndimage.map_coordinates(mask, [yy + dy, xx + dx], order=0, mode="nearest")


def paint(
    stats: ClassStats, preset: GmmPreset, masks: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, C, R, R] in [−1, 1] for ``masks`` [N, R, R]; returns (images, the masks
    they belong to — deformed when ``preset.elastic_px`` > 0). Deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    pooled_mean, pooled_std, spread = stats.pooled()
    present = stats.present
    n_patients, _, channels = stats.mean.shape
    masks = np.asarray(masks).astype(np.int64)
    images = np.empty((len(masks), channels, *masks.shape[1:]), np.float32)
    painted_masks = np.empty_like(masks)
    for i, given in enumerate(masks):
        p = int(rng.integers(n_patients))
        has = present[p][:, None]
        mean = np.where(has, stats.mean[p], pooled_mean)
        std = np.where(has, stats.std[p], pooled_std)
        mean = mean + rng.normal(0.0, 1.0, mean.shape) * spread * preset.contrast_jitter
        mask = given
        if preset.elastic_px > 0:
            mask = deform(given, rng, preset.elastic_px, preset.elastic_grid)
        painted_masks[i] = mask
        image = mean[mask].transpose(2, 0, 1)  # [C, R, R]
        sigma = rng.uniform(*preset.pv_sigma_px)
        image = ndimage.gaussian_filter(image, sigma=(0, sigma, sigma), mode="nearest")
        image = image + std[mask].transpose(2, 0, 1) * preset.noise * rng.normal(size=image.shape)
        bias = np.exp(preset.bias * _smooth_field(rng, preset.bias_grid, mask.shape[0]))
        images[i] = np.clip((image - FLOOR) * bias + FLOOR, -1.0, 1.0)
    return images, painted_masks
