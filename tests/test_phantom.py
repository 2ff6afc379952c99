"""The embedded semi-synthetic phantom: deterministic, per-patient seeded, both tasks' labels
present, three contrasts, varied lesions, and it goes through prepare like real data."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from synthaug.data import load_dataset, make_phantom, prepare
from synthaug.data.options import PrepareOptions
from synthaug.data.phantom import MODALITIES, TASKS, dataset_json, make_patient
from synthaug.errors import SynthaugError
from tests.helpers.data import leftovers


def _read(root: Path, case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = nib.load(str(root / "imagesTr" / f"{case}.nii.gz"))
    lab = nib.load(str(root / "labelsTr" / f"{case}.nii.gz"))
    return np.asanyarray(img.dataobj), np.asanyarray(lab.dataobj), img.affine


@pytest.fixture(scope="module")
def tissue3(tmp_path_factory) -> Path:
    return make_phantom(
        tmp_path_factory.mktemp("ph") / "tissue3", patients=3, task="tissue", seed=0, workers=2
    )


@pytest.fixture(scope="module")
def tissue2(tmp_path_factory) -> Path:
    return make_phantom(
        tmp_path_factory.mktemp("ph") / "tissue2", patients=2, task="tissue", seed=0, workers=2
    )


@pytest.fixture(scope="module")
def lesion_patient() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return make_patient(0, 0, "lesion")


def test_phantom_files_and_dataset_json(tissue3):
    meta = json.loads((tissue3 / "dataset.json").read_text())
    assert meta["semi_synthetic"] is True
    assert "SEMI-SYNTHETIC" in meta["description"]
    assert meta["modality"] == {"0": "T1", "1": "T2", "2": "FLAIR"}
    assert meta["labels"] == {str(k): v for k, v in TASKS["tissue"].items()}
    assert meta["numTraining"] == 3
    assert [e["image"] for e in meta["training"]] == [
        f"./imagesTr/phantom_{i:03d}.nii.gz" for i in range(3)
    ]
    assert leftovers(tissue3) == []
    image, label, affine = _read(tissue3, "phantom_000")
    assert image.ndim == 4 and image.shape[3] == 3
    assert image.shape[:3] == label.shape
    assert image.dtype == np.int16 and label.dtype == np.uint8
    assert image.min() >= 0 and 200 < image.max() < 32767
    np.testing.assert_allclose(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)), 2.0)


def test_phantom_is_an_msd_dataset(tissue3):
    spec = load_dataset(tissue3)
    assert spec.layout == "msd"
    assert spec.modalities == list(MODALITIES)
    assert spec.labels == TASKS["tissue"]
    assert [c.case_id for c in spec.cases] == ["phantom_000", "phantom_001", "phantom_002"]


def test_same_seed_same_patients_whatever_the_count(tissue3, tissue2):
    for i in range(2):
        a = _read(tissue3, f"phantom_{i:03d}")
        b = _read(tissue2, f"phantom_{i:03d}")
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_patients_differ_from_each_other(tissue3):
    img0, lab0, _ = _read(tissue3, "phantom_000")
    img1, lab1, _ = _read(tissue3, "phantom_001")
    assert not np.array_equal(img0, img1)
    assert not np.array_equal(lab0, lab1)


def test_other_seed_gives_other_patient(tissue3):
    image, label, affine = make_patient(1, 0, "tissue")
    ref_image, ref_label, ref_affine = _read(tissue3, "phantom_000")
    assert image.shape == ref_image.shape
    np.testing.assert_allclose(affine, ref_affine)  # same anatomy grid
    assert not np.array_equal(image, ref_image)
    assert not np.array_equal(label, ref_label)
    # a deformed anatomy, not a different one: the brain masks still overlap strongly
    a, b = label > 0, ref_label > 0
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.8


def test_tissue_labels_present(tissue3):
    for i in range(3):
        _, label, _ = _read(tissue3, f"phantom_{i:03d}")
        values = set(np.unique(label).tolist())
        assert {0, 1, 2, 3} <= values <= {0, 1, 2, 3, 4}
        assert 4 in values, f"patient {i} has no lesion"


def test_lesion_task(lesion_patient):
    meta = dataset_json("lesion", ["phantom_000"], 0)
    assert meta["labels"] == {"0": "background", "1": "lesion core", "2": "oedema"}
    assert meta["name"] == "phantom-lesion" and meta["semi_synthetic"] is True
    image, label, _ = lesion_patient
    assert image.shape[3] == 3
    assert set(np.unique(label).tolist()) == {0, 1, 2}
    # oedema is a shell around the core: it touches the core and is not much smaller
    core, oedema = label == 1, label == 2
    assert oedema.sum() > 0.2 * core.sum()
    assert (ndimage.binary_dilation(core, iterations=2) & oedema).any()
    # lesions lie inside the brain (where the contrasts are non-zero)
    assert np.all(image[core | oedema].max(axis=-1) > 0)


def test_lesions_differ_between_patients(tissue3):
    centroids, sizes = [], []
    for i in range(3):
        _, label, _ = _read(tissue3, f"phantom_{i:03d}")
        lesion = np.argwhere(label == 4)
        centroids.append(lesion.mean(axis=0))
        sizes.append(len(lesion))
    for i in range(3):
        for j in range(i + 1, 3):
            moved = np.linalg.norm(centroids[i] - centroids[j])
            assert moved > 2.0 or abs(sizes[i] - sizes[j]) > 0.2 * max(sizes[i], sizes[j]), (i, j)


def test_contrasts_follow_tissue_ordering(tissue3):
    image, label, _ = _read(tissue3, "phantom_001")
    mean = {k: image[label == k].mean(axis=0) for k in range(5)}  # [3] per tissue
    t1, t2, flair = 0, 1, 2
    assert mean[3][t1] > mean[2][t1] > mean[1][t1]  # T1: WM > GM > CSF
    assert mean[1][t2] > mean[2][t2] > mean[3][t2]  # T2: CSF > GM > WM
    assert (
        mean[4][flair] > mean[3][flair] and mean[4][flair] > mean[1][flair]
    )  # FLAIR: lesion bright
    assert np.all(mean[0] < 0.1 * np.maximum(mean[3], mean[1]))  # background dark


def test_phantom_prepares_into_a_three_channel_store(tissue3, tmp_path):
    store = prepare(tissue3, tmp_path / "store", PrepareOptions(resolution=32, folds=3, workers=1))
    assert store.modalities == ["T1", "T2", "FLAIR"]
    assert store.num_channels == 3
    assert store.label_names == ["background", "CSF", "grey matter", "white matter", "lesion"]
    assert store.images.shape[1:] == (3, 32, 32)
    assert set(np.unique(store.labels).tolist()) == {0, 1, 2, 3, 4}
    assert store.patients == ["phantom_000", "phantom_001", "phantom_002"]
    assert sorted(p for f in store.meta["folds"] for p in f["test"]) == store.patients


def test_phantom_errors(tmp_path, tissue3):
    with pytest.raises(SynthaugError, match="task"):
        make_phantom(tmp_path / "x", patients=1, task="bones")
    with pytest.raises(SynthaugError, match="patients"):
        make_phantom(tmp_path / "y", patients=0)
    with pytest.raises(SynthaugError, match="already exists"):
        make_phantom(tissue3, patients=1)
    with pytest.raises(SynthaugError, match="task"):
        make_patient(0, 0, "bones")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
