"""The generate stage: synthetic patients on disk from each source, with and without a pair
filter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from synthaug.data.synthetic import read_synthetic
from synthaug.errors import SynthaugError
from synthaug.generator import CHECKPOINT
from synthaug.quality.consistency import consistency_dice
from synthaug.stages import GenerateOptions
from synthaug.stages import generate as run_generate
from synthaug.stages.filters import ConsistencyFilter


def generate(run, source, patients, out, pair_filter=None, max_factor=20.0, **options) -> Path:
    """The stage with paths as paths: returns the written dataset's folder."""
    options = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    opts = GenerateOptions(
        run=str(run), source=source, patients=patients, out=str(out), max_factor=max_factor,
        **options,
    )  # fmt: skip
    return run_generate(opts, pair_filter).path


@pytest.mark.parametrize("source", ["joint", "mask-conditional", "real-mask-conditional"])
def test_generate_writes_msd_patients(runs, toy_store, tmp_path, source):
    run = runs["joint"] if source == "joint" else runs["conditional"]
    mask_run = runs["mask"] if source == "mask-conditional" else None
    out = generate(run, source, patients=3, out=tmp_path / "syn", seed=5, mask_run=mask_run)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["modality"] == {"0": "A", "1": "B"}
    assert meta["labels"] == {"0": "background", "1": "disc", "2": "square"}
    assert meta["numTraining"] == 3 and meta["synthaug"]["source"] == source
    assert f"(stylegan2 family, source {source})" in meta["description"]
    assert (out / "preview.png").stat().st_size > 0
    patients = read_synthetic(out, toy_store)
    s = toy_store.median_slices(toy_store.split(0).train)
    assert [p.images.shape for p in patients] == [(s, 2, 32, 32)] * 3
    assert all(p.labels.min() >= 0 and p.labels.max() <= 2 for p in patients)
    assert all(np.abs(p.images).max() <= 1.0 for p in patients)


def test_generate_is_deterministic_for_a_seed(runs, tmp_path):
    a = read_synthetic(generate(runs["joint"], "joint", 2, tmp_path / "a", seed=3))
    b = read_synthetic(generate(runs["joint"], "joint", 2, tmp_path / "b", seed=3))
    c = read_synthetic(generate(runs["joint"], "joint", 2, tmp_path / "c", seed=4))
    assert all(
        np.array_equal(x.images, y.images) and np.array_equal(x.labels, y.labels)
        for x, y in zip(a, b, strict=True)
    )
    assert not np.array_equal(a[0].images, c[0].images)


def test_real_mask_conditional_uses_training_masks_only(runs, toy_store, tmp_path):
    split = toy_store.split(0)
    patients = read_synthetic(
        generate(runs["conditional"], "real-mask-conditional", len(split.train), tmp_path / "s")
    )
    train_masks = {m.tobytes() for m in toy_store.arrays(split.train)[1].astype(np.int64)}
    held_out = {m.tobytes() for m in toy_store.arrays(split.val + split.test)[1].astype(np.int64)}
    used = {m.tobytes() for p in patients for m in p.labels}
    assert used <= train_masks
    assert not used & (held_out - train_masks)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run": "joint", "source": "sideways"}, "unknown source"),
        ({"run": "joint", "source": "joint", "patients": 0}, "at least 1"),
        ({"run": "joint", "source": "joint", "patients": -2}, "at least 1"),
        ({"run": "mask", "source": "joint"}, "needs a stylegan2 joint run"),
        ({"run": "conditional", "source": "mask-conditional"}, "--mask-run"),
        (
            {"run": "conditional", "source": "mask-conditional", "mask_run": "joint"},
            "must be a mask run",
        ),
    ],
)
def test_generate_bad_requests(runs, tmp_path, kwargs, message):
    args = {"patients": 2, **kwargs}
    args["run"] = runs[args["run"]]
    if "mask_run" in args:
        args["mask_run"] = runs[args["mask_run"]]
    with pytest.raises(SynthaugError, match=message):
        generate(out=tmp_path / "syn", **args)
    assert not (tmp_path / "syn").exists()


def test_corrupt_checkpoint_is_a_clear_error(runs, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(runs["joint"], broken)
    shutil.rmtree(broken / "snapshots")
    data = (broken / CHECKPOINT).read_bytes()
    (broken / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.raises(SynthaugError, match="corrupt checkpoint"):
        generate(broken, "joint", 1, tmp_path / "syn")
    assert not (tmp_path / "syn").exists()


def test_mask_run_with_other_labels_is_refused(runs, tmp_path):
    other = tmp_path / "other-mask"
    shutil.copytree(runs["mask"], other)
    meta = json.loads((other / "run.json").read_text())
    meta["labels"] = ["background", "disc", "triangle"]
    (other / "run.json").write_text(json.dumps(meta))
    with pytest.raises(SynthaugError, match="labels"):
        generate(runs["conditional"], "mask-conditional", 1, tmp_path / "syn", mask_run=other)


# -- pair filters ---------------------------------------------------------------------------


class ThresholdSegmenter(nn.Module):
    """A stand-in 'real-only U-Net' for the toy data: class 1 where channel 0 is bright,
    class 2 where channel 1 is bright (the toy's intensity rule), else background."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, 0], x[:, 1]
        bg = torch.full_like(a, 0.0)
        return torch.stack([bg, (a - 0.0) * 10, (b - 0.3) * 10], dim=1)


def _filter(threshold: float) -> ConsistencyFilter:
    return ConsistencyFilter(ThresholdSegmenter(), threshold, 3)


def _recorded_filter(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())["synthaug"]["filter"]


def test_filter_zero_threshold_keeps_everything(runs, tmp_path):
    out = generate(
        runs["conditional"], "real-mask-conditional", 2, tmp_path / "s", pair_filter=_filter(0.0)
    )
    kept = _recorded_filter(out)
    assert kept["acceptance_rate"] == 1.0 and kept["metric"] == "consistency"
    assert kept["generated"] == kept["accepted"] == sum(len(p.labels) for p in read_synthetic(out))


def test_filter_keeps_only_consistent_pairs_and_records_the_rate(runs, tmp_path):
    # Threshold at the median consistency of unfiltered samples: about half pass.
    plain = read_synthetic(generate(runs["joint"], "joint", 3, tmp_path / "plain"))
    images = np.concatenate([p.images for p in plain])
    labels = np.concatenate([p.labels for p in plain]).astype(np.int64)
    dice = consistency_dice(ThresholdSegmenter(), images, labels, 3)
    threshold = float(np.nanmedian(dice))
    assert 0.0 < threshold < 1.0
    out = generate(runs["joint"], "joint", 3, tmp_path / "kept", pair_filter=_filter(threshold))
    kept = read_synthetic(out)
    s = len(plain[0].labels)
    assert [len(p.labels) for p in kept] == [s] * 3  # every patient filled
    k_images = np.concatenate([p.images for p in kept])
    k_labels = np.concatenate([p.labels for p in kept]).astype(np.int64)
    k_dice = consistency_dice(ThresholdSegmenter(), k_images, k_labels, 3)
    assert np.all(~(k_dice < threshold - 1e-6))
    assert np.nanmean(k_dice) > np.nanmean(dice)
    meta = _recorded_filter(out)
    assert meta["generated"] > meta["accepted"] == 3 * s
    assert meta["threshold"] == threshold
    assert meta["acceptance_rate"] == pytest.approx(meta["accepted"] / meta["generated"], abs=1e-4)


def test_filter_cap_gives_a_clear_error_and_writes_nothing(runs, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SynthaugError) as info:
        generate(runs["joint"], "joint", 2, out, pair_filter=_filter(1.0), max_factor=2)
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
    threshold = float(np.nanmedian(dice))
    out = generate(
        runs["conditional"], "real-mask-conditional", 2, tmp_path / "kept",
        pair_filter=_filter(threshold),
    )  # fmt: skip
    kept = read_synthetic(out)
    meta = _recorded_filter(out)
    assert meta["generated"] > meta["accepted"]  # some pairs were rejected and drawn again
    train_ids = toy_store.split(0).train
    for i, patient in enumerate(kept):
        # Every mask is a real slice of the patient it stands for (redrawn or swapped).
        source = {m.tobytes() for m in toy_store.patient(train_ids[i])[1].astype(np.uint8)}
        assert all(m.astype(np.uint8).tobytes() in source for m in patient.labels)
        k_dice = consistency_dice(ThresholdSegmenter(), patient.images, patient.labels, 3)
        assert np.all(~(k_dice < threshold - 1e-6))


@pytest.mark.parametrize("source", ["real-mask-diffusion", "mask-diffusion", "joint-diffusion"])
def test_diffusion_sources_write_msd_patients(runs, diffusion_runs, toy_store, tmp_path, source):
    run = diffusion_runs["joint" if source == "joint-diffusion" else "painter"]
    mask_run = runs["mask"] if source == "mask-diffusion" else None
    out = generate(run, source, 2, tmp_path / "syn", seed=1, mask_run=mask_run)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["modality"] == {"0": "A", "1": "B"}
    assert meta["labels"] == {"0": "background", "1": "disc", "2": "square"}
    assert meta["synthaug"]["source"] == source and meta["synthaug"]["family"] == "diffusion"
    assert f"(diffusion family, source {source})" in meta["description"]  # not "StyleGAN2"
    patients = read_synthetic(out, toy_store)
    s = toy_store.median_slices(toy_store.split(0).train)
    assert [p.images.shape for p in patients] == [(s, 2, 32, 32)] * 2
    if source == "real-mask-diffusion":  # painted onto the fold's real training masks
        train_masks = {m.tobytes() for m in toy_store.arrays(toy_store.split(0).train)[1]}
        assert all(m.astype(np.int64).tobytes() in train_masks for p in patients for m in p.labels)


def test_a_stylegan2_run_cannot_paint_a_diffusion_source(runs, tmp_path):
    with pytest.raises(SynthaugError, match="needs a diffusion painter run"):
        generate(runs["conditional"], "real-mask-diffusion", 1, tmp_path / "syn")
