"""Mask–image consistency: does a U-Net trained on REAL data find the synthetic mask in the
synthetic image?

For each synthetic pair (image, mask) the reference U-Net segments the image and the 2-D Dice
against the synthetic mask is computed per foreground class. A generator whose images follow
their masks scores close to the same U-Net's Dice on real validation slices (the ceiling,
reported alongside); images that ignore their masks score low.

Per-slice definition: the mean over the foreground classes present in the mask OR in the
prediction of 2|P∩T| / (|P| + |T|). A slice with no foreground in either mask or prediction has
nothing to agree on and is NaN by default (``empty``), i.e. left out of the mean — so a set of
empty masks with empty predictions does not look perfectly consistent.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from synthaug.errors import SynthaugError
from synthaug.quality.features import as_image_tensor
from synthaug.seg.evaluate import predict


def _check_pairs(images: torch.Tensor, masks: np.ndarray, num_classes: int) -> None:
    if masks.ndim != 3 or masks.shape[0] != images.shape[0] or masks.shape[1:] != images.shape[2:]:
        raise SynthaugError(
            f"consistency: masks {list(masks.shape)} do not match images {list(images.shape)} "
            "(need [N, H, W] for images [N, C, H, W])"
        )
    if masks.size and (masks.min() < 0 or masks.max() >= num_classes):
        raise SynthaugError(f"consistency: masks hold values outside 0..{num_classes - 1}")


def class_dice(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """2-D Dice per slice and foreground class → [N, K-1]; NaN where the class is absent from
    both prediction and target. pred, target: [N, H, W] ints in 0..K-1."""
    n = len(target)
    pred = pred.reshape(n, -1).astype(np.int64)
    target = target.reshape(n, -1).astype(np.int64)
    k = num_classes
    # One bincount gives every slice's confusion matrix [N, K(pred), K(target)].
    codes = (np.arange(n)[:, None] * k * k + pred * k + target).ravel()
    conf = np.bincount(codes, minlength=n * k * k).reshape(n, k, k)
    inter = np.diagonal(conf, axis1=1, axis2=2)[:, 1:].astype(np.float64)
    sizes = conf.sum(axis=2)[:, 1:] + conf.sum(axis=1)[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, 2.0 * inter / sizes, np.nan)


def consistency_class_dice(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    masks: np.ndarray | torch.Tensor,
    num_classes: int,
    batch: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Per-slice, per-foreground-class Dice of ``model``'s prediction against ``masks``.

    model: [N, C, H, W] → [N, K, H, W] logits (e.g. the study's real-only U-Net).
    images [N, C, H, W] in [-1, 1]; masks [N, H, W] in 0..K-1 → [N, K-1] (NaN: class in neither).
    """
    x = as_image_tensor(images, "consistency images")
    masks = np.asarray(masks.cpu() if isinstance(masks, torch.Tensor) else masks)
    _check_pairs(x, masks, num_classes)
    if len(x) == 0:
        raise SynthaugError("consistency: needs at least 1 image–mask pair, got 0")
    was_training = model.training
    pred = predict(model, x, batch=batch, device=device).numpy()
    model.train(was_training)
    return class_dice(pred, masks, num_classes)


def consistency_dice(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    masks: np.ndarray | torch.Tensor,
    num_classes: int,
    empty: float = float("nan"),
    batch: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Per-slice consistency Dice [N]: mean over the foreground classes present in the mask or
    the prediction; ``empty`` (default NaN: excluded from means) where neither has any."""
    per_class = consistency_class_dice(model, images, masks, num_classes, batch, device)
    present = np.isfinite(per_class).any(axis=1)
    out = np.full(len(per_class), empty, dtype=np.float64)
    out[present] = np.nanmean(per_class[present], axis=1)
    return out


def consistency(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    masks: np.ndarray | torch.Tensor,
    num_classes: int,
    batch: int = 64,
    device: str | torch.device = "cpu",
) -> float:
    """Mean per-slice consistency Dice over slices with any foreground (NaN if there are none)."""
    per_slice = consistency_dice(model, images, masks, num_classes, batch=batch, device=device)
    finite = per_slice[np.isfinite(per_slice)]
    return float(finite.mean()) if len(finite) else float("nan")


def summarise_consistency(per_class: np.ndarray, class_names: list[str]) -> dict:
    """{mean, slices, per_class: {name: mean Dice over slices where it is present}}."""
    present = np.isfinite(per_class).any(axis=1)
    per_slice = np.nanmean(per_class[present], axis=1) if present.any() else np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN class column → NaN
        class_means = np.nanmean(per_class, axis=0) if len(per_class) else np.zeros(0)
    return {
        "mean": float(per_slice.mean()) if len(per_slice) else float("nan"),
        "slices": int(present.sum()),
        "empty_slices": int((~present).sum()),
        "per_class": {
            name: float(v) for name, v in zip(class_names[1:], class_means, strict=False)
        },
    }
