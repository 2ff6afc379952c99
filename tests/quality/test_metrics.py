"""FID, KID, precision/recall and label statistics on hand-made features and masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg, ndimage
from scipy.spatial.distance import cdist

from synthaug.errors import SynthaugError
from synthaug.quality.metrics import (
    class_frequencies,
    components,
    fid,
    kid,
    label_statistics,
    precision_recall,
)


class _Identity(torch.nn.Module):
    """A torchmetrics 'feature extractor' that receives precomputed features [N, d]."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _gaussians(n1: int, n2: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    real = rng.normal(size=(n1, d)) @ a + 0.3
    fake = rng.normal(size=(n2, d)) @ (a + 0.2 * rng.normal(size=(d, d)) / np.sqrt(d))
    return real, fake


def _closed_form_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Textbook formula with scipy's general matrix square root (independent of fid())."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize(("n1", "n2", "d"), [(400, 300, 16), (50, 40, 64)])
def test_fid_matches_torchmetrics(n1: int, n2: int, d: int) -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _gaussians(n1, n2, d)
    metric = FrechetInceptionDistance(feature=_Identity(d))
    metric.update(torch.from_numpy(real), real=True)  # float64 in → float64 out
    metric.update(torch.from_numpy(fake), real=False)
    expected = float(metric.compute())
    assert fid(real, fake) == pytest.approx(expected, rel=1e-3)
    if n1 > d:  # the plain sqrtm formula is only stable for full-rank covariances
        assert fid(real, fake) == pytest.approx(_closed_form_fid(real, fake), rel=1e-6)


def test_fid_of_known_gaussians() -> None:
    # Two 1-D Gaussians: FID = (μ1 − μ2)² + (σ1 − σ2)².
    rng = np.random.default_rng(1)
    a = rng.normal(1.0, 2.0, size=(200_000, 1))
    b = rng.normal(-1.0, 0.5, size=(200_000, 1))
    assert fid(a, b) == pytest.approx(4.0 + 1.5**2, rel=1e-2)


@pytest.mark.parametrize(("n", "d"), [(300, 20), (30, 100)])
def test_fid_of_set_with_itself_is_zero(n: int, d: int) -> None:
    x, _ = _gaussians(n, 2, d)
    scale = np.trace(np.cov(x, rowvar=False))
    assert abs(fid(x, x)) < 1e-6 * scale


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_matches_torchmetrics_on_one_full_subset() -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = _gaussians(120, 120, 10)
    metric = KernelInceptionDistance(feature=_Identity(10), subsets=1, subset_size=120)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    expected, _ = metric.compute()
    mean, std = kid(real, fake, subsets=1, subset_size=120)
    assert mean == pytest.approx(float(expected), rel=1e-6)
    assert std == 0.0


def test_kid_paths_agree_and_self_is_zero_within_std() -> None:
    real, fake = _gaussians(300, 250, 12)
    cached = kid(real, fake, subsets=20, subset_size=100, seed=3)
    direct = kid(real, fake, subsets=20, subset_size=100, seed=3, max_gram=0)
    assert cached == pytest.approx(direct, rel=1e-9)
    mean, std = kid(real, real, subsets=50, subset_size=100)
    assert std > 0 and abs(mean) < 3 * std
    assert cached[0] > abs(mean)
    # subset_size is clipped to the sample counts
    assert np.isfinite(kid(real[:5], fake[:7], subsets=3, subset_size=1000)[0])


def test_precision_recall_identical_and_disjoint() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    assert precision_recall(x, x.copy()) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)


def test_precision_recall_mode_collapse() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], dtype=float)
    real = np.concatenate([c + rng.normal(size=(150, 2)) for c in centres])
    fake = centres[0] + rng.normal(size=(150, 2))  # one mode of four
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.8
    assert recall < 0.3


def test_precision_recall_against_brute_force_and_chunking() -> None:
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(97, 5)), rng.normal(0.3, 1.2, size=(61, 5))
    k = 4

    def brute(a: np.ndarray, b: np.ndarray) -> float:
        radii = np.sort(cdist(a, a), axis=1)[:, k]
        return float((cdist(b, a) <= radii[None, :]).any(axis=1).mean())

    expected = (brute(real, fake), brute(fake, real))
    assert precision_recall(real, fake, k=k) == pytest.approx(expected)
    assert precision_recall(real, fake, k=k, chunk=7) == pytest.approx(expected)


def test_minimum_samples_are_named() -> None:
    x = np.zeros((1, 4))
    y = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(SynthaugError, match="FID: needs at least 2 .* got 1 real"):
        fid(x, y)
    with pytest.raises(SynthaugError, match="KID: needs at least 2 .* got 10 real and 1 synthetic"):
        kid(y, x)
    with pytest.raises(
        SynthaugError,
        match=r"precision/recall: needs at least 4 .*k=3.* got 10 real and 3 synthetic",
    ):
        precision_recall(y, y[:3], k=3)
    with pytest.raises(SynthaugError, match="dim 4, synthetic 3"):
        fid(y, y[:, :3])
    with pytest.raises(SynthaugError, match="NaN"):
        fid(y, np.full((3, 4), np.nan))
    with pytest.raises(SynthaugError, match="label statistics: needs at least 1"):
        label_statistics(np.zeros((0, 4, 4), int), np.zeros((2, 4, 4), int), 2)


def _blobs(n: int, per_slice: int, size: int, res: int = 32, seed: int = 0) -> np.ndarray:
    """n slices each with ``per_slice`` separate square blobs of label 1 (side ``size``)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, res, res), dtype=np.int64)
    for i in range(n):
        for b in range(per_slice):
            y = 1 + (b % 3) * 10 + rng.integers(0, 10 - min(size, 9))
            x = 1 + (b // 3) * 10 + rng.integers(0, 10 - min(size, 9))
            out[i, y : y + size, x : x + size] = 1
    return out


def test_components_match_per_slice_labelling() -> None:
    masks = np.random.default_rng(0).random((12, 20, 20)) > 0.7
    masks[3] = False  # an empty slice in the middle
    per_slice, sizes = components(masks)
    ref_counts, ref_sizes = [], []
    for m in masks:
        lab, n = ndimage.label(m, structure=np.ones((3, 3)))
        ref_counts.append(n)
        ref_sizes += list(np.bincount(lab.ravel())[1:])
    assert per_slice.tolist() == ref_counts
    assert sorted(sizes.tolist()) == sorted(ref_sizes)


def test_label_statistics_identical_and_different() -> None:
    real = _blobs(30, 3, 4)
    same = label_statistics(real, real.copy(), 2, ["bg", "fg"])
    assert same["class_frequency"]["total_variation"] == 0.0
    assert same["class_frequency"]["jensen_shannon"] == pytest.approx(0.0, abs=1e-12)
    assert same["classes"]["fg"]["count_distance"] == 0.0
    assert same["classes"]["fg"]["log_size_distance"] == 0.0
    assert same["summary"]["components_per_slice_real"] == pytest.approx(3.0)

    fewer = label_statistics(real, _blobs(30, 1, 4, seed=1), 2, ["bg", "fg"])
    assert fewer["classes"]["fg"]["count_distance"] == pytest.approx(2.0)
    assert fewer["summary"]["components_per_slice_synthetic"] == pytest.approx(1.0)
    assert fewer["class_frequency"]["total_variation"] > 0

    bigger = label_statistics(real, _blobs(30, 3, 6, seed=2), 2)["classes"]["class 1"]
    biggest = label_statistics(real, _blobs(30, 3, 8, seed=3), 2)["classes"]["class 1"]
    assert 0 < bigger["log_size_distance"] < biggest["log_size_distance"]

    none = label_statistics(real, np.zeros_like(real), 2)["classes"]["class 1"]
    assert np.isnan(none["log_size_distance"]) and none["presence_synthetic"] == 0.0


def test_class_frequencies_weigh_slices_equally() -> None:
    labels = np.zeros((2, 4, 4), dtype=np.int64)
    labels[0] = 1
    assert class_frequencies(labels, 3).tolist() == [0.5, 0.5, 0.0]
