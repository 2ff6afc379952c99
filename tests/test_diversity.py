"""Pixel / mask-space diversity: the collapse signal shared by training and snapshot scoring."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.diversity import (
    PIXEL_COLLAPSE_DIVERSITY,
    collapsed,
    nearest_neighbour_spread,
    pixel_diversity,
    pixel_vectors,
    relative_spread,
)


def _real(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Varied slices: a bright disc of random centre and radius, its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    images = rng.normal(0, 0.1, (n, 2, 32, 32)).astype(np.float32) - 0.5
    masks = np.zeros((n, 32, 32), np.int64)
    for i in range(n):
        cy, cx, r = rng.uniform(8, 24), rng.uniform(8, 24), rng.uniform(3, 9)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        images[i, :, disc] += 1.0
        masks[i][disc] = 1 + i % 2
    return images, masks


def test_a_generator_repeating_one_sample_with_small_noise_is_collapsed():
    images, masks = _real(128, 0)
    rng = np.random.default_rng(1)
    repeated = images[:1].repeat(128, 0) + rng.normal(0, 0.05, images.shape).astype(np.float32)
    value = pixel_diversity(repeated, masks[:1].repeat(128, 0), images, masks, 3)
    assert value < 0.1 and collapsed(value)


def test_a_few_modes_repeated_are_collapsed_though_they_spread_apart():
    """Three very different slices repeated: the mean pairwise distance looks healthy, the
    nearest-neighbour spread does not, and the pixel diversity takes the smaller."""
    images, _ = _real(128, 0)
    rng = np.random.default_rng(2)
    few = np.repeat(images[[0, 1, 2]], 43, 0)[:128]
    few = few + rng.normal(0, 0.02, few.shape).astype(np.float32)
    fake, real = pixel_vectors(few, None, 3), pixel_vectors(images, None, 3)
    assert relative_spread(fake, real) > PIXEL_COLLAPSE_DIVERSITY  # blind to it
    assert nearest_neighbour_spread(fake) < 0.3 * nearest_neighbour_spread(real)
    assert collapsed(pixel_diversity(few, None, images, None, 3))


def test_fresh_samples_of_the_same_data_are_not_collapsed():
    images, masks = _real(128, 0)
    other_images, other_masks = _real(128, 5)
    value = pixel_diversity(other_images, other_masks, images, masks, 3)
    assert value == pytest.approx(1.0, abs=0.25) and not collapsed(value)
    masks_only = pixel_diversity(None, other_masks, None, masks, 3)
    assert not collapsed(masks_only)


def test_pixel_vectors_weigh_images_and_masks_alike():
    images, masks = _real(4, 0)
    both = pixel_vectors(images, masks, 3)
    image_part, mask_part = both[:, : 2 * 16 * 16], both[:, 2 * 16 * 16 :]
    assert both.shape == (4, 2 * 16 * 16 + 2 * 16 * 16)
    assert np.mean(np.square(image_part)) == pytest.approx(
        np.mean(np.square(pixel_vectors(images, None, 3)))
    )
    assert mask_part.min() >= -1 / np.sqrt(512) - 1e-9
    with pytest.raises(ValueError):
        pixel_vectors(None, None, 3)
