"""Segmentation evaluation on REAL patients: per-class Dice per patient (3-D) and per slice,
95th-percentile Hausdorff distance and normalised surface Dice (3-D).

Distances are in pixels of the stored (resampled) slices, not millimetres: the surface metrics
treat a patient's stacked slices as one volume with unit spacing, so one step between
neighbouring slices also counts as 1 whatever the slice thickness.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from monai.metrics import DiceMetric, compute_hausdorff_distance, compute_surface_dice

from synthaug.data.store import SliceStore


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    batch: int = 64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Labels [N, H, W] (argmax) for images [N, C, H, W] in [-1, 1]."""
    model.eval()
    x = torch.as_tensor(images, dtype=torch.float32)
    out = [model(x[i : i + batch].to(device)).argmax(dim=1).cpu() for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.zeros((0, *x.shape[2:]), dtype=torch.long)


def _onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[N, H, W] → [1, K, N, H, W]: the patient's stacked slices as one 3-D volume."""
    return (
        torch.nn.functional.one_hot(labels.long(), num_classes)
        .permute(3, 0, 1, 2)
        .unsqueeze(0)
        .float()
    )


def patient_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> np.ndarray:
    """3-D Dice of each foreground class over a patient's stacked slices → [K-1].

    A class absent from both prediction and ground truth scores 1 (nothing to find, nothing
    found); absent from the ground truth but predicted scores 0.
    """
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=False)
    return metric(_onehot(pred, num_classes), _onehot(target, num_classes))[0].numpy()


@contextmanager
def _quiet_monai() -> Iterator[None]:
    """Hide MONAI's per-call warnings about empty classes (handled here by convention) and
    its own deprecated internal argument."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*may result in nan/inf distance")
        warnings.filterwarnings(
            "ignore", message=".*always_return_as_numpy", category=FutureWarning
        )
        yield


def _present(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """[K-1] bool: which foreground classes occur anywhere in ``labels``."""
    counts = torch.bincount(labels.reshape(-1).long(), minlength=num_classes)
    return (counts[1:] > 0).numpy()


def patient_hd95(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> np.ndarray:
    """3-D 95th-percentile Hausdorff distance (symmetric, between the class surfaces) of each
    foreground class over a patient's stacked slices → [K-1], in pixels (unit spacing).

    NaN where the class is absent from the prediction or the ground truth (undefined there;
    MONAI's inf/NaN are normalised to NaN, never inf). 0 for identical masks.
    """
    with _quiet_monai():
        hd = compute_hausdorff_distance(
            _onehot(pred, num_classes),
            _onehot(target, num_classes),
            include_background=False,
            percentile=95,
        )[0].numpy()
    both = _present(pred, num_classes) & _present(target, num_classes)
    return np.where(both & np.isfinite(hd), hd, np.nan).astype(np.float64)


def patient_nsd(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, tolerance: float = 1.0
) -> np.ndarray:
    """3-D normalised surface Dice of each foreground class over a patient's stacked slices at
    ``tolerance`` pixels → [K-1] in [0, 1]: the share of both surfaces lying within
    ``tolerance`` of the other.

    Same convention as :func:`patient_dice`: a class absent from both prediction and ground
    truth scores 1; absent from only one of them scores 0 (MONAI gives NaN and 0).
    """
    with _quiet_monai():
        nsd = compute_surface_dice(
            _onehot(pred, num_classes),
            _onehot(target, num_classes),
            class_thresholds=[float(tolerance)] * (num_classes - 1),
            include_background=False,
        )[0].numpy()
    in_pred, in_target = _present(pred, num_classes), _present(target, num_classes)
    nsd = np.where(in_pred & in_target, nsd, 0.0)
    return np.where(~in_pred & ~in_target, 1.0, nsd).astype(np.float64)


def _nanmean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (no warning) when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def slice_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> np.ndarray:
    """Mean over slices of 2-D Dice per foreground class → [K-1]; slices where the class is
    absent from the ground truth are left out (NaN when it is absent everywhere)."""
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    p = torch.nn.functional.one_hot(pred.long(), num_classes).permute(0, 3, 1, 2).float()
    t = torch.nn.functional.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).float()
    per_slice = metric(p, t).numpy()  # [N, K-1], NaN where the ground truth is empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN class column → NaN
        return np.nanmean(per_slice, axis=0) if len(per_slice) else np.full(num_classes - 1, np.nan)


METRICS = ("dice", "slice_dice", "hd95", "nsd")


def patient_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    nsd_tolerance: float = 1.0,
    surface: bool = True,
) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` for one patient's stacked slices: name → [K-1];
    without ``surface`` only the Dice scores (validation during training needs no more)."""
    metrics = {
        "dice": patient_dice(pred, target, num_classes),
        "slice_dice": slice_dice(pred, target, num_classes),
    }
    if surface:
        metrics["hd95"] = patient_hd95(pred, target, num_classes)
        metrics["nsd"] = patient_nsd(pred, target, num_classes, nsd_tolerance)
    return metrics


def evaluate_patients(
    model: torch.nn.Module,
    store: SliceStore,
    patients: list[str],
    device: str | torch.device = "cpu",
    nsd_tolerance: float = 1.0,
    surface: bool = True,
) -> list[dict]:
    """One row per (patient, class) with the metrics of :data:`METRICS` (Dice only without
    ``surface``), plus a class "mean"
    row per patient (the mean over foreground classes of each).

    dice: 3-D Dice over the patient's stacked slices (absent from both → 1, from one → 0).
    slice_dice: mean 2-D Dice over the slices where the class is in the ground truth (NaN when
    it is in none). hd95: 3-D 95th-percentile Hausdorff distance in pixels of the stored
    (resampled) slices, one slice step counting 1 — NaN when the class is absent from the
    prediction or the ground truth, never inf. nsd: 3-D normalised surface Dice at
    ``nsd_tolerance`` pixels, with Dice's convention (absent from both → 1, from one → 0).
    The "mean" row averages the finite values (slice_dice and hd95 skip NaN; NaN when none).
    """
    rows: list[dict] = []
    names = store.label_names[1:]
    for patient in patients:
        images, labels = store.patient(patient)
        pred = predict(model, images, device=device)
        target = torch.from_numpy(labels)
        metrics = patient_metrics(pred, target, store.num_classes, nsd_tolerance, surface)
        for c, name in enumerate(names):
            rows.append(
                {"patient": patient, "class_name": name}
                | {m: float(v[c]) for m, v in metrics.items()}
            )
        rows.append(
            {"patient": patient, "class_name": "mean"}
            | {m: _nanmean(v) for m, v in metrics.items()}
        )
    return rows


def mean_foreground_dice(rows: list[dict]) -> float:
    """Mean over patients of the per-patient mean foreground Dice."""
    values = [r["dice"] for r in rows if r["class_name"] == "mean"]
    return float(np.mean(values)) if values else float("nan")
