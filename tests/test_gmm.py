"""The gmm painter: every class painted with its class's intensity distribution, one training
patient's contrast per slice, masks deformed only when asked, and a family run like any other."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from synthaug.errors import SynthaugError
from synthaug.generator import TrainRequest
from synthaug.gmm.family import GMM
from synthaug.gmm.paint import ClassStats, fit_class_stats, paint
from synthaug.gmm.presets import GMM_PRESETS
from synthaug.stages.generate import GenerateOptions, generate
from synthaug.stages.train_generator import score_run
from tests.helpers.toy import CLASS_MEANS, RES

PLAIN = replace(
    GMM_PRESETS["default"], pv_sigma_px=(0.0, 0.0), bias=0.0, contrast_jitter=0.0, noise=1.0
)


def _per_patient(store, patients):
    return [store.training_arrays([p]) for p in patients]


def _interior(masks: np.ndarray, k: int) -> np.ndarray:
    """Pixels of class k whose 4 neighbours are class k too (away from blurred edges)."""
    m = masks == k
    inner = m.copy()
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    inner[:, :, 1:] &= m[:, :, :-1]
    inner[:, :, :-1] &= m[:, :, 1:]
    return inner


def test_fit_measures_each_class_per_patient_and_modality(toy_store):
    patients = toy_store.split(0).train
    stats = fit_class_stats(_per_patient(toy_store, patients), 3)
    assert stats.mean.shape == (len(patients), 3, 2)
    assert np.allclose(np.nanmean(stats.mean, axis=0), CLASS_MEANS, atol=0.02)
    assert np.all((stats.std[stats.present] > 0.02) & (stats.std[stats.present] < 0.1))


@pytest.mark.parametrize("preset", [PLAIN, GMM_PRESETS["default"]], ids=["plain", "default"])
def test_every_class_is_painted_with_its_distribution(toy_store, preset):
    patients = toy_store.split(0).train
    stats = fit_class_stats(_per_patient(toy_store, patients), 3)
    masks = toy_store.arrays(toy_store.split(0).val)[1]
    images, painted = paint(stats, preset, masks, seed=0)
    assert images.shape == (len(masks), 2, RES, RES) and np.array_equal(painted, masks)
    assert images.min() >= -1 and images.max() <= 1
    tolerance = 0.02 if preset is PLAIN else 0.12  # bias field and contrast jitter spread it
    for k in range(3):
        inner = _interior(masks, k)
        for c in range(2):
            values = images[:, c][inner]
            assert abs(values.mean() - CLASS_MEANS[k, c]) < tolerance, (k, c, values.mean())
            if preset is PLAIN:
                measured = np.nanmean(stats.std[:, k, c])
                assert 0.8 * measured < values.std() < 1.25 * measured


def test_each_slice_takes_one_patients_contrast_not_the_average():
    """Two training patients with opposite contrasts: a slice is one or the other."""
    mean = np.array([[[-1.0], [0.5]], [[-1.0], [-0.5]]])  # [P=2, K=2, C=1]
    stats = ClassStats(mean, np.full_like(mean, 0.01), np.full((2, 2), 100))
    masks = np.zeros((40, 16, 16), np.int64)
    masks[:, 4:12, 4:12] = 1
    images, _ = paint(stats, PLAIN, masks, seed=3)
    class_means = images[:, 0][:, 6:10, 6:10].mean(axis=(1, 2))
    assert np.all(np.minimum(abs(class_means - 0.5), abs(class_means + 0.5)) < 0.05)
    assert (class_means > 0).any() and (class_means < 0).any()  # both patients drawn


def test_a_class_a_patient_lacks_is_painted_from_the_others():
    mean = np.array([[[-1.0], [0.6]], [[-1.0], [np.nan]]])
    pixels = np.array([[100, 100], [100, 0]])
    stats = ClassStats(mean, np.where(np.isnan(mean), np.nan, 0.01), pixels)
    masks = np.ones((20, 8, 8), np.int64)
    images, _ = paint(stats, PLAIN, masks, seed=0)
    assert np.isfinite(images).all() and abs(images[:, 0, 2:6, 2:6].mean() - 0.6) < 0.05


def test_elastic_preset_deforms_the_mask_and_paints_the_deformed_one(toy_store):
    stats = fit_class_stats(_per_patient(toy_store, toy_store.split(0).train), 3)
    masks = toy_store.arrays(toy_store.split(0).val)[1][:12]
    elastic = replace(PLAIN, elastic_px=1.5)
    images, painted = paint(stats, elastic, masks, seed=0)
    assert not np.array_equal(painted, masks)
    assert set(np.unique(painted)) <= set(np.unique(masks))  # labels stay labels
    moved = 1 - (painted == masks).mean()
    assert 0.005 < moved < 0.3
    inner = _interior(painted, 1)
    assert abs(images[:, 0][inner].mean() - CLASS_MEANS[1, 0]) < 0.05  # follows the new mask


def test_paint_is_deterministic_for_a_seed(toy_store):
    stats = fit_class_stats(_per_patient(toy_store, toy_store.split(0).train), 3)
    masks = toy_store.arrays(toy_store.split(0).val)[1][:4]
    a, _ = paint(stats, GMM_PRESETS["default"], masks, seed=1)
    b, _ = paint(stats, GMM_PRESETS["default"], masks, seed=1)
    c, _ = paint(stats, GMM_PRESETS["default"], masks, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_family_fits_scores_and_generates(toy_store, tmp_path):
    request = TrainRequest(str(toy_store.path), 0, "painter", str(tmp_path / "gmm"), "default")
    run = GMM.train(request)
    assert GMM.owns(run) and GMM.describe(run).store_fingerprint == toy_store.fingerprint
    assert len(GMM.snapshots(run)) == 1 and list((run / "grids").glob("samples-*.png"))
    assert GMM.health(run).nimg == len(toy_store.training_arrays(toy_store.split(0).train)[1])
    with pytest.raises(SynthaugError, match="--resume"):
        GMM.train(request)
    assert GMM.train(replace(request, resume=True)) == run  # fitted: nothing to redo
    with pytest.raises(SynthaugError, match="paints masks"):
        GMM.load(run).sample(2, seed=0)
    scores = score_run(run)
    assert scores["snapshots"][0]["consistency"] > 0.5  # the toy is made this way
    out = generate(
        GenerateOptions(str(run), "real-mask-gmm", 2, str(tmp_path / "syn"), seed=1)
    ).path
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["modality"] == {"0": "A", "1": "B"} and meta["synthaug"]["family"] == "gmm"
    assert meta["labels"] == {"0": "background", "1": "disc", "2": "square"}


def test_gmm_rejects_other_variants(toy_store, tmp_path):
    with pytest.raises(SynthaugError, match="only 'painter'"):
        GMM.train(TrainRequest(str(toy_store.path), 0, "joint", str(tmp_path / "x"), "default"))


def test_cli_fits_a_gmm_run_with_its_default_preset(toy_store, tmp_path, run_cli):
    out = tmp_path / "cli-gmm"
    args = ["train-generator", "--family", "gmm", "--variant", "painter", "--store",
            str(toy_store.path), "--fold", "0", "--out", str(out), "--no-quality"]  # fmt: skip
    done = run_cli(*args)
    assert done.code == 0, done.err
    assert json.loads((out / "run.json").read_text())["preset"]["name"] == "default"
    refused = run_cli(*args, "--resume", "--sample-steps", "5")
    assert refused.code != 0 and "--sample-steps" in refused.err + refused.out


def test_contrast_jitter_moves_the_class_means_by_the_patients_spread():
    # two patients whose class-1 means differ by 0.4: the jitter's scale
    stats = ClassStats(np.array([[[-0.5], [0.0]], [[-0.5], [0.4]]]), np.full((2, 2, 1), 0.02),
                       np.full((2, 2), 500))  # fmt: skip
    masks = np.zeros((8, 16, 16), np.int64)
    masks[:, 4:12, 4:12] = 1
    calm = replace(GMM_PRESETS["default"], contrast_jitter=0.0, noise=0.0, bias=0.0)
    still, _ = paint(stats, calm, masks, seed=5)
    moved, _ = paint(stats, replace(calm, contrast_jitter=1.0), masks, seed=5)
    shift = np.abs(moved[:, 0, 8, 8] - still[:, 0, 8, 8])
    assert shift.max() > 0.05  # a spread-sized move in some painting
    assert np.allclose(moved[:, 0, 0, 0], still[:, 0, 0, 0], atol=0.2)  # background too, less
