"""Snapshot scoring's parts: mask layout features, sample diversity and the detector of
collapsed or off-the-data generators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthaug.generator import Outputs, Snapshot
from synthaug.quality.features import DomainEncoderConfig
from synthaug.quality.snapshots import (
    MaskLayoutExtractor,
    SnapshotReference,
    mean_pairwise_distance,
    score_snapshots,
    unusable_reason,
)

FAST_ENCODER = DomainEncoderConfig(widths=(8, 16, 32), steps=30)
JOINT = Outputs(images=True, masks=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


def test_mask_layout_features_measure_where_classes_are():
    masks = np.zeros((2, 8, 8), dtype=np.int64)
    masks[0, :4, :4] = 1  # class 1 fills the top-left quadrant
    masks[1, 4:, 4:] = 2  # class 2 fills the bottom-right quadrant
    feats = MaskLayoutExtractor(3, levels=(1, 2))(masks)
    assert feats.shape == (2, 2 * (1 + 4))
    # Level 1: one fraction per foreground class; level 2: per class, a 2×2 grid.
    np.testing.assert_allclose(feats[0, :2], [0.25, 0.0])
    np.testing.assert_allclose(feats[0, 2:6], [1, 0, 0, 0])  # class 1, 2×2 grid
    np.testing.assert_allclose(feats[1, 6:10], [0, 0, 0, 1])  # class 2, 2×2 grid


def test_mean_pairwise_distance():
    assert mean_pairwise_distance(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


def test_collapse_detector_flags_identical_samples_not_held_out_reals(toy_store, cache):
    ref = SnapshotReference(JOINT, toy_store, 0, None, cache, FAST_ENCODER, seed=0)
    val_x, val_y = toy_store.arrays(toy_store.split(0).val)
    healthy = ref.score(val_x, val_y.astype(np.int64))
    assert not healthy["collapsed"]
    assert healthy["image"]["diversity"] == pytest.approx(1.0)
    assert healthy["image"]["recall"] > 0.3 and healthy["mask"]["recall"] > 0.3
    one = np.repeat(val_x[:1], len(val_x), axis=0)
    one_mask = np.repeat(val_y[:1].astype(np.int64), len(val_y), axis=0)
    collapsed = ref.score(one, one_mask)
    assert collapsed["collapsed"] and collapsed["failure"] == "collapsed"
    assert collapsed["image"]["diversity"] < 0.01 and collapsed["mask"]["diversity"] < 0.01
    assert collapsed["image"]["fid"] > healthy["image"]["fid"]
    assert healthy["failure"] is None


def test_diverse_samples_unlike_the_data_are_off_the_data_not_collapsed(toy_store, cache):
    """An under-trained generator: samples as spread out as reals but nowhere near them."""
    ref = SnapshotReference(JOINT, toy_store, 0, None, cache, FAST_ENCODER, seed=0)
    val_x, val_y = toy_store.arrays(toy_store.split(0).val)
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1, 1, size=val_x.shape).astype(np.float32)
    stripes = np.zeros_like(val_y, dtype=np.int64)
    stripes[:, :, ::2] = rng.integers(1, toy_store.num_classes, size=(len(val_y), 1, 1))
    row = ref.score(noise, stripes)
    assert row["collapsed"] and row["failure"] == "off the data"
    assert row["image"]["diversity"] >= 0.25 and row["image"]["recall"] < 0.05
    result = {"snapshots": [{"snapshot": "s", **row}]}
    assert "near the real data" in unusable_reason(result)


class SlicesSampler:
    """A stand-in generator that returns fixed real slices (cycled): a copier when they are
    its training slices, an honest generator when they come from patients it never saw."""

    variant = "joint"
    outputs = JOINT

    def __init__(self, images: np.ndarray, masks: np.ndarray) -> None:
        self.images, self.masks = images, masks

    def sample(self, count, seed, masks=None, truncation=1.0):
        idx = np.resize(np.arange(len(self.images)), count)
        return self.images[idx], self.masks[idx]


def test_a_copying_generator_is_flagged_and_loses_the_selection(toy_store, cache, tmp_path):
    split = toy_store.split(0)
    copier = SlicesSampler(*toy_store.training_arrays(split.train))
    honest = SlicesSampler(*toy_store.arrays(split.test))  # new patients, like fresh samples
    snaps = [
        Snapshot(tmp_path / "gema-000001000.pt", 1000),
        Snapshot(tmp_path / "gema-000002000.pt", 2000),
    ]
    samplers = {snaps[0].name: copier, snaps[1].name: honest}
    result = score_snapshots(
        toy_store, 0, "joint", JOINT, snaps, lambda s: samplers[s.name], tmp_path / "q.json",
        samples=24, cache_dir=cache, encoder_config=FAST_ENCODER,
    )  # fmt: skip
    copied, fresh = result["snapshots"]
    assert copied["memorisation"]["too_close"] == 1.0 and copied["failure"] == "copying"
    # Copies sit at distance ~0 (2e-7 on another CPU: a computed float, never exactly 0).
    assert copied["memorisation"]["median_ratio"] == pytest.approx(0.0, abs=1e-4)
    assert fresh["memorisation"]["too_close"] < 0.3 and fresh["failure"] is None
    assert result["best"]["snapshot"] == fresh["snapshot"] and result["usable"]
    assert any(": copying — " in w for w in result["warnings"])


def test_pixel_space_catches_a_few_modes_the_encoder_spreads_apart(toy_store, cache):
    """A generator that repeats three validation slices with small noise: in the encoder's
    space and the mask layout it spreads like the reals, in pixel space it is collapsed."""
    ref = SnapshotReference(JOINT, toy_store, 0, None, cache, FAST_ENCODER, seed=0)
    val_x, val_y = toy_store.arrays(toy_store.split(0).val)
    picks = np.resize([0, len(val_x) // 2, len(val_x) - 1], len(val_x))
    rng = np.random.default_rng(0)
    few = val_x[picks] + rng.normal(0, 0.02, val_x.shape).astype(np.float32)
    row = ref.score(few, val_y[picks].astype(np.int64))
    assert row["pixel_diversity"] < 0.5
    assert row["image"]["diversity"] > 0.25 and row["mask"]["diversity"] > 0.25  # blind to it
    assert row["collapsed"] and row["failure"] == "collapsed"
    healthy = ref.score(val_x, val_y.astype(np.int64))
    assert healthy["pixel_diversity"] == pytest.approx(1.0) and not healthy["collapsed"]
