"""The ``prepare`` stage: dataset folder → slice store (atomic, with provenance)."""

from __future__ import annotations

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
from synthaug.data.splits import kfold_splits
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
    if opts.folds > len(spec.cases):
        raise SynthaugError(
            f"folds: {opts.folds} folds need at least {opts.folds} patients, "
            f"{spec.root} has {len(spec.cases)}"
        )
    methods_for(spec.modalities, opts.normalization)  # fail before reading any image

    images, labels, positions, patients = [], [], [], []
    start = 0
    for case in track(_prepared_cases(spec, opts), "prepare", total=len(spec.cases)):
        images.append(case.images)
        labels.append(case.labels)
        positions.append(case.slice_positions)
        patients.append({**case.meta, "start": start})
        start += case.images.shape[0]

    ids = [p["id"] for p in patients]
    if len(set(ids)) != len(ids):
        raise SynthaugError(
            f"{spec.root}: duplicate case ids {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    folds = kfold_splits(ids, opts.folds, opts.seed, opts.val_fraction)
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
        "patients": patients,
        "folds": [{"fold": f, **s} for f, s in enumerate(folds)],
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        np.save(tmp / "images.npy", np.concatenate(images))
        np.save(tmp / "labels.npy", np.concatenate(labels))
        np.save(tmp / "positions.npy", np.concatenate(positions))
        write_json(tmp / METADATA, meta)  # last: its presence marks a complete store
    return SliceStore(out)
