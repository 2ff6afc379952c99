"""The ``prepare`` stage: dataset folder → slice store (atomic, with provenance)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from synthaug import __version__
from synthaug.atomic import atomic_dir, write_json
from synthaug.data.formats import CaseSpec, DatasetSpec, load_dataset
from synthaug.data.options import PrepareOptions
from synthaug.data.preprocess import PreparedCase, methods_for, prepare_case
from synthaug.data.splits import patient_groups, repeated_kfold_splits
from synthaug.data.store import METADATA, STORE_FORMAT, STORE_VERSION, SliceStore
from synthaug.errors import StoreError, SynthaugError
from synthaug.progress import track


def _prepare_one(args: tuple[CaseSpec, list[str], list[int], PrepareOptions]) -> PreparedCase:
    # One-thread workers: two single-threaded processes outrun one two-threaded one here.
    return prepare_case(*args)


def _prepared_cases(spec: DatasetSpec, opts: PrepareOptions) -> Iterator[PreparedCase]:
    declared = sorted(spec.labels)
    jobs = [(case, spec.modalities, declared, opts) for case in spec.cases]
    workers = min(opts.workers, len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        yield from map(_prepare_one, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_prepare_one, jobs)


def prepare(
    dataset: Path | str | DatasetSpec,
    out: Path | str,
    options: PrepareOptions | None = None,
    overwrite: bool = False,
) -> SliceStore:
    """Prepare a dataset into a slice store at ``out`` and return it.

    Nothing appears at ``out`` unless every case succeeds; an existing store there is
    replaced only with ``overwrite`` and only once the new one is complete.
    """
    opts = (options or PrepareOptions()).validate()
    spec = dataset if isinstance(dataset, DatasetSpec) else load_dataset(dataset, opts.layout)
    out = Path(out)
    if out.exists() and not overwrite:
        raise StoreError(f"{out}: already exists; pass --overwrite to replace it")
    groups, grouping = patient_groups([c.case_id for c in spec.cases], opts.group)
    n_groups = len(set(groups.values()))
    if opts.folds > n_groups:
        what = "patients" if n_groups == len(spec.cases) else "patient groups"
        raise SynthaugError(
            f"folds: {opts.folds} folds need at least {opts.folds} {what}, "
            f"{spec.root} has {n_groups}"
        )
    methods_for(spec.modalities, opts.normalization)  # fail before reading any image

    images, labels, positions, trainable, patients = [], [], [], [], []
    start = 0
    for case in track(_prepared_cases(spec, opts), "prepare", total=len(spec.cases)):
        images.append(case.images)
        labels.append(case.labels)
        positions.append(case.slice_positions)
        trainable.append(case.trainable)
        patients.append({**case.meta, "group": groups[case.case_id], "start": start})
        start += case.images.shape[0]

    ids = [p["id"] for p in patients]
    if len(set(ids)) != len(ids):
        raise SynthaugError(
            f"{spec.root}: duplicate case ids {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    # Repeat 0 is the plain seeded k-fold split; repeats r > 0 are further k-fold splits
    # drawn from (seed, r): split index r·folds + f.
    folds = repeated_kfold_splits(
        ids, opts.folds, opts.repeats, opts.seed, opts.val_fraction, groups
    )
    declared = sorted(spec.labels)
    meta = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "synthaug_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": {
            "path": str(spec.root.resolve()),
            "layout": spec.layout,
            "name": spec.name,
            "description": spec.description,
        },
        "options": opts.to_dict(),
        "modalities": spec.modalities,
        "labels": [spec.labels[v] for v in declared],
        "source_label_values": declared,
        "resolution": opts.resolution,
        "num_slices": start,
        "grouping": grouping,
        "patients": patients,
        "repeats": opts.repeats,
        "folds_per_repeat": opts.folds,
        "folds": folds,
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        np.save(tmp / "images.npy", np.concatenate(images))
        np.save(tmp / "labels.npy", np.concatenate(labels))
        np.save(tmp / "positions.npy", np.concatenate(positions))
        np.save(tmp / "trainable.npy", np.concatenate(trainable))
        write_json(tmp / METADATA, meta)  # last: its presence marks a complete store
    return SliceStore(out)


def prepare_like(
    dataset: Path | str, store: SliceStore, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Slices of a dataset in any layout ``prepare`` reads (another tool's synthetic data,
    say), prepared with ``store``'s recorded options so they compare with its slices: images
    [N, C, R, R] float32, labels [N, R, R] int64 of the first ``limit`` cases. Its channels
    and label names must be the store's; nothing is written."""
    recorded = dict(store.meta.get("options", {}))
    known = set(PrepareOptions.__dataclass_fields__)
    opts = PrepareOptions(**{k: v for k, v in recorded.items() if k in known})
    opts.workers, opts.group = 1, "none"
    spec = load_dataset(dataset, "auto")
    if spec.modalities != store.modalities:
        raise SynthaugError(
            f"{dataset}: modality channels {spec.modalities} differ from the store's "
            f"{store.modalities}"
        )
    names = [spec.labels[v] for v in sorted(spec.labels)]
    if names != store.label_names:
        raise SynthaugError(
            f"{dataset}: labels {names} differ from the store's {store.label_names}"
        )
    cases = spec.cases if limit is None else spec.cases[:limit]
    sub = dataclasses.replace(spec, cases=cases)
    prepared = list(_prepared_cases(sub, opts))
    images = np.concatenate([c.images for c in prepared]).astype(np.float32)
    labels = np.concatenate([c.labels for c in prepared]).astype(np.int64)
    return images, labels
