"""Which store and fold an artifact belongs to, and the guard that refuses to mix them.

A generator, a synthetic set or a U-Net trained for fold f has seen fold f's training
patients — which are test patients of other folds. Using it with another fold (or another
store) would leak test patients into training or model selection, so every artifact records
``provenance(store, fold)`` and every place that takes one from the user checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError


def provenance(store: SliceStore, fold: int) -> dict:
    """What an artifact records: the store's path and content fingerprint, and the fold."""
    return {
        "store": str(store.path.resolve()),
        "store_fingerprint": store.fingerprint,
        "fold": fold,
    }


def trained_on(store: SliceStore, fold: int, patients: list[str]) -> dict:
    """What every generator family's run.json records about the data it learned from: the
    provenance, the store's channels, labels and resolution, the training patients, the
    slices per synthetic patient and the median pixel size."""
    ids = set(patients)
    pixel = [p.get("pixel_size_mm", 1.0) for p in store.meta["patients"] if p["id"] in ids]
    return {
        **provenance(store, fold),
        "store_name": store.name,
        "modalities": store.modalities,
        "labels": store.label_names,
        "resolution": store.resolution,
        "train_patients": list(patients),
        "median_slices": store.median_slices(patients),
        "pixel_size_mm": float(np.median(pixel)) if pixel else 1.0,
    }


def check_patients(
    artifact: Path | str, kind: str, recorded: list[str] | None, expected: list[str]
) -> None:
    """Refuse ``artifact`` unless it was made from exactly the real training patients
    ``expected`` (a subset level of a study): a generator trained on more patients than the
    U-Net it feeds would hand it those patients through its samples. ``recorded`` None: an
    artifact from before training patients were recorded (whole folds only), not checked."""
    if recorded is None:
        return
    if sorted(recorded) != sorted(expected):
        extra = sorted(set(recorded) - set(expected))
        raise SynthaugError(
            f"{artifact}: this {kind} was made from {len(recorded)} real training patients, "
            f"not the {len(expected)} it is used with"
            + (
                f" (it saw {', '.join(extra[:5])}{' …' if len(extra) > 5 else ''} too)"
                if extra
                else ""
            )
            + "; use one trained on the same real-patients level"
        )


def _describe(recorded: Mapping) -> str:
    fp = recorded.get("store_fingerprint") or "unrecorded"
    return f"fold {recorded.get('fold')} of store {recorded.get('store')} (fingerprint {fp})"


def check_provenance(
    artifact: Path | str, kind: str, recorded: Mapping | None, store: SliceStore, fold: int
) -> None:
    """Refuse ``artifact`` (a ``kind`` such as "U-Net") unless it belongs to ``fold`` of
    ``store``. Artifacts that record no fingerprint (older ones) are checked by fold and path."""
    if not recorded or "fold" not in recorded:
        raise SynthaugError(
            f"{artifact}: this {kind} records no store and fold it belongs to, so it cannot be "
            f"checked against fold {fold} of {store.path}; use one made by synthaug for them"
        )
    expected = provenance(store, fold)
    fingerprint = recorded.get("store_fingerprint")
    same_store = (
        fingerprint == expected["store_fingerprint"]
        if fingerprint
        else Path(str(recorded.get("store"))).resolve() == Path(expected["store"])
    )
    if int(recorded["fold"]) != fold or not same_store:
        raise SynthaugError(
            f"{artifact}: this {kind} belongs to {_describe(recorded)}, not to "
            f"{_describe(expected)}; a {kind} of another fold or store has seen this fold's "
            "test patients"
        )
