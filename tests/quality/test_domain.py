"""Domain encoder, consistency and the whole evaluation on a toy store.

The toy store (tests/gan/toy.py): 32×32 slices, two channels, labels background / disc /
square, intensities set by the label. "Synthetic" sets are held-out real slices progressively
corrupted, so every metric has a known direction.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from synthaug.errors import SynthaugError
from synthaug.quality import features as features_mod
from synthaug.quality.consistency import consistency, consistency_dice
from synthaug.quality.evaluate import QualityRequest, evaluate_quality, feature_metrics
from synthaug.quality.features import DomainEncoderConfig, DomainExtractor, get_extractor
from synthaug.seg.reference import reference_unet_dir, train_reference_unet
from tests.helpers.toy import make_toy_store

# Tiny but real: trains in about a second per encoder on one core.
CONFIG = DomainEncoderConfig(widths=(8, 16, 32), steps=80, batch=16, lr=5e-3, bn_samples=128)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # The workloads here are tiny; one torch (and BLAS) thread avoids OpenMP oversubscription,
    # which slows small kernels by an order of magnitude when other jobs share the cores.
    try:
        from threadpoolctl import threadpool_limits  # optional (comes with scikit-learn)
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict:
    """Store (30 patients × 8 slices, 2 folds), cache dir and trained encoders of fold 0."""
    root = tmp_path_factory.mktemp("quality")
    store = make_toy_store(root, patients=30, slices=8, folds=2)
    cache = root / "cache"
    joint = get_extractor("domain", store=store, fold=0, cache_dir=cache, config=CONFIG)
    per_channel = [
        get_extractor("domain", store=store, fold=0, channels=[c], cache_dir=cache, config=CONFIG)
        for c in range(store.num_channels)
    ]
    split = store.split(0)
    real_x, real_y = store.arrays(split.train)
    held_x, held_y = store.arrays(split.val + split.test)
    return {
        "store": store,
        "cache": cache,
        "joint": joint,
        "per_channel": per_channel,
        "real": (real_x, real_y),
        "held": (held_x, held_y),
    }


def test_encoders_are_cached_and_reused(toy, monkeypatch) -> None:
    store, cache, joint = toy["store"], toy["cache"], toy["joint"]
    assert isinstance(joint, DomainExtractor) and joint.train_seconds > 0
    assert joint.path is not None and joint.path.is_file()
    assert joint.path.name.startswith("domain-encoder-fold0-c0-1-")
    assert len(list(Path(cache).glob("domain-encoder-*.pt"))) == 3  # joint + one per channel
    mtime = os.stat(joint.path).st_mtime_ns
    calls = []
    monkeypatch.setattr(features_mod, "_train_network", lambda *a: calls.append(a))
    again = get_extractor("domain", store=store, fold=0, cache_dir=cache, config=CONFIG)
    assert calls == [] and again.train_seconds == pytest.approx(0.0, abs=1e-9)
    assert os.stat(joint.path).st_mtime_ns == mtime
    x = toy["held"][0][:20]
    np.testing.assert_array_equal(again(x), joint(x))


def test_corrupt_cache_is_rebuilt(toy, tmp_path) -> None:
    store = toy["store"]
    config = DomainEncoderConfig(widths=(4, 8), steps=5, bn_samples=16)
    first = get_extractor("domain", store=store, fold=1, cache_dir=tmp_path, config=config)
    assert first.path is not None
    first.path.write_bytes(b"truncated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = get_extractor("domain", store=store, fold=1, cache_dir=tmp_path, config=config)
    assert any("unusable cached domain encoder" in str(w.message) for w in caught)
    assert second.train_seconds > 0 and second.path == first.path
    x = toy["held"][0][:8]
    np.testing.assert_array_equal(second(x), first(x))  # seeded: the same network again


def test_domain_features_shape_channels_and_batch_independence(toy) -> None:
    x = toy["held"][0]
    joint, (enc_a, _) = toy["joint"], toy["per_channel"]
    f = joint(x)
    assert f.shape == (len(x), 2 * sum(CONFIG.widths)) and f.dtype == np.float64
    assert np.isfinite(f).all() and f.std(axis=0).max() > 0
    # eval-mode BatchNorm: a sample's features do not depend on its batch
    joint.batch_size = 7
    np.testing.assert_allclose(joint(x[:10]), f[:10], rtol=1e-5, atol=1e-6)
    joint.batch_size = 256
    # a per-modality encoder takes its channel alone or picks it out of all channels
    np.testing.assert_array_equal(enc_a(x[:, :1]), enc_a(x))
    assert enc_a.describe()["modalities"] == ["A"]
    with pytest.raises(SynthaugError, match="channels"):
        joint(x[:, :1])
    with pytest.raises(SynthaugError, match="not distinct channels"):
        get_extractor(
            "domain", store=toy["store"], channels=[2], cache_dir=toy["cache"], config=CONFIG
        )
    with pytest.raises(SynthaugError, match="store and a cache directory"):
        get_extractor("domain")


def _noise(x: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.clip(x + rng.normal(0, sigma, x.shape), -1, 1).astype(np.float32)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(x, (0, 0, sigma, sigma)).astype(np.float32) if sigma else x


@pytest.mark.parametrize(
    ("corrupt", "levels"), [(_noise, (0.0, 0.15, 0.3, 0.6)), (_blur, (0.0, 0.7, 1.2, 2.0))]
)
def test_metrics_worsen_with_corruption(toy, corrupt, levels) -> None:
    real_x, _ = toy["real"]
    held_x, held_y = toy["held"]
    segmenter = toy["joint"].network  # a segmentation network trained on real toy slices
    for extractor in (toy["joint"], toy["per_channel"][0]):
        fr = extractor(real_x)
        rows = [
            feature_metrics(fr, extractor(corrupt(held_x, s)), kid_subsets=20, kid_subset_size=50)
            for s in levels
        ]
        fids = [r["fid"] for r in rows]
        kids = [r["kid_mean"] for r in rows]
        precisions = [r["precision"] for r in rows]
        recalls = [r["recall"] for r in rows]
        assert fids == sorted(fids) and len(set(fids)) == len(fids), fids
        assert kids == sorted(kids) and len(set(kids)) == len(kids), kids
        assert precisions == sorted(precisions, reverse=True) and precisions[0] > precisions[-1]
        assert recalls[-1] < recalls[0], recalls
    scores = [consistency(segmenter, corrupt(held_x, s), held_y, 3) for s in levels]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1] + 0.05, scores


class _Oracle(torch.nn.Module):
    """'Segments' by reading the label stored in channel 0 of the image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels = x[:, 0].round().long().clamp(0, 2)
        return torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()


def test_consistency_dice_definition() -> None:
    masks = np.zeros((4, 8, 8), dtype=np.int64)
    masks[0, :4] = 1  # slice 0: perfect
    masks[1, :4] = 1  # slice 1: class 1 half found, class 2 predicted but absent
    masks[2] = 0  # slice 2: empty mask, empty prediction
    masks[3, :2] = 2  # slice 3: class 2 missed entirely
    pred = masks.copy()
    pred[1, :2] = 1
    pred[1, 2:4] = 0
    pred[1, 6:] = 2
    pred[3] = 0
    images = pred[:, None].astype(np.float32)
    per_slice = consistency_dice(_Oracle(), images, masks, 3)
    assert per_slice[0] == pytest.approx(1.0)
    assert per_slice[1] == pytest.approx((2 * 16 / (16 + 32) + 0.0) / 2)
    assert np.isnan(per_slice[2])
    assert per_slice[3] == pytest.approx(0.0)
    assert consistency(_Oracle(), images, masks, 3) == pytest.approx(np.nanmean(per_slice))
    assert consistency_dice(_Oracle(), images, masks, 3, empty=1.0)[2] == 1.0
    with pytest.raises(SynthaugError, match="do not match"):
        consistency_dice(_Oracle(), images, masks[:2], 3)
    with pytest.raises(SynthaugError, match="outside 0..2"):
        consistency_dice(_Oracle(), images, masks + 5, 3)


def test_evaluate_quality_end_to_end(toy, monkeypatch) -> None:
    store = toy["store"]
    trained = []  # all three encoders must come from the cache: no training here
    monkeypatch.setattr(features_mod, "_train_network", lambda *a: trained.append(a))
    held_x, held_y = toy["held"]
    request = QualityRequest(
        store, 0, toy["cache"], reference_unet=toy["joint"].network, encoder_config=CONFIG,
        kid_subsets=10, kid_subset_size=50,
    )  # fmt: skip
    report = evaluate_quality(request, _noise(held_x, 0.1), held_y)
    assert trained == []  # all three encoders came from the cache
    assert report["extractor"] == "domain" and report["comparable_to_published"] is False
    assert report["n_real"] == len(toy["real"][0]) and report["n_synthetic"] == len(held_x)
    assert set(report["modalities"]) == {"A", "B"}
    for metrics in [*report["modalities"].values(), report["joint"]]:
        assert metrics["fid"] > 0 and 0 <= metrics["precision"] <= 1
        assert set(metrics) >= {"fid", "kid_mean", "kid_std", "precision", "recall"}
    base = report["real_baseline"]
    assert base["n"] == len(store.arrays(store.split(0).val)[0])
    assert base["joint"]["fid"] < report["joint"]["fid"]  # real data beat noisy data
    cons = report["consistency"]
    assert 0 <= cons["synthetic"]["mean"] <= cons["real_val"]["mean"] <= 1
    assert set(cons["synthetic"]["per_class"]) == {"disc", "square"}
    assert report["labels"]["class_frequency"]["total_variation"] < 0.1
    assert report["features"]["joint"]["channels"] == [0, 1]
    with pytest.raises(SynthaugError, match="does not match the store"):
        evaluate_quality(QualityRequest(store, 0, toy["cache"]), held_x[:, :1], held_y)


def test_reference_unet_is_trained_once(toy) -> None:
    store, cache = toy["store"], toy["cache"]
    model = train_reference_unet(store, 0, cache, preset="cpu-micro", max_steps=4)
    out = reference_unet_dir(store, 0, cache, preset="cpu-micro", max_steps=4)
    weights = out / "model.pt"
    mtime = os.stat(weights).st_mtime_ns
    again = train_reference_unet(store, 0, cache, preset="cpu-micro", max_steps=4)
    assert os.stat(weights).st_mtime_ns == mtime
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    held_x, held_y = toy["held"]
    assert consistency_dice(again, held_x[:5], held_y[:5], 3).shape == (5,)


class _PixelStats:
    """Stands in for the Inception extractor (whose 299×299 passes are too slow here)."""

    comparable_to_published = True

    def __init__(self, weights=None, channels=None, device="cpu") -> None:
        self.dim = 4

    def __call__(self, images) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images)).double()
        assert x.shape[1] in (1, 3), "Inception only ever sees 1 or 3 channels"
        return torch.stack(
            [
                x.mean((1, 2, 3)),
                x.std((1, 2, 3)),
                x.amax((1, 2, 3)),
                (x > 0).double().mean((1, 2, 3)),
            ],
            dim=1,
        ).numpy()

    def describe(self) -> dict:
        return {"extractor": "inception", "dim": self.dim}


def test_evaluate_quality_with_inception_wiring(toy, monkeypatch) -> None:
    monkeypatch.setattr(features_mod, "InceptionExtractor", _PixelStats)
    held_x, held_y = toy["held"]
    request = QualityRequest(
        toy["store"], 0, toy["cache"], extractor="inception", with_consistency=False,
        kid_subsets=5, kid_subset_size=30,
    )  # fmt: skip
    report = evaluate_quality(request, held_x, held_y)
    assert report["comparable_to_published"] is True
    assert report["joint"] is None  # two modality channels: no RGB joint space
    assert report["modalities"]["A"]["dim"] == 4 and report["consistency"] is None
    assert report["seconds"]["encoder_training"] == 0.0
    with pytest.raises(SynthaugError, match="not one of domain, inception"):
        evaluate_quality(
            QualityRequest(toy["store"], 0, toy["cache"], extractor="vgg"), held_x, held_y
        )
