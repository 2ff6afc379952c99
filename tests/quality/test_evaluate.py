"""evaluate_quality: the real sets' features computed once for several synthetic sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthaug.quality.evaluate import evaluate_quality
from synthaug.quality.features import DomainEncoderConfig

FAST_ENCODER = DomainEncoderConfig(widths=(8, 16, 32), steps=30)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


def test_feature_cache_gives_the_same_numbers(toy_store, cache):
    images, labels = toy_store.arrays(toy_store.split(1).train)  # not fold 0's reference
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
