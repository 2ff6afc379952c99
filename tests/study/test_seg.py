"""train-seg: a U-Net learns the toy store; synthetic patients are added; runs resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthaug.data.synthetic import SyntheticPatient, write_synthetic_dataset
from synthaug.errors import SynthaugError
from synthaug.seg.evaluate import evaluate_patients, mean_foreground_dice, patient_dice
from synthaug.seg.network import build_unet
from synthaug.seg.presets import seg_preset
from synthaug.seg.train import SegOptions, TrainingData, _draw, is_capped, train_seg


def test_patient_dice_definition():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, :2, :2] = 1  # 4 voxels of class 1
    pred = torch.zeros_like(target)
    pred[0, :2, :1] = 1  # 2 of them found
    pred[1, 3, 3] = 2  # class 2 predicted where there is none
    dice = patient_dice(pred, target, 3)
    assert dice[0] == pytest.approx(2 * 2 / (4 + 2))
    assert dice[1] == 0.0


def test_unet_learns_toy_store_well_above_chance(study_store, tmp_path):
    torch.manual_seed(0)
    untrained = mean_foreground_dice(
        evaluate_patients(
            build_unet(2, 3, seg_preset("cpu-micro")), study_store, study_store.split(0).test
        )
    )
    r = train_seg(
        SegOptions(
            store=str(study_store.path),
            fold=0,
            out=str(tmp_path / "seg"),
            preset="cpu-micro",
            max_steps=80,
        )
    )
    assert r.test_mean_dice > 0.7
    assert r.test_mean_dice > untrained + 0.4
    test_ids = set(study_store.split(0).test)
    assert {row["patient"] for row in r.test} == test_ids  # evaluated on real test patients only
    assert (tmp_path / "seg" / "results.json").is_file() and (
        tmp_path / "seg" / "model.pt"
    ).is_file()
    assert not (tmp_path / "seg" / "checkpoint.pt").exists()


def _synthetic(tmp_path, store, patients=3, labels=None, modalities=None):
    rng = np.random.default_rng(0)
    pats = [
        SyntheticPatient(
            f"syn_{i:04d}",
            rng.uniform(-1, 1, (4, 2, 32, 32)).astype(np.float32),
            rng.integers(0, 3, (4, 32, 32)),
        )
        for i in range(patients)
    ]
    return write_synthetic_dataset(
        tmp_path / "syn", pats, modalities or store.modalities, labels or store.label_names
    )


def test_first_n_synthetic_patients_are_added(study_store, tmp_path):
    syn = _synthetic(tmp_path, study_store)
    r = train_seg(
        SegOptions(
            store=str(study_store.path),
            fold=0,
            out=str(tmp_path / "s"),
            preset="cpu-micro",
            max_steps=2,
            synthetic=str(syn),
            n_patients=2,
        )
    )
    assert r.synthetic_slices == 8
    assert r.real_train_slices == len(study_store.indices(study_store.split(0).train))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"labels": ["background", "disc", "triangle"]}, "labels"),
        ({"modalities": ["A", "C"]}, "modality channels"),
    ],
)
def test_synthetic_that_differs_from_store_is_refused(study_store, tmp_path, kw, message):
    syn = _synthetic(tmp_path, study_store, **kw)
    with pytest.raises(SynthaugError, match=message):
        train_seg(
            SegOptions(
                store=str(study_store.path),
                fold=0,
                out=str(tmp_path / "s"),
                preset="cpu-micro",
                synthetic=str(syn),
                n_patients=1,
            )
        )
    assert not (tmp_path / "s" / "results.json").exists()


def test_too_few_synthetic_patients_is_refused(study_store, tmp_path):
    syn = _synthetic(tmp_path, study_store, patients=2)
    with pytest.raises(SynthaugError, match="2 synthetic patients, 5 requested"):
        train_seg(
            SegOptions(
                store=str(study_store.path),
                fold=0,
                out=str(tmp_path / "s"),
                preset="cpu-micro",
                synthetic=str(syn),
                n_patients=5,
            )
        )


def test_seg_resumes_from_checkpoint(study_store, tmp_path, monkeypatch):
    out = tmp_path / "s"
    import synthaug.seg.train as seg_train

    calls = {"n": 0}
    real_eval = seg_train.evaluate_patients

    def failing_eval(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # die at the second validation, after one checkpoint
            raise KeyboardInterrupt
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(seg_train, "evaluate_patients", failing_eval)
    opts = SegOptions(
        store=str(study_store.path), fold=0, out=str(out), preset="cpu-micro", max_steps=80
    )
    with pytest.raises(KeyboardInterrupt):
        train_seg(opts)
    assert (out / "checkpoint.pt").is_file() and not (out / "results.json").exists()
    with pytest.raises(SynthaugError, match="--resume"):
        train_seg(opts)
    monkeypatch.setattr(seg_train, "evaluate_patients", real_eval)
    opts.resume = True
    r = train_seg(opts)
    assert r.steps == 80
    assert [h["step"] for h in r.history] == [40, 80]
    assert json.loads((out / "results.json").read_text())["steps"] == 80


def test_a_run_ended_by_its_step_cap_is_flagged_capped(study_store, tmp_path):
    base = {"store": str(study_store.path), "fold": 0, "preset": "cpu-micro"}
    # 40 steps: the first validation (every 40) is the best and sits at the cap.
    capped = train_seg(SegOptions(**base, out=str(tmp_path / "a"), max_steps=40))
    assert capped.capped and capped.stopped_by == "step cap"
    assert capped.best_step == capped.max_steps == 40
    # A generous cap: early stopping (patience 3) ends it, well before the cap.
    free = train_seg(SegOptions(**base, out=str(tmp_path / "b"), max_steps=4000))
    assert free.stopped_by == "early stopping" and not free.capped
    assert free.steps < 4000 and free.steps - free.best_step >= 3 * 40


def test_is_capped_is_about_the_last_validation_window():
    assert is_capped(best_step=400, max_steps=400, val_every=50)
    assert not is_capped(best_step=350, max_steps=400, val_every=50)


def test_synthetic_fraction_fixes_the_share_of_each_batch():
    g = torch.Generator().manual_seed(0)
    real = torch.zeros(50, 1, 4, 4)
    syn = torch.ones(5, 1, 4, 4)
    data = TrainingData(real, torch.zeros(50, 4, 4), syn, torch.ones(5, 4, 4))
    x, y = _draw(data, 16, 0.25, g)
    assert x.shape[0] == 16 and int(x.flatten(1).amax(1).sum()) == 4  # 4 of 16 synthetic
    # Uniform draws: the synthetic share follows the pool (5 of 55), not a fixed 25 %.
    shares = [_draw(data, 16, None, g)[0].flatten(1).amax(1).mean().item() for _ in range(200)]
    assert np.mean(shares) == pytest.approx(5 / 55, abs=0.03)


def test_synthetic_fraction_out_of_range_is_refused(study_store, tmp_path):
    syn = _synthetic(tmp_path, study_store)
    with pytest.raises(SynthaugError, match="synthetic-fraction"):
        train_seg(
            SegOptions(
                store=str(study_store.path),
                fold=0,
                out=str(tmp_path / "s"),
                preset="cpu-micro",
                synthetic=str(syn),
                n_patients=2,
                synthetic_fraction=1.5,
            )  # fmt: skip
        )
