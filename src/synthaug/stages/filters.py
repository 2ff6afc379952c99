"""Pair filters for ``generate``: keep a generated pair only when a real-only U-Net finds its
mask in its image (``synthaug.generator.PairFilter``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.quality.consistency import consistency_dice
from synthaug.seg.reference import load_checked_unet, train_reference_unet


class ConsistencyFilter:
    """Keeps a pair when its per-slice consistency Dice (mean over the foreground classes in
    either mask or prediction) is at least ``threshold``. Slices with no foreground in mask nor
    prediction have nothing to disagree on and are kept."""

    def __init__(
        self, model: nn.Module, threshold: float, num_classes: int, unet: str = "given model"
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise SynthaugError(f"filter: threshold must be in [0, 1], got {threshold}")
        self.model = model.eval()
        self.threshold = threshold
        self.num_classes = num_classes
        self.label = f"consistency>={threshold:g}"
        self.unet = unet  # which U-Net filters: the report names it beside the judge

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        dice = consistency_dice(self.model, images, masks, self.num_classes)
        return ~(dice < self.threshold)  # NaN (nothing to agree on) is kept

    def describe(self) -> dict:
        return {"metric": "consistency", "threshold": self.threshold, "unet": self.unet}


def consistency_filter(
    store: SliceStore,
    fold: int,
    threshold: float,
    reference_unet: Path | str | None = None,
    unet_preset: str = "cpu-tiny",
) -> ConsistencyFilter:
    """A :class:`ConsistencyFilter` for a fold: the given real-only U-Net weights (``model.pt``
    of a real-only ``train-seg`` run with ``unet_preset``), else one trained on the fold's real
    training patients and cached in the store's cache folder."""
    if reference_unet is not None:
        model = load_checked_unet(reference_unet, store, fold, unet_preset)
        unet = str(Path(reference_unet).resolve())
    else:
        model = train_reference_unet(store, fold, store.cache_dir, unet_preset)
        unet = f"cached real-only U-Net of fold {fold} (seed 0, {unet_preset})"
    return ConsistencyFilter(model, threshold, store.num_classes, unet)
