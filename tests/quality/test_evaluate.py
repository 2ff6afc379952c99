"""evaluate_quality: the real sets' features computed once for several synthetic sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthaug.quality.evaluate import evaluate_quality
from synthaug.quality.features import DomainEncoderConfig

FAST_ENCODER = DomainEncoderConfig(widths=(8, 16, 32), steps=30)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


def test_feature_cache_gives_the_same_numbers(toy_store, cache):
    images, labels = toy_store.arrays(toy_store.split(1).train)  # not fold 0's reference
    n = len(toy_store.arrays(toy_store.split(0).val)[0])  # equal N: no synthetic subsampling
    images, labels = images[:n], labels[:n]
    settings = dict(cache_dir=cache, with_consistency=False, encoder_config=FAST_ENCODER)
    plain = evaluate_quality(toy_store, 0, images, labels, **settings)
    shared: dict = {}
    first = evaluate_quality(toy_store, 0, images, labels, feature_cache=shared, **settings)
    assert shared and ("joint", "real") in shared
    second = evaluate_quality(
        toy_store, 0, images[::-1], labels[::-1], feature_cache=shared, **settings
    )
    for result in (first, second):
        assert result["joint"]["fid"] == pytest.approx(plain["joint"]["fid"], rel=1e-6)
        for m in plain["modalities"]:
            assert result["modalities"][m]["fid"] == pytest.approx(plain["modalities"][m]["fid"])


def test_the_baseline_is_compared_at_the_synthetic_sets_n(toy_store, cache):
    val = len(toy_store.arrays(toy_store.split(0).val)[0])
    images, labels = toy_store.arrays(toy_store.split(1).test)
    few = max(4, val // 2)
    settings = dict(cache_dir=cache, with_consistency=False, encoder_config=FAST_ENCODER)
    small = evaluate_quality(toy_store, 0, images[:few], labels[:few], **settings)
    assert small["n_compared"] == few
    held = small["real_baseline"]["joint"]
    assert held["n_synthetic"] == few and held["n_available"] == val and held["subsamples"] == 5
    assert small["joint"]["subsamples"] == 1
    # More synthetic slices than validation ones: the synthetic set is subsampled instead.
    many = evaluate_quality(toy_store, 0, images, labels, **settings)
    if len(images) > val:
        assert many["n_compared"] == val and many["joint"]["subsamples"] == 5
        assert many["real_baseline"]["joint"]["subsamples"] == 1
    assert "memorisation" in many and 0 <= many["memorisation"]["too_close"] <= 1


def test_a_dataset_in_any_layout_is_prepared_like_the_store(tiny_msd, tiny_store):
    """Another tool's synthetic data (here: a raw MSD folder at native resolution) is
    prepared with the store's recorded options instead of refused."""
    from synthaug.quality.evaluate import synthetic_arrays

    images, labels = synthetic_arrays(tiny_msd, tiny_store)
    real_x, real_y = tiny_store.arrays(tiny_store.patients)
    assert images.shape == real_x.shape and labels.shape == real_y.shape
    np.testing.assert_allclose(images, real_x, atol=1e-3)
    np.testing.assert_array_equal(labels, real_y)
    first, _ = synthetic_arrays(tiny_msd, tiny_store, limit=1)
    assert len(first) == tiny_store.slice_counts()[0]
