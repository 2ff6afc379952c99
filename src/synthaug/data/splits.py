"""Patient-level k-fold splits: a patient's slices never straddle train, validation and test."""

from __future__ import annotations

import numpy as np

from synthaug.errors import SynthaugError


def kfold_splits(
    patient_ids: list[str], folds: int, seed: int, val_fraction: float = 0.2
) -> list[dict[str, list[str]]]:
    """Split patients into ``folds`` disjoint test sets; the rest of each fold is train + val.

    Returns one dict per fold with keys "train", "val", "test" (sorted patient ids). Every
    patient is in exactly one fold's test set. Validation patients (used for early stopping)
    are drawn from the non-test patients, at least one when ``val_fraction`` > 0.
    """
    n = len(patient_ids)
    if folds > n:
        raise SynthaugError(
            f"folds: {folds} folds need at least {folds} patients, the dataset has {n}"
        )
    rng = np.random.default_rng(seed)
    order = [patient_ids[i] for i in rng.permutation(n)]
    chunks = np.array_split(np.arange(n), folds)
    splits = []
    for f, chunk in enumerate(chunks):
        test = [order[i] for i in chunk]
        rest = [p for p in order if p not in set(test)]
        n_val = int(round(val_fraction * len(rest)))
        if val_fraction > 0:
            n_val = min(max(n_val, 1), len(rest) - 1)
        fold_rng = np.random.default_rng([seed, f])
        rest = [rest[i] for i in fold_rng.permutation(len(rest))]
        splits.append(
            {"train": sorted(rest[n_val:]), "val": sorted(rest[:n_val]), "test": sorted(test)}
        )
    return splits
