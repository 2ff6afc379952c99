"""The slice store: a prepared dataset on disk, loaded into memory fast.

Layout of a store directory (written atomically by ``prepare``)::

    store.json    format version, provenance (source, options, synthaug version), modalities,
                  labels, per-patient slice ranges and metadata, patient-level folds
                  ("folds": repeats × folds_per_repeat splits, index r·k + f, each with its
                  "repeat" and "fold_in_repeat"; stores without "repeats" have one repeat)
    images.npy    [N, C, R, R] float16, intensities in [-1, 1]
    labels.npy    [N, R, R] uint8, values 0..K-1
    positions.npy [N] int32, each slice's index along the slicing axis of its RAS volume
    trainable.npy [N] bool, the slices training may use (drop_empty / drop_edge); every
                  slice of a patient is evaluated when the patient is a test patient

Slices of one patient are contiguous, in slicing-axis order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from synthaug.errors import StoreError

STORE_FORMAT = "synthaug-slice-store"
STORE_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no groups, no trainable mask (all slices trainable)
METADATA = "store.json"
ARRAYS = ("images.npy", "labels.npy", "positions.npy", "trainable.npy")


def class_frequencies(labels: np.ndarray, num_classes: int, chunk: int = 4096) -> np.ndarray:
    """Fraction of the pixels of equal-sized label slices [N, H, W] in each class → [K]
    (counted in chunks, so a memory-mapped store is never copied whole)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for start in range(0, len(labels), chunk):
        part = np.asarray(labels[start : start + chunk]).ravel()
        counts += np.bincount(part, minlength=num_classes)[:num_classes]
    return counts / max(1, counts.sum())


def _members(groups: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for case, group in groups.items():
        out.setdefault(group, []).append(case)
    return out


@dataclass(frozen=True)
class Split:
    """Patient ids of one fold (split index ``fold``; of repeat ``repeat`` in repeated k-fold)."""

    fold: int
    train: list[str]
    val: list[str]
    test: list[str]
    repeat: int = 0


class SliceStore:
    """Read access to a prepared dataset.

    >>> store = SliceStore("runs/demo/store")
    >>> images, labels = store.arrays(store.split(0).train)   # [N, C, R, R], [N, R, R]
    """

    def __init__(self, path: Path | str, mmap: bool = True) -> None:
        self.path = Path(path)
        meta_path = self.path / METADATA
        if not meta_path.is_file():
            raise StoreError(
                f"{self.path}: not a slice store (no {METADATA}); run `synthaug prepare`"
            )
        try:
            self.meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{meta_path}: corrupt store metadata ({exc.msg})") from exc
        version = self.meta.get("version")
        if self.meta.get("format") != STORE_FORMAT or version not in READABLE_VERSIONS:
            raise StoreError(f"{meta_path}: not a version-{STORE_VERSION} synthaug slice store")
        options = self.meta.get("options", {})
        if version == 1 and (options.get("drop_empty") or options.get("drop_edge")):
            raise StoreError(
                f"{self.path}: prepared by an older synthaug whose drop_empty/drop_edge removed "
                "slices from every patient, test patients included (their Dice would be "
                "inflated); prepare it again"
            )
        mode = "r" if mmap else None
        try:
            self.images = np.load(self.path / "images.npy", mmap_mode=mode)
            self.labels = np.load(self.path / "labels.npy", mmap_mode=mode)
            self.positions = np.load(self.path / "positions.npy", mmap_mode=mode)
            trainable = self.path / "trainable.npy"
            self.trainable = (
                np.load(trainable, mmap_mode=mode)
                if version >= 2
                else np.ones(self.meta["num_slices"], dtype=bool)
            )
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.path}: cannot read store arrays ({exc})") from exc
        n = self.meta["num_slices"]
        if len(self.images) != n or len(self.labels) != n:
            raise StoreError(
                f"{self.path}: arrays hold {len(self.images)} slices, metadata says {n}"
            )
        if "repeats" in self.meta and self.repeats * self.folds_per_repeat != self.num_folds:
            raise StoreError(
                f"{self.path}: corrupt store metadata: {self.repeats} repeats × "
                f"{self.folds_per_repeat} folds, but {self.num_folds} splits"
            )

    # -- what the dataset is -------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        return list(self.meta["modalities"])

    @property
    def label_names(self) -> list[str]:
        """Names of labels 0..K-1 (0 is background)."""
        return list(self.meta["labels"])

    @property
    def num_channels(self) -> int:
        return len(self.modalities)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    @property
    def name(self) -> str:
        return str(self.meta["source"]["name"])

    @property
    def cache_dir(self) -> Path:
        """Where models derived from this store (quality encoders, reference U-Nets) are
        cached; keyed by content, so a cache that outlives the data is never trusted."""
        return self.path / "cache"

    @cached_property
    def patients(self) -> list[str]:
        return [p["id"] for p in self.meta["patients"]]

    @cached_property
    def _ranges(self) -> dict[str, tuple[int, int]]:
        return {p["id"]: (p["start"], p["start"] + p["num_slices"]) for p in self.meta["patients"]}

    @property
    def num_folds(self) -> int:
        """All splits of the store: ``repeats × folds_per_repeat``."""
        return len(self.meta["folds"])

    @property
    def repeats(self) -> int:
        """How many times the k-fold split was repeated (1 for stores prepared without)."""
        return int(self.meta.get("repeats", 1))

    @property
    def folds_per_repeat(self) -> int:
        """k of the k-fold split; split index r·k + f is fold f of repeat r."""
        return int(self.meta.get("folds_per_repeat", self.num_folds))

    def split(self, fold: int) -> Split:
        if not 0 <= fold < self.num_folds:
            raise StoreError(
                f"{self.path}: fold {fold} does not exist (the store has folds 0..{self.num_folds - 1})"
            )
        f = self.meta["folds"][fold]
        repeat = int(f.get("repeat", fold // self.folds_per_repeat))
        return Split(fold, list(f["train"]), list(f["val"]), list(f["test"]), repeat)

    def training_patients(self, fold: int, count: int | None = None, seed: int = 0) -> list[str]:
        """Fold ``fold``'s training cases, or those of ``count`` of its training patients
        (patients, not cases: a patient's cases stay together) in the split's order. The
        patients come from one seeded permutation of the fold's, so the subsets of every
        count are nested (4 ⊂ 8 ⊂ all); validation and test patients are never touched."""
        train = self.split(fold).train
        if count is None:
            return train
        groups: list[str] = []
        for case in train:
            if self.groups[case] not in groups:
                groups.append(self.groups[case])
        if not 1 <= count <= len(groups):
            raise StoreError(
                f"{self.path}: fold {fold} has {len(groups)} training patients, so a subset of "
                f"{count} is impossible (choose 1..{len(groups)} or all)"
            )
        order = np.random.default_rng([seed, fold, 4391]).permutation(len(groups))
        chosen = {groups[i] for i in order[:count]}
        return [case for case in train if self.groups[case] in chosen]

    # -- data access ------------------------------------------------------------------------
    def slice_range(self, patient: str) -> tuple[int, int]:
        try:
            return self._ranges[patient]
        except KeyError:
            raise StoreError(f"{self.path}: no patient {patient!r}") from None

    def patient(self, patient: str) -> tuple[np.ndarray, np.ndarray]:
        """One patient's slices: images [S, C, R, R] float32, labels [S, R, R] int64."""
        a, b = self.slice_range(patient)
        return self.images[a:b].astype(np.float32), self.labels[a:b].astype(np.int64)

    def indices(self, patients: list[str]) -> np.ndarray:
        """Global slice indices of the given patients, in order."""
        parts = [np.arange(*self.slice_range(p)) for p in patients]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def arrays(self, patients: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """All slices of ``patients``: images [N, C, R, R] float32, labels [N, R, R] int64."""
        idx = self.indices(patients)
        return self.images[idx].astype(np.float32), self.labels[idx].astype(np.int64)

    def training_indices(self, patients: list[str]) -> np.ndarray:
        """Global indices of the slices of ``patients`` that training may use."""
        idx = self.indices(patients)
        return idx[np.asarray(self.trainable[idx], dtype=bool)]

    def training_arrays(self, patients: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The trainable slices of ``patients`` (``drop_empty``/``drop_edge`` applied): what
        generators, U-Nets and encoders learn from. Evaluation uses :meth:`patient`."""
        idx = self.training_indices(patients)
        return self.images[idx].astype(np.float32), self.labels[idx].astype(np.int64)

    def slice_counts(self, patients: list[str] | None = None) -> list[int]:
        patients = self.patients if patients is None else patients
        return [b - a for a, b in (self.slice_range(p) for p in patients)]

    def median_slices(self, patients: list[str] | None = None) -> int:
        """Median trainable slice count: the size of one synthetic 'patient'."""
        patients = self.patients if patients is None else patients
        counts = [len(self.training_indices([p])) for p in patients]
        return int(round(float(np.median(counts))))

    @cached_property
    def groups(self) -> dict[str, str]:
        """Each case's patient (its group); a case is its own patient unless grouped."""
        return {p["id"]: p.get("group", p["id"]) for p in self.meta["patients"]}

    @cached_property
    def fingerprint(self) -> str:
        """Identifies the store's content (channels, labels, grid, cases, slices, folds),
        wherever it lies: artifacts record it, and using one with another store is refused."""
        content = {
            k: self.meta.get(k) for k in ("modalities", "labels", "resolution", "num_slices")
        }
        # A split's repeat and fold_in_repeat follow from its index and the options (folds,
        # repeats): left out, with repeats = 1, so a one-repeat store keeps the fingerprint it
        # had before repeats existed.
        content["folds"] = [
            {k: v for k, v in f.items() if k not in ("repeat", "fold_in_repeat")}
            for f in self.meta.get("folds", [])
        ]
        content["patients"] = [(p["id"], p["num_slices"]) for p in self.meta["patients"]]
        content["options"] = {
            k: v
            for k, v in self.meta.get("options", {}).items()
            if k != "workers" and not (k == "repeats" and v == 1)
        }
        text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def label_frequencies(self, patients: list[str] | None = None) -> np.ndarray:
        """Fraction of pixels per class, [K]."""
        labels = self.labels if patients is None else self.labels[self.indices(patients)]
        return class_frequencies(labels, self.num_classes)

    def summary(self) -> dict:
        return {
            "path": str(self.path),
            "name": self.name,
            "patients": len(self.patients),
            "slices": int(self.meta["num_slices"]),
            "modalities": self.modalities,
            "labels": self.label_names,
            "resolution": self.resolution,
            "axis": self.meta["options"]["axis"],
            "folds": self.num_folds,
            "repeats": self.repeats,
            "folds_per_repeat": self.folds_per_repeat,
            "median_slices": self.median_slices(),
            "grouping": self.meta.get("grouping", "none (store prepared before grouping)"),
            "patient_groups": len(set(self.groups.values())),
            "grouped_cases": {g: ids for g, ids in _members(self.groups).items() if len(ids) > 1},
            "trainable_slices": int(np.asarray(self.trainable).sum()),
            "fingerprint": self.fingerprint,
            "label_frequencies": [round(float(f), 5) for f in self.label_frequencies()],
        }

    def __repr__(self) -> str:
        return (
            f"SliceStore({str(self.path)!r}, patients={len(self.patients)}, "
            f"slices={self.meta['num_slices']}, channels={self.modalities}, labels={self.label_names})"
        )
