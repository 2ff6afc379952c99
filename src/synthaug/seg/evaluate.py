"""Segmentation evaluation on REAL patients: per-class Dice per patient (3-D) and per slice."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import DiceMetric

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


def slice_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> np.ndarray:
    """Mean over slices of 2-D Dice per foreground class → [K-1]; slices where the class is
    absent from the ground truth are left out (NaN when it is absent everywhere)."""
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    p = torch.nn.functional.one_hot(pred.long(), num_classes).permute(0, 3, 1, 2).float()
    t = torch.nn.functional.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).float()
    per_slice = metric(p, t).numpy()  # [N, K-1], NaN where the ground truth is empty
    with np.errstate(all="ignore"):
        return np.nanmean(per_slice, axis=0) if len(per_slice) else np.full(num_classes - 1, np.nan)


def evaluate_patients(
    model: torch.nn.Module,
    store: SliceStore,
    patients: list[str],
    device: str | torch.device = "cpu",
) -> list[dict]:
    """One row per (patient, class) with 3-D ``dice`` and ``slice_dice``, plus a class "mean"
    row (mean over foreground classes) per patient."""
    rows: list[dict] = []
    names = store.label_names[1:]
    for patient in patients:
        images, labels = store.patient(patient)
        pred = predict(model, images, device=device)
        target = torch.from_numpy(labels)
        dice = patient_dice(pred, target, store.num_classes)
        sdice = slice_dice(pred, target, store.num_classes)
        for name, d, s in zip(names, dice, sdice, strict=True):
            rows.append(
                {"patient": patient, "class_name": name, "dice": float(d), "slice_dice": float(s)}
            )
        with np.errstate(all="ignore"):
            rows.append(
                {
                    "patient": patient,
                    "class_name": "mean",
                    "dice": float(np.mean(dice)),
                    "slice_dice": float(np.nanmean(sdice))
                    if np.isfinite(sdice).any()
                    else float("nan"),
                }
            )
    return rows


def mean_foreground_dice(rows: list[dict]) -> float:
    """Mean over patients of the per-patient mean foreground Dice."""
    values = [r["dice"] for r in rows if r["class_name"] == "mean"]
    return float(np.mean(values)) if values else float("nan")
