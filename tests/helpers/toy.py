"""A toy slice store for GAN tests: shapes whose intensity depends on their label.

32×32 slices, two channels, labels 0 background, 1 disc, 2 square. Channel 0 is bright in
discs and dim in squares, channel 1 the reverse, so a conditional generator that follows its
mask shows it in per-class mean intensities.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

RES = 32
CLASS_MEANS = np.array([[-0.8, -0.8], [0.6, -0.3], [-0.2, 0.7]], dtype=np.float32)  # [K, C]


def toy_slice(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """images [C, R, R] in [-1, 1], labels [R, R]."""
    yy, xx = np.mgrid[:RES, :RES]
    label = np.zeros((RES, RES), np.uint8)
    cy, cx, r = rng.uniform(9, 23), rng.uniform(9, 23), rng.uniform(4, 8)
    label[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = 1
    sy, sx, s = int(rng.integers(2, 22)), int(rng.integers(2, 22)), int(rng.integers(4, 9))
    label[sy : sy + s, sx : sx + s] = 2
    images = CLASS_MEANS[label].transpose(2, 0, 1) + rng.normal(0, 0.05, (2, RES, RES))
    return np.clip(images, -1, 1).astype(np.float32), label


def write_toy_msd(root: Path, patients: int = 10, slices: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    training = []
    for p in range(patients):
        pairs = [toy_slice(rng) for _ in range(slices)]
        img = np.stack([im for im, _ in pairs], axis=-1).transpose(2, 1, 3, 0)[
            :, ::-1
        ]  # [X, Y, Z, C]
        lab = np.stack([lb for _, lb in pairs], axis=-1).transpose(1, 0, 2)[:, ::-1]
        name = f"toy_{p:03d}.nii.gz"
        nib.save(
            nib.Nifti1Image(np.ascontiguousarray(img), np.eye(4)), str(root / "imagesTr" / name)
        )
        nib.save(
            nib.Nifti1Image(np.ascontiguousarray(lab), np.eye(4)), str(root / "labelsTr" / name)
        )
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "toy",
        "modality": {"0": "A", "1": "B"},
        "labels": {"0": "background", "1": "disc", "2": "square"},
        "training": training,
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def make_toy_store(
    tmp: Path, patients: int = 10, slices: int = 6, folds: int = 2, resolution: int = RES
):
    """The toy dataset prepared as a store (``resolution``: resampled from the 32×32 slices)."""
    from synthaug.data import prepare
    from synthaug.data.options import PrepareOptions

    ds = write_toy_msd(tmp / "toy_ds", patients, slices)
    opts = PrepareOptions(
        resolution=resolution, folds=folds, normalization=["none"], crop="none", workers=1
    )
    return prepare(ds, tmp / "toy_store", opts)
