"""Quality wired into the GAN stages: snapshot scoring and selection, the collapse detector,
and the consistency filter of ``generate``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from synthaug.config import parse_filter, parse_source
from synthaug.data.synthetic import read_synthetic
from synthaug.errors import SynthaugError
from synthaug.gan.checkpoint import QUALITY, list_snapshots, load_torch, save_torch
from synthaug.gan.run import RunInfo
from synthaug.gan.sample import ConsistencyFilter, generate, load_generator_path
from synthaug.gan.train import TrainOptions, train
from synthaug.quality import snapshots as snap_quality
from synthaug.quality.consistency import consistency_dice
from synthaug.quality.features import DomainEncoderConfig
from synthaug.quality.snapshots import (
    MaskLayoutExtractor,
    SnapshotReference,
    mean_pairwise_distance,
    score_snapshots,
    unusable_reason,
)

FAST_ENCODER = DomainEncoderConfig(widths=(8, 16, 32), steps=30)


@pytest.fixture(scope="module")
def runs(toy_store, tmp_path_factory) -> dict[str, Path]:
    """Briefly trained runs with two snapshots each (shared; copy before changing one)."""
    root = tmp_path_factory.mktemp("quality_runs")
    out = {}
    for variant in ("joint", "mask", "conditional"):
        out[variant] = train(
            TrainOptions(
                store=str(toy_store.path),
                fold=0,
                variant=variant,
                preset="cpu-micro",
                kimg=0.032,
                snapshot_kimg=0.016,
                out=str(root / variant),
            )
        )
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


# -- parsing ----------------------------------------------------------------------------------


def test_filter_and_source_parsing():
    assert parse_filter("consistency>=0.5") == 0.5
    assert parse_filter(" consistency >= 1 ") == 1.0
    spec = parse_source("real-mask-conditional[consistency>=0.50]")
    assert spec.base == "real-mask-conditional" and spec.min_consistency == 0.5
    assert spec.name == "real-mask-conditional[consistency>=0.5]"
    assert spec.slug == "real-mask-conditional.consistency-ge-0.5"
    assert spec.variants == ("conditional",)
    plain = parse_source("joint")
    assert plain.min_consistency is None and plain.slug == plain.name == "joint"


@pytest.mark.parametrize(
    "text", ["consistency>0.5", "dice>=0.5", "consistency>=1.5", "consistency>=x", ""]
)
def test_bad_filters_are_refused(text):
    with pytest.raises(SynthaugError, match="filter"):
        parse_filter(text)


@pytest.mark.parametrize("text", ["diffusion", "joint[consistency>=0.5", "joint[dice>=0.2]"])
def test_bad_sources_are_refused(text):
    with pytest.raises(SynthaugError):
        parse_source(text)


# -- features and the collapse detector ---------------------------------------------------------


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


def test_collapse_detector_flags_identical_samples_not_held_out_reals(runs, toy_store, cache):
    info = RunInfo.read(runs["joint"])
    ref = SnapshotReference(info, toy_store, None, cache, FAST_ENCODER, seed=0)
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


def test_diverse_samples_unlike_the_data_are_off_the_data_not_collapsed(runs, toy_store, cache):
    """An under-trained generator: samples as spread out as reals but nowhere near them."""
    info = RunInfo.read(runs["joint"])
    ref = SnapshotReference(info, toy_store, None, cache, FAST_ENCODER, seed=0)
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


def _collapse(snapshot: Path) -> None:
    """Make a generator ignore its latent: zero the mapping network's last layer (w = its
    bias) and every noise strength, so all samples are the same image."""
    state = load_torch(snapshot)
    g = state["G_ema"]
    mapping = [k for k in g if k.startswith("mapping_network.layers.") and k.endswith("weight")]
    last = max(mapping, key=lambda k: int(k.split(".")[2]))
    g[last] = torch.zeros_like(g[last])
    for key in g:
        if key.endswith("noise.strength"):
            g[key] = torch.zeros_like(g[key])
    save_torch(snapshot, state)


def test_score_snapshots_flags_a_collapsed_generator(runs, tmp_path, cache):
    run = tmp_path / "joint"
    shutil.copytree(runs["joint"], run)
    for snap in list_snapshots(run):
        _collapse(snap)
    result = score_snapshots(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    assert all(r["collapsed"] and r["failure"] == "collapsed" for r in result["snapshots"])
    assert result["usable"] is False and len(result["warnings"]) == 2
    assert all(": collapsed — " in w for w in result["warnings"])
    assert unusable_reason(result) == "every snapshot collapsed"
    assert all(r["image"]["diversity"] < 0.05 for r in result["snapshots"])


@pytest.mark.parametrize("variant", ["joint", "mask", "conditional"])
def test_score_snapshots_scores_every_snapshot_and_picks_the_best(
    runs, tmp_path, cache, variant, monkeypatch
):
    run = tmp_path / variant
    shutil.copytree(runs[variant], run)
    result = score_snapshots(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    rows = result["snapshots"]
    assert [r["snapshot"] for r in rows] == [p.name for p in list_snapshots(run)]
    space = snap_quality.primary_space(variant)
    assert set(result["held_out"]) >= {space, "patients"}
    candidates = [r for r in rows if not r["collapsed"]] or rows
    if variant == "conditional":  # ranked by how well images follow their masks
        assert all(0 <= r["consistency"] <= 1 for r in rows)
        assert 0 < result["held_out"]["consistency"] <= 1
        best = max(candidates, key=lambda r: r["consistency"])
        assert "consistency" in result["ranked_by"]
    else:
        best = min(candidates, key=lambda r: r[space]["fid"])
    assert result["best"]["snapshot"] == best["snapshot"]
    # generate's default weights are now the best snapshot, not the latest.
    assert load_generator_path(run).name == best["snapshot"]
    on_disk = json.loads((run / QUALITY).read_text())
    assert on_disk["best"] == result["best"]

    # A second call reuses the scores instead of regenerating.
    def boom(*args, **kwargs):
        raise AssertionError("re-scored a snapshot that was already scored")

    monkeypatch.setattr(snap_quality, "_score_one", boom)
    again = score_snapshots(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    assert again["snapshots"] == rows


def test_named_snapshot_wins_over_the_best(runs, tmp_path, cache):
    run = tmp_path / "joint"
    shutil.copytree(runs["joint"], run)
    score_snapshots(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    first = list_snapshots(run)[0]
    assert load_generator_path(run, first) == first
    (run / QUALITY).write_text("{not json")  # a torn file: fall back to the latest
    assert load_generator_path(run) == list_snapshots(run)[-1]


# -- the consistency filter ---------------------------------------------------------------------


class ThresholdSegmenter(nn.Module):
    """A stand-in 'real-only U-Net' for the toy data: class 1 where channel 0 is bright,
    class 2 where channel 1 is bright (the toy's intensity rule), else background."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, 0], x[:, 1]
        bg = torch.full_like(a, 0.0)
        return torch.stack([bg, (a - 0.0) * 10, (b - 0.3) * 10], dim=1)


def _filter(threshold: float, max_factor: float = 20.0) -> ConsistencyFilter:
    return ConsistencyFilter(ThresholdSegmenter(), threshold, 3, max_factor)


def test_filter_zero_threshold_keeps_everything(runs, tmp_path):
    keep = _filter(0.0)
    out = generate(
        runs["conditional"], "real-mask-conditional", 2, tmp_path / "s", consistency_filter=keep
    )
    meta = json.loads((out / "dataset.json").read_text())["synthaug"]
    assert meta["filter"]["acceptance_rate"] == 1.0
    assert keep.generated == keep.accepted == sum(len(p.labels) for p in read_synthetic(out))


def test_filter_keeps_only_consistent_pairs_and_records_the_rate(runs, tmp_path):
    # Threshold at the median consistency of unfiltered samples: about half pass.
    plain = read_synthetic(generate(runs["joint"], "joint", 3, tmp_path / "plain"))
    images = np.concatenate([p.images for p in plain])
    labels = np.concatenate([p.labels for p in plain]).astype(np.int64)
    dice = consistency_dice(ThresholdSegmenter(), images, labels, 3)
    threshold = float(np.nanmedian(dice))
    assert 0.0 < threshold < 1.0
    keep = _filter(threshold)
    out = generate(runs["joint"], "joint", 3, tmp_path / "kept", consistency_filter=keep)
    kept = read_synthetic(out)
    s = len(plain[0].labels)
    assert [len(p.labels) for p in kept] == [s] * 3  # every patient filled
    k_images = np.concatenate([p.images for p in kept])
    k_labels = np.concatenate([p.labels for p in kept]).astype(np.int64)
    k_dice = consistency_dice(ThresholdSegmenter(), k_images, k_labels, 3)
    assert np.all(~(k_dice < threshold - 1e-6))
    assert np.nanmean(k_dice) > np.nanmean(dice)
    assert keep.generated > keep.accepted == 3 * s
    meta = json.loads((out / "dataset.json").read_text())["synthaug"]["filter"]
    assert meta["threshold"] == threshold
    assert meta["acceptance_rate"] == pytest.approx(keep.accepted / keep.generated, abs=1e-4)


def test_filter_cap_gives_a_clear_error_and_writes_nothing(runs, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SynthaugError) as info:
        generate(runs["joint"], "joint", 2, out, consistency_filter=_filter(1.0, max_factor=2))
    message = str(info.value)
    assert "cap" in message and "consistency>=1" in message and "\n" not in message
    assert not out.exists()


def test_real_mask_filter_keeps_masks_of_the_same_real_patient(runs, tmp_path, toy_store):
    plain = read_synthetic(
        generate(runs["conditional"], "real-mask-conditional", 2, tmp_path / "plain")
    )
    images = np.concatenate([p.images for p in plain])
    labels = np.concatenate([p.labels for p in plain]).astype(np.int64)
    dice = consistency_dice(ThresholdSegmenter(), images, labels, 3)
    keep = _filter(float(np.nanmedian(dice)))
    kept = read_synthetic(
        generate(
            runs["conditional"],
            "real-mask-conditional",
            2,
            tmp_path / "kept",
            consistency_filter=keep,
        )
    )
    assert keep.generated > keep.accepted  # some pairs were rejected and drawn again
    train_ids = toy_store.split(0).train
    for i, patient in enumerate(kept):
        # Every mask is a real slice of the patient it stands for (redrawn or swapped).
        source = {m.tobytes() for m in toy_store.patient(train_ids[i])[1].astype(np.uint8)}
        assert all(m.astype(np.uint8).tobytes() in source for m in patient.labels)
        k_dice = consistency_dice(ThresholdSegmenter(), patient.images, patient.labels, 3)
        assert np.all(~(k_dice < keep.threshold - 1e-6))


# -- command line -------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synthaug", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SYNTHAUG_QUIET": "1"},
    )


def test_cli_quality_writes_every_metric(runs, toy_store, tmp_path):
    syn = generate(runs["conditional"], "real-mask-conditional", 3, tmp_path / "syn")
    out = tmp_path / "q.json"
    proc = _cli(
        "quality", "--store", str(toy_store.path), "--fold", "0", "--synthetic", str(syn),
        "--out", str(out), "--unet-preset", "cpu-micro", "--cache", str(tmp_path / "cache"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["modalities"]) == {"A", "B"} and result["joint"]["fid"] >= 0
    assert result["real_baseline"]["joint"]["n_synthetic"] == len(
        toy_store.arrays(toy_store.split(0).val)[0]
    )
    assert 0 <= result["consistency"]["synthetic"]["mean"] <= 1
    assert "class_frequency" in result["labels"]
    assert "held-out real" in proc.stdout and "consistency" in proc.stdout


def test_cli_quality_refuses_a_synthetic_set_with_other_channels(toy_store, tmp_path):
    from synthaug.data.synthetic import SyntheticPatient, write_synthetic_dataset

    r = toy_store.resolution
    one_channel = [SyntheticPatient("p", np.zeros((4, 1, r, r), np.float32), np.zeros((4, r, r)))]
    syn = write_synthetic_dataset(tmp_path / "syn", one_channel, ["A"], toy_store.label_names)
    proc = _cli(
        "quality", "--store", str(toy_store.path), "--fold", "0", "--synthetic", str(syn),
        "--out", str(tmp_path / "q.json"),
    )  # fmt: skip
    assert proc.returncode == 2
    assert str(syn) in proc.stderr and "modality" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "q.json").exists()


def test_cli_generate_with_a_bad_filter_is_one_line(runs, tmp_path):
    proc = _cli(
        "generate", "--run", str(runs["joint"]), "--source", "joint", "--patients", "1",
        "--out", str(tmp_path / "s"), "--filter", "consistency>=1.5",
    )  # fmt: skip
    assert proc.returncode == 2 and "filter" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_cli_quality_snapshots_prints_the_table(runs, tmp_path):
    run = tmp_path / "mask"
    shutil.copytree(runs["mask"], run)
    proc = _cli("quality-snapshots", str(run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "held-out" in proc.stdout and "best (*)" in proc.stdout
    assert (run / QUALITY).is_file()


def test_training_warns_when_d_wins_outright():
    from synthaug.gan.train import health_warning

    healthy = {"kimg": 1.0, "d_main": 0.9, "real_logits": 0.4, "fake_logits": -0.3, "ada_p": 0.1}
    assert health_warning(healthy) is None
    won = {**healthy, "d_main": 0.02, "real_logits": 6.0, "fake_logits": -7.5}
    message = health_warning(won)
    assert message and "1.00 kimg" in message and "+6.0" in message and "-7.5" in message


def test_summary_says_whether_the_run_is_usable(runs, tmp_path, cache):
    run = tmp_path / "joint"
    shutil.copytree(runs["joint"], run)
    summary = json.loads((run / "summary.json").read_text())
    assert isinstance(summary["warnings"], list)
    result = score_snapshots(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["usable"] == result["usable"]
    assert summary["best_snapshot"] == result["best"]["snapshot"]
    assert summary["final_snapshot_usable"] == (not result["snapshots"][-1]["collapsed"])


def test_feature_cache_gives_the_same_numbers(runs, toy_store, tmp_path, cache):
    from synthaug.quality.evaluate import evaluate_quality, synthetic_arrays

    syn = generate(runs["joint"], "joint", 3, tmp_path / "syn")
    images, labels = synthetic_arrays(syn, toy_store)
    settings = dict(cache_dir=cache, with_consistency=False, encoder_config=FAST_ENCODER)
    plain = evaluate_quality(toy_store, 0, images, labels, **settings)
    shared: dict = {}
    first = evaluate_quality(toy_store, 0, images, labels, feature_cache=shared, **settings)
    assert shared and ("joint", "real") in shared
    second = evaluate_quality(
        toy_store, 0, images[::-1], labels[::-1], feature_cache=shared, **settings
    )
    for result in (first, second):
        assert result["joint"]["fid"] == pytest.approx(plain["joint"]["fid"], rel=1e-9)
        for m in plain["modalities"]:
            assert result["modalities"][m]["fid"] == pytest.approx(plain["modalities"][m]["fid"])
