"""Patient-level k-fold splits: a patient's slices never straddle train, validation and test.

The split unit is the *patient group*: cases of one patient (ACDC's end-diastolic and
end-systolic frames, longitudinal time points, left and right organs) always land on the
same side, so no patient is trained on in one role and tested on in another.
"""

from __future__ import annotations

import re

import numpy as np

from synthaug.errors import SynthaugError

# Known naming schemes whose case ids carry a patient and a second index: the first capture
# group is the patient. ACDC: patient001_frame01 / patient001_frame12. BraTS 2023+ (and its
# longitudinal releases): BraTS-GLI-00001-000 / BraTS-GLI-00001-001, the last field the
# time point.
KNOWN_GROUPINGS: dict[str, str] = {
    "ACDC frames": r"^(patient\d+)_frame\d+$",
    "BraTS time points": r"^(BraTS-[A-Za-z]+-\d+)-\d+$",
}


def _compile(pattern: str) -> re.Pattern:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise SynthaugError(f"group: {pattern!r} is not a regular expression ({exc})") from None
    if compiled.groups < 1:
        raise SynthaugError(f"group: {pattern!r} needs a capture group: (…) marks the patient")
    return compiled


def patient_groups(case_ids: list[str], group: str = "auto") -> tuple[dict[str, str], str]:
    """Each case's patient and how it was found: ``group`` is "none" (every case its own
    patient), "auto" (the first known naming scheme all case ids follow, else none) or a
    regular expression whose first capture group is the patient (every id must match)."""
    if group == "none":
        return {c: c for c in case_ids}, "none"
    if group == "auto":
        for name, pattern in KNOWN_GROUPINGS.items():
            compiled = re.compile(pattern)
            if case_ids and all(compiled.match(c) for c in case_ids):
                return {c: compiled.match(c).group(1) for c in case_ids}, f"auto: {name}"
        return {c: c for c in case_ids}, "auto: none (each case is its own patient)"
    compiled = _compile(group)
    unmatched = [c for c in case_ids if not compiled.search(c)]
    if unmatched:
        raise SynthaugError(
            f"group: {group!r} does not match case id(s) {unmatched[:3]}"
            + (f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else "")
        )
    return {c: compiled.search(c).group(1) for c in case_ids}, f"regex {group}"


# Mixed into the entropy of repeats r > 0, so that their permutations share no seed sequence
# with repeat 0's ([seed] for the assignment, [seed, f] for fold f's validation draw).
_REPEAT_KEY = 0x5245_5045  # "REPE"


def _rngs(seed: int, repeat: int) -> tuple[np.random.Generator, list[int]]:
    """The assignment generator of a repeat and the entropy prefix of its folds' draws."""
    if repeat == 0:  # the plain k-fold split: stores prepared before repeats keep their folds
        return np.random.default_rng(seed), [seed]
    prefix = [seed, _REPEAT_KEY, repeat]
    return np.random.default_rng(prefix), prefix


def kfold_splits(
    patient_ids: list[str],
    folds: int,
    seed: int,
    val_fraction: float = 0.2,
    groups: dict[str, str] | None = None,
    repeat: int = 0,
) -> list[dict[str, list[str]]]:
    """Split cases into ``folds`` disjoint test sets by patient group; the rest of each fold is
    train + val.

    Returns one dict per fold with keys "train", "val", "test" (sorted case ids). Every case
    is in exactly one fold's test set, and all cases of a group share their role in every
    fold. Validation groups (used for early stopping) are drawn from the non-test groups, at
    least one when ``val_fraction`` > 0. Without ``groups`` (or when each case is its own
    group) the splits are those of case-level splitting. ``repeat`` r > 0 gives another
    seeded k-fold split of the same cases (repeated k-fold cross-validation), drawn from
    (``seed``, r); repeat 0 is the split of ``seed`` alone.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise SynthaugError(f"repeats: repeat index must be 0 or more, got {repeat!r}")
    groups = groups or {p: p for p in patient_ids}
    units = list(dict.fromkeys(groups[p] for p in patient_ids))  # first-seen order
    members: dict[str, list[str]] = {u: [] for u in units}
    for p in patient_ids:
        members[groups[p]].append(p)
    n = len(units)
    if folds > n:
        what = "patients" if n == len(patient_ids) else "patient groups"
        raise SynthaugError(
            f"folds: {folds} folds need at least {folds} {what}, the dataset has {n}"
        )
    rng, entropy = _rngs(seed, repeat)
    order = [units[i] for i in rng.permutation(n)]
    chunks = np.array_split(np.arange(n), folds)
    splits = []
    for f, chunk in enumerate(chunks):
        test = [order[i] for i in chunk]
        rest = [u for u in order if u not in set(test)]
        n_val = int(round(val_fraction * len(rest)))
        if val_fraction > 0:
            n_val = min(max(n_val, 1), len(rest) - 1)
        fold_rng = np.random.default_rng([*entropy, f])
        rest = [rest[i] for i in fold_rng.permutation(len(rest))]

        def cases(chosen: list[str]) -> list[str]:
            return sorted(c for u in chosen for c in members[u])

        splits.append(
            {"train": cases(rest[n_val:]), "val": cases(rest[:n_val]), "test": cases(test)}
        )
    return splits


def repeated_kfold_splits(
    patient_ids: list[str],
    folds: int,
    repeats: int,
    seed: int,
    val_fraction: float = 0.2,
    groups: dict[str, str] | None = None,
) -> list[dict]:
    """``repeats`` k-fold splits of the same cases, flattened: split i = r·folds + f, each
    ``{"fold": i, "repeat": r, "fold_in_repeat": f, "train", "val", "test"}``. Each repeat on
    its own is a partition of the patient groups; repeat 0 is ``kfold_splits(…, seed, …)``."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SynthaugError(f"repeats: need a whole number of at least 1, got {repeats!r}")
    out = []
    for r in range(repeats):
        for f, split in enumerate(kfold_splits(patient_ids, folds, seed, val_fraction, groups, r)):
            out.append({"fold": r * folds + f, "repeat": r, "fold_in_repeat": f, **split})
    return out
