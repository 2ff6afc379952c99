"""Segmentation metrics beside Dice: 3-D HD95 and normalised surface Dice per (patient, class),
their conventions for absent classes, and the per-patient "mean" row of ``evaluate_patients``."""

from __future__ import annotations

import json
import math
import types
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

from synthaug.seg.evaluate import (
    METRICS,
    _onehot,
    evaluate_patients,
    patient_dice,
    patient_hd95,
    patient_nsd,
)

K = 3  # background + two foreground classes


def _square_stack(col: int, size: int = 6, slices: int = 3, res: int = 16) -> np.ndarray:
    """[S, R, R] labels: class 1 a size × size square (rows 4.., columns col..) in every slice."""
    lab = np.zeros((slices, res, res), dtype=np.int64)
    lab[:, 4 : 4 + size, col : col + size] = 1
    return lab


def _monai(pred: np.ndarray, target: np.ndarray, tol: float = 1.0) -> tuple[np.ndarray, ...]:
    p, t = _onehot(torch.from_numpy(pred), K), _onehot(torch.from_numpy(target), K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd = compute_hausdorff_distance(p, t, include_background=False, percentile=95)
        nsd = compute_surface_dice(p, t, class_thresholds=[tol] * (K - 1), include_background=False)
    return hd[0].numpy(), nsd[0].numpy()


def _metrics(pred: np.ndarray, target: np.ndarray, tol: float = 1.0) -> tuple[np.ndarray, ...]:
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    return patient_dice(p, t, K), patient_hd95(p, t, K), patient_nsd(p, t, K, tol)


# -- hand-worked values ------------------------------------------------------------------------


def test_identical_masks_give_hd95_0_and_nsd_1():
    target = _square_stack(4)
    target[1, 12:14, 12:14] = 2
    dice, hd, nsd = _metrics(target, target)
    assert dice == pytest.approx([1.0, 1.0])
    assert hd == pytest.approx([0.0, 0.0])
    assert nsd == pytest.approx([1.0, 1.0])


def test_square_shifted_by_two_pixels():
    """Prediction = ground truth moved 2 columns. Every surface voxel lies 0, 1 or 2 pixels from
    the other surface; at 2 lie the far faces (6 rows × 3 slices = 18 of the 92 surface voxels
    of each square: 36 in each end slice, a 20-voxel ring in the middle one), more than 5%, so
    HD95 = 2. Within 1 pixel: 92 − 18 = 74 of 92 on each side, so NSD(1) = 74/92."""
    target, pred = _square_stack(4), _square_stack(6)
    dice, hd, nsd = _metrics(pred, target)
    assert hd[0] == pytest.approx(2.0)
    assert nsd[0] == pytest.approx(74 / 92)
    assert dice[0] == pytest.approx(2 * 4 / 12)  # 4 of 6 columns overlap
    assert nsd[1] == pytest.approx(1.0) and math.isnan(hd[1])  # class 2 in neither
    _, nsd_wide = _metrics(pred, target, tol=2.0)[1:]
    assert nsd_wide[0] == pytest.approx(1.0)  # every surface voxel within 2 pixels


# -- agreement with MONAI ------------------------------------------------------------------------


def _crafted_pair() -> tuple[np.ndarray, np.ndarray]:
    """A square and a shifted square (class 1) and a disc that is predicted too small and in
    only two of its three slices (class 2): a 3-slice stack, both classes present in both."""
    yy, xx = np.mgrid[:16, :16]
    target, pred = _square_stack(3, size=5), np.zeros((3, 16, 16), dtype=np.int64)
    pred[:, 5:10, 4:9] = 1
    target[:, (yy - 11) ** 2 + (xx - 11) ** 2 <= 9] = 2
    pred[:2][:, (yy - 11) ** 2 + (xx - 12) ** 2 <= 4] = 2
    return pred, target


def test_hd95_and_nsd_equal_monai_on_a_crafted_pair():
    pred, target = _crafted_pair()
    _, hd, nsd = _metrics(pred, target)
    hd_ref, nsd_ref = _monai(pred, target)
    assert np.isfinite(hd).all() and hd == pytest.approx(hd_ref)
    assert nsd == pytest.approx(nsd_ref)
    assert (hd > 0).all() and (nsd < 1).all()  # not a trivial agreement
    _, nsd2 = _metrics(pred, target, tol=2.0)[1:]
    assert nsd2 == pytest.approx(_monai(pred, target, tol=2.0)[1])
    assert (nsd2 >= nsd).all()


# -- absent classes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, dice, nsd",
    [("prediction only", 0.0, 0.0), ("ground truth only", 0.0, 0.0), ("neither", 1.0, 1.0)],
)
def test_absent_class_conventions(where, dice, nsd):
    """HD95 is NaN (never inf) when class 2 is missing from prediction or ground truth; NSD
    follows Dice: 1 when in neither (nothing to find, nothing found), 0 when in one only."""
    pred, target = _square_stack(6), _square_stack(4)
    if where == "prediction only":
        pred[1, 12:14, 12:14] = 2
    elif where == "ground truth only":
        target[1, 12:14, 12:14] = 2
    d, hd, n = _metrics(pred, target)
    assert d[1] == pytest.approx(dice)
    assert n[1] == pytest.approx(nsd)
    assert math.isnan(hd[1]) and not np.isinf(hd).any()
    assert hd[0] == pytest.approx(2.0) and n[0] == pytest.approx(74 / 92)  # class 1 unaffected


# -- evaluate_patients ---------------------------------------------------------------------------


class _LabelInChannel(torch.nn.Module):
    """One-hot logits of the label map carried in image channel 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(x[:, 0].long(), K).permute(0, 3, 1, 2).float()


def _fake_store(cases: dict[str, tuple[np.ndarray, np.ndarray]]) -> types.SimpleNamespace:
    """What evaluate_patients reads of a store; patient → (prediction, ground truth)."""

    def patient(pid: str) -> tuple[np.ndarray, np.ndarray]:
        pred, target = cases[pid]
        return pred[:, None].astype(np.float32), target

    return types.SimpleNamespace(
        label_names=["background", "square", "dot"], num_classes=K, patient=patient
    )


def test_evaluate_patients_rows_and_mean_row():
    pred, target = _square_stack(6), _square_stack(4)
    target[1, 12:14, 12:14] = 2  # "dot" missed by the prediction
    store = _fake_store({"shifted": (pred, target), "perfect": (target, target)})
    rows = evaluate_patients(_LabelInChannel(), store, ["shifted", "perfect"], nsd_tolerance=1.0)
    assert [(r["patient"], r["class_name"]) for r in rows] == [
        (p, c) for p in ("shifted", "perfect") for c in ("square", "dot", "mean")
    ]
    assert all(set(r) == {"patient", "class_name", *METRICS} for r in rows)
    by = {(r["patient"], r["class_name"]): r for r in rows}
    square, dot, mean = by["shifted", "square"], by["shifted", "dot"], by["shifted", "mean"]
    assert square["hd95"] == pytest.approx(2.0) and square["nsd"] == pytest.approx(74 / 92)
    assert math.isnan(dot["hd95"]) and dot["nsd"] == 0.0 and dot["dice"] == 0.0
    assert mean["hd95"] == pytest.approx(2.0)  # nan-mean: the undefined class is left out
    assert mean["nsd"] == pytest.approx((74 / 92 + 0.0) / 2)
    assert mean["dice"] == pytest.approx((square["dice"] + 0.0) / 2)
    for c in ("square", "dot", "mean"):
        perfect = by["perfect", c]
        assert perfect["dice"] == pytest.approx(1.0) and perfect["nsd"] == pytest.approx(1.0)
        assert perfect["hd95"] == pytest.approx(0.0)
    json.dumps(rows, allow_nan=True)  # plain floats; NaN at worst, never inf
    assert not any(math.isinf(r[m]) for r in rows for m in METRICS)


def test_evaluate_patients_mean_hd95_is_nan_when_no_class_defines_it():
    target = np.zeros((2, 16, 16), dtype=np.int64)
    target[:, 2:5, 2:5] = 1
    empty = np.zeros_like(target)
    rows = evaluate_patients(_LabelInChannel(), _fake_store({"p": (empty, target)}), ["p"])
    mean = rows[-1]
    assert mean["class_name"] == "mean" and math.isnan(mean["hd95"])
    assert mean["nsd"] == pytest.approx(0.5)  # square missed (0), dot in neither (1)


class _Lookup(torch.nn.Module):
    """A 'perfect' model for a real store: one-hot logits of each slice's true labels, looked
    up by the slice's image (every stored slice of the tiny store is distinct)."""

    def __init__(self, store) -> None:
        super().__init__()
        images, labels = store.arrays(store.patients)
        self.table = {img.tobytes(): lab for img, lab in zip(images, labels, strict=True)}
        self.k = store.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels = torch.stack([torch.from_numpy(self.table[s.numpy().tobytes()]) for s in x])
        return torch.nn.functional.one_hot(labels.long(), self.k).permute(0, 3, 1, 2).float()


def test_evaluate_patients_on_a_store_with_a_perfect_model(tiny_store):
    patients = tiny_store.patients[:2]
    rows = evaluate_patients(_Lookup(tiny_store), tiny_store, patients, nsd_tolerance=1.0)
    assert len(rows) == len(patients) * tiny_store.num_classes  # K-1 classes + "mean" each
    for r in rows:
        assert r["dice"] == pytest.approx(1.0) and r["nsd"] == pytest.approx(1.0)
        assert r["hd95"] == pytest.approx(0.0)  # every class is present in these cases
