"""evaluate_quality: the real sets' features computed once for several synthetic sets; the
consistency ceiling measured on validation patients (never test ones)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from synthaug.quality.consistency import consistency_class_dice, summarise_consistency
from synthaug.quality.evaluate import (
    QualityRequest,
    _consistency,
    consistency_ceiling,
    evaluate_quality,
    format_quality,
)
from synthaug.quality.features import DomainEncoderConfig
from tests.helpers.toy import CLASS_MEANS

FAST_ENCODER = DomainEncoderConfig(widths=(8, 16, 32), steps=30)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


def test_feature_cache_gives_the_same_numbers(toy_store, cache):
    images, labels = toy_store.arrays(toy_store.split(1).train)  # not fold 0's reference
    n = len(toy_store.arrays(toy_store.split(0).val)[0])  # equal N: no synthetic subsampling
    images, labels = images[:n], labels[:n]
    request = QualityRequest(
        toy_store, 0, cache, with_consistency=False, encoder_config=FAST_ENCODER
    )
    plain = evaluate_quality(request, images, labels)
    shared: dict = {}
    first = evaluate_quality(request, images, labels, feature_cache=shared)
    assert shared and ("joint", "real") in shared
    second = evaluate_quality(request, images[::-1], labels[::-1], feature_cache=shared)
    for result in (first, second):
        assert result["joint"]["fid"] == pytest.approx(plain["joint"]["fid"], rel=1e-6)
        for m in plain["modalities"]:
            assert result["modalities"][m]["fid"] == pytest.approx(plain["modalities"][m]["fid"])


def test_the_baseline_is_compared_at_the_synthetic_sets_n(toy_store, cache):
    val = len(toy_store.arrays(toy_store.split(0).val)[0])
    images, labels = toy_store.arrays(toy_store.split(1).test)
    few = max(4, val // 2)
    request = QualityRequest(
        toy_store, 0, cache, with_consistency=False, encoder_config=FAST_ENCODER
    )
    small = evaluate_quality(request, images[:few], labels[:few])
    assert small["n_compared"] == few
    held = small["real_baseline"]["joint"]
    assert held["n_synthetic"] == few and held["n_available"] == val and held["subsamples"] == 5
    assert small["joint"]["subsamples"] == 1
    # More synthetic slices than validation ones: the synthetic set is subsampled instead.
    many = evaluate_quality(request, images, labels)
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


class _NearestMean(torch.nn.Module):
    """Logits = minus the squared distance of each pixel to the toy's class means."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = torch.as_tensor(CLASS_MEANS)[None, :, :, None, None]  # [1, K, C, 1, 1]
        return -((x[:, None] - means) ** 2).sum(dim=2)


def test_consistency_ceiling_is_measured_on_validation_patients(toy_store, monkeypatch):
    """The ceiling asks the store for the fold's validation patients only — never test ones."""
    split = toy_store.split(0)
    model = _NearestMean()
    syn_x, syn_y = toy_store.arrays(split.train)
    val_x, val_y = toy_store.arrays(split.val)
    expected = summarise_consistency(
        consistency_class_dice(model, val_x, val_y, toy_store.num_classes), toy_store.label_names
    )
    asked: list[list[str]] = []
    real_arrays = toy_store.arrays

    def arrays(patients: list[str]) -> tuple[np.ndarray, np.ndarray]:
        asked.append(list(patients))
        return real_arrays(patients)

    monkeypatch.setattr(toy_store, "arrays", arrays)
    out = _consistency(model, toy_store, 0, torch.from_numpy(syn_x), syn_y, "cpu")
    assert asked == [split.val]
    assert set(split.test).isdisjoint(p for group in asked for p in group)
    assert set(out) == {"synthetic", "real_val"}
    assert out["real_val"]["slices"] == expected["slices"] == len(val_x)
    assert out["real_val"]["mean"] == pytest.approx(expected["mean"])
    assert out["real_val"]["mean"] > 0.9  # the nearest-mean model segments the toy well


def test_consistency_ceiling_is_none_without_validation_patients(toy_store, monkeypatch):
    split = toy_store.split(0)
    no_val = dataclasses.replace(split, val=[])
    monkeypatch.setattr(toy_store, "split", lambda fold: no_val)
    asked: list[list[str]] = []
    monkeypatch.setattr(toy_store, "arrays", lambda patients: asked.append(patients))
    x, y = toy_store.training_arrays(split.train)
    out = _consistency(_NearestMean(), toy_store, 0, torch.from_numpy(x), y, "cpu")
    assert out["real_val"] is None and asked == []  # test patients are not a fallback


def test_readers_accept_old_real_test_quality_files():
    old = {"synthetic": {"mean": 0.5}, "real_test": {"mean": 0.8}}
    new = {"synthetic": {"mean": 0.5}, "real_val": {"mean": 0.7}}
    assert consistency_ceiling(old) == {"mean": 0.8}
    assert consistency_ceiling(new) == {"mean": 0.7}
    assert consistency_ceiling({**old, **new}) == {"mean": 0.7}  # real_val preferred
    assert consistency_ceiling(None) is None and consistency_ceiling({"synthetic": {}}) is None
    result = {
        "n_synthetic": 4,
        "reference": "real training slices",
        "extractor": "domain",
        "comparable_to_published": False,
        "modalities": {},
        "joint": None,
    }
    assert "real validation slices 0.700 (ceiling)" in format_quality(
        {**result, "consistency": new}
    )
    assert "real test slices 0.800 (ceiling)" in format_quality({**result, "consistency": old})
