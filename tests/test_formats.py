"""Every dataset layout (MSD v1, nnU-Net v2 with NIfTI/NRRD/MHA, BraTS 2021/2023) is recognised
and prepared into a store with the right channels, labels, slices and voxels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from synthaug.data import SliceStore, load_dataset, prepare
from synthaug.data.formats import detect_layout
from synthaug.errors import DatasetError
from tests.helpers.data import (
    SHAPE,
    Case,
    bright_expected,
    exact_options,
    make_cases,
    remap,
    to_store,
    write_brats,
    write_msd,
    write_nnunet,
)

RES = max(SHAPE[:2])


@dataclass
class Layout:
    root: Path
    layout: str
    modalities: list[str]
    labels: dict[int, str]
    cases: list[Case]
    files_per_case: int


def _build(tmp: Path) -> dict[str, Layout]:
    out: dict[str, Layout] = {}

    labels3 = {0: "background", 1: "liver", 2: "tumour"}
    cases = make_cases(3, prefix="msd", channels=2, label_values=(0, 1, 2), seed=1)
    out["msd"] = Layout(
        write_msd(tmp / "msd", cases, ["FLAIR", "T1w"], labels3),
        "msd",
        ["FLAIR", "T1w"],
        labels3,
        cases,
        1,
    )

    labels2 = {0: "background", 1: "organ"}
    cases = make_cases(2, prefix="one", channels=1, label_values=(0, 1), seed=2)
    out["msd-3d-nii"] = Layout(
        write_msd(tmp / "msd1", cases, ["CT"], labels2, suffix=".nii"),
        "msd",
        ["CT"],
        labels2,
        cases,
        1,
    )

    mods3 = ["T1", "T2", "FLAIR"]
    cases = make_cases(3, prefix="nn", channels=3, label_values=(0, 1, 2), seed=3)
    out["nnunet"] = Layout(
        write_nnunet(tmp / "nnunet", cases, mods3, labels3), "nnunet", mods3, labels3, cases, 3
    )

    for ending in (".nrrd", ".mha"):
        cases = make_cases(2, prefix="it", channels=2, label_values=(0, 1, 2), seed=4)
        key = f"nnunet{ending}"
        out[key] = Layout(
            write_nnunet(
                tmp / key.replace(".", "-"), cases, ["T1", "T2"], labels3, file_ending=ending
            ),
            "nnunet",
            ["T1", "T2"],
            labels3,
            cases,
            2,
        )

    cases = make_cases(3, prefix="BraTS2021", channels=4, label_values=(0, 1, 2, 4), seed=5)
    out["brats2021"] = Layout(
        write_brats(tmp / "brats21", cases, "2021"),
        "brats",
        ["T1", "T1CE", "T2", "FLAIR"],
        {0: "background", 1: "necrotic core", 2: "oedema", 4: "enhancing tumour"},
        cases,
        4,
    )
    cases = make_cases(2, prefix="BraTS-GLI-00000", channels=4, label_values=(0, 1, 2, 3), seed=6)
    out["brats2023"] = Layout(
        write_brats(tmp / "brats23", cases, "2023"),
        "brats",
        ["T1N", "T1C", "T2W", "T2F"],
        {0: "background", 1: "necrotic core", 2: "oedema", 3: "enhancing tumour"},
        cases,
        4,
    )
    return out


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Layout]:
    return _build(tmp_path_factory.mktemp("layouts"))


@pytest.fixture(scope="module")
def stores(layouts, tmp_path_factory) -> dict[str, SliceStore]:
    tmp = tmp_path_factory.mktemp("layout_stores")
    return {
        key: prepare(lay.root, tmp / key, exact_options(resolution=RES))
        for key, lay in layouts.items()
    }


LAYOUT_IDS = ["msd", "msd-3d-nii", "nnunet", "nnunet.nrrd", "nnunet.mha", "brats2021", "brats2023"]


@pytest.mark.parametrize("key", LAYOUT_IDS)
def test_load_dataset_recognises_layout(layouts, key):
    lay = layouts[key]
    assert detect_layout(lay.root) == lay.layout
    spec = load_dataset(lay.root)
    assert spec.layout == lay.layout
    assert spec.modalities == lay.modalities
    assert spec.num_channels == len(lay.modalities)
    assert spec.labels == lay.labels
    assert [c.case_id for c in spec.cases] == [c.case_id for c in lay.cases]
    for case in spec.cases:
        assert len(case.image_paths) == lay.files_per_case
        assert all(p.is_file() for p in case.image_paths)
        assert case.label_path.is_file()
        assert case.case_id in case.label_path.name or case.case_id == case.label_path.parent.name


@pytest.mark.parametrize("key", LAYOUT_IDS)
def test_explicit_layout_equals_auto(layouts, key):
    lay = layouts[key]
    auto = load_dataset(lay.root)
    explicit = load_dataset(lay.root, layout=lay.layout)
    assert explicit.layout == auto.layout
    assert [c.case_id for c in explicit.cases] == [c.case_id for c in auto.cases]
    assert explicit.labels == auto.labels


@pytest.mark.parametrize(
    ("key", "wrong"),
    [("msd", "brats"), ("msd", "nnunet"), ("nnunet", "brats"), ("brats2021", "msd")],
)
def test_wrong_explicit_layout_is_a_dataset_error(layouts, key, wrong):
    with pytest.raises(DatasetError):
        load_dataset(layouts[key].root, layout=wrong)


def test_unknown_layout_name_is_rejected(layouts):
    with pytest.raises(DatasetError, match="unknown layout"):
        load_dataset(layouts["msd"].root, layout="decathlon2")


def test_brats_conventions_and_channel_files(layouts):
    spec21 = load_dataset(layouts["brats2021"].root)
    spec23 = load_dataset(layouts["brats2023"].root)
    assert spec21.extra["brats_convention"] == "2021"
    assert spec23.extra["brats_convention"] == "2023"
    suffixes21 = [p.name.split("_")[-1] for p in spec21.cases[0].image_paths]
    assert suffixes21 == ["t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz", "flair.nii.gz"]
    suffixes23 = [p.name.split("-")[-1] for p in spec23.cases[0].image_paths]
    assert suffixes23 == ["t1n.nii.gz", "t1c.nii.gz", "t2w.nii.gz", "t2f.nii.gz"]


def test_nnunet_channel_files_in_channel_order(layouts):
    spec = load_dataset(layouts["nnunet"].root)
    for case in spec.cases:
        assert [p.name for p in case.image_paths] == [
            f"{case.case_id}_{c:04d}.nii.gz" for c in range(3)
        ]


@pytest.mark.parametrize("key", LAYOUT_IDS)
def test_prepare_store_matches_layout(layouts, stores, key):
    lay, store = layouts[key], stores[key]
    declared = sorted(lay.labels)
    nz = SHAPE[2]
    assert store.modalities == lay.modalities
    assert store.num_channels == len(lay.modalities)
    assert store.label_names == [lay.labels[v] for v in declared]
    assert store.meta["source_label_values"] == declared
    assert store.meta["source"]["layout"] == lay.layout
    assert store.patients == [c.case_id for c in lay.cases]
    assert store.meta["num_slices"] == len(lay.cases) * nz
    assert store.slice_counts() == [nz] * len(lay.cases)
    assert store.images.shape == (len(lay.cases) * nz, len(lay.modalities), RES, RES)
    assert store.images.dtype == np.float16
    assert store.labels.dtype == np.uint8
    assert store.positions.dtype == np.int32
    assert float(store.images.min()) >= -1.0
    assert float(store.images.max()) <= 1.0
    assert set(np.unique(store.labels).tolist()) == set(range(len(declared)))


@pytest.mark.parametrize("key", LAYOUT_IDS)
def test_prepare_voxels_land_where_expected(layouts, stores, key):
    """Without resampling every label voxel and every channel's bright voxel can be predicted."""
    lay, store = layouts[key], stores[key]
    declared = sorted(lay.labels)
    for case in lay.cases:
        images, labels = store.patient(case.case_id)
        np.testing.assert_array_equal(labels, to_store(remap(case.label, declared), RES, 0))
        np.testing.assert_array_equal(
            store.positions[slice(*store.slice_range(case.case_id))], np.arange(SHAPE[2])
        )
        for c in range(len(lay.modalities)):
            expected = to_store(bright_expected(case, c).astype(float), RES, 0) > 0
            np.testing.assert_array_equal(
                images[:, c] > 0.5, expected, err_msg=f"{case.case_id} channel {c}"
            )
        # the padding columns (x outside the 12-voxel width) are background in every channel
        pad = (RES - SHAPE[0]) // 2
        assert pad > 0
        assert np.all(images[..., :pad] == -1.0)
        assert np.all(labels[..., :pad] == 0)


def test_brats2021_label_4_becomes_3(layouts, stores):
    lay, store = layouts["brats2021"], stores["brats2021"]
    case = lay.cases[0]
    assert (case.label == 4).any() and not (case.label == 3).any()
    _, labels = store.patient(case.case_id)
    raw = to_store(case.label.astype(float), RES, 0)
    assert np.all(labels[raw == 4] == 3)
    assert np.all(labels[raw == 0] == 0)
    assert store.label_names[3] == "enhancing tumour"
    assert store.meta["source_label_values"] == [0, 1, 2, 4]


def test_ct_modality_uses_fixed_window(layouts, stores):
    """The single-channel dataset's modality is named CT, so auto picks the HU window."""
    store = stores["msd-3d-nii"]
    assert all(p["normalization"] == ["ct"] for p in store.meta["patients"])
    case = layouts["msd-3d-nii"].cases[0]
    images, _ = store.patient(case.case_id)
    # body ~100 HU maps to ~0.1, 1000 HU to 1.0 and the zero rim to 0.0 with the -1000..1000 window
    body = to_store(case.image[..., 0].astype(float), RES, np.nan)
    inside = np.isfinite(body)
    np.testing.assert_allclose(images[:, 0][inside], body[inside] / 1000.0, atol=2e-3)


def test_mr_modalities_use_percentiles(stores):
    store = stores["msd"]
    assert all(p["normalization"] == ["mr", "mr"] for p in store.meta["patients"])
    # the bright objects reach the top of the range, the rim/padding the bottom
    assert float(store.images.max()) == 1.0
    assert float(store.images.min()) == -1.0
