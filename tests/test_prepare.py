"""prepare: alignment of image and label, canonical orientation, label remapping, options,
atomic replacement, patient slice ranges, and the SliceStore read API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthaug.data import SliceStore, prepare
from synthaug.data.options import PrepareOptions
from synthaug.errors import StoreError, SynthaugError
from tests.helpers.data import (
    SHAPE,
    Case,
    exact_options,
    flip_voxel_axes,
    leftovers,
    make_affine,
    make_case,
    make_cases,
    remap,
    snapshot,
    to_store,
    write_msd,
    write_nifti,
    write_nnunet,
)

# -- alignment: a bright ellipsoid exactly where label == 1 ------------------------------------

SPACING = (0.8, 1.2, 3.0)
ALIGN_SHAPE = (30, 20, 10)
ORIGIN = (-12.0, 5.0, -30.0)


def _ellipsoid_case(case_id: str, center_vox, radii_mm, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """RAS volume with anisotropic voxels: noisy body, bright ellipsoid, label 1 on the ellipsoid."""
    affine = make_affine(SPACING, ORIGIN)
    idx = np.indices(ALIGN_SHAPE).astype(np.float64)
    mm = idx * np.asarray(SPACING)[:, None, None, None]
    c = np.asarray(center_vox) * np.asarray(SPACING)
    dist = (((mm - c[:, None, None, None]) / np.asarray(radii_mm)[:, None, None, None]) ** 2).sum(0)
    obj = dist < 1.0
    rng = np.random.default_rng(seed)
    image = np.zeros(ALIGN_SHAPE, dtype=np.float32)
    image[1:-1, 1:-1, :] = 100.0 + rng.normal(
        0.0, 2.0, size=(ALIGN_SHAPE[0] - 2, ALIGN_SHAPE[1] - 2, ALIGN_SHAPE[2])
    )
    image[obj] = 1000.0
    return image, obj.astype(np.uint8), affine


@pytest.fixture(scope="module")
def ellipsoid_lps(tmp_path_factory) -> Path:
    """Two patients stored LPS-flipped (x and y voxel axes reversed, negative affine diagonal)."""
    root = tmp_path_factory.mktemp("align") / "msd"
    cases = []
    # off-centre in x, y and z so that a flipped label would miss the object
    for i, (center, radii) in enumerate(
        [((19, 7, 6), (6.0, 5.0, 7.0)), ((11, 12, 4), (5.0, 6.0, 8.0))]
    ):
        image, label, affine = _ellipsoid_case(f"ell_{i}", center, radii, seed=i)
        image_f, affine_f = flip_voxel_axes(image, affine, (0, 1))
        label_f, _ = flip_voxel_axes(label, affine, (0, 1))
        assert affine_f[0, 0] < 0 and affine_f[1, 1] < 0
        cases.append(Case(f"ell_{i}", image_f[..., None], label_f, affine_f))
    return write_msd(root, cases, ["MR"], {0: "background", 1: "object"})


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_label_aligned_with_bright_object(ellipsoid_lps, tmp_path, axis):
    store = prepare(
        ellipsoid_lps, tmp_path / "s", PrepareOptions(resolution=32, axis=axis, folds=2, workers=1)
    )
    assert store.resolution == 32
    for patient in store.patients:
        images, labels = store.patient(patient)
        obj = labels == 1
        bright = images[:, 0] > 0.0
        with_object = [s for s in range(len(obj)) if obj[s].any()]
        assert len(with_object) >= 3
        for s in with_object:
            assert _dice(bright[s], obj[s]) > 0.9, f"{patient} {axis} slice {s}"
        # every label-1 pixel is on the object (at least a quarter of its bilinear weight)
        assert np.all(images[:, 0][obj] > -0.5)
        # sanity of the fixture: the object is off-centre, so a mirrored label would not match
        mirrored = obj[:, ::-1, ::-1]
        assert _dice(bright[with_object].ravel(), mirrored[with_object].ravel()) < 0.6


def test_anisotropic_pixels_become_square(ellipsoid_lps, tmp_path):
    """Axial slices of 0.8 x 1.2 mm voxels: the in-plane field of view is isotropic."""
    store = prepare(
        ellipsoid_lps,
        tmp_path / "s",
        PrepareOptions(resolution=32, crop="none", folds=2, workers=1),
    )
    meta = store.meta["patients"][0]
    assert meta["spacing_mm"] == pytest.approx(list(SPACING))
    assert meta["original_shape"] == list(ALIGN_SHAPE)
    # x extent 30 * 0.8 = 24 mm and y extent 20 * 1.2 = 24 mm: both fill the 32 pixels
    assert meta["pixel_size_mm"] == pytest.approx(24.0 / 32)
    _, labels = store.patient(store.patients[0])
    rows = np.flatnonzero(labels.any(axis=(0, 2)))
    cols = np.flatnonzero(labels.any(axis=(0, 1)))
    # ellipsoid 0: radii 6 mm (x, columns) and 5 mm (y, rows) -> ~16 and ~13.3 pixels across
    assert 14 <= cols.size <= 18
    assert 12 <= rows.size <= 15


# -- canonical orientation: the same physical image stored in different ways --------------------


def _orientation_variants(tmp: Path) -> dict[str, Path]:
    base = [
        _ellipsoid_case("pa", (19, 7, 6), (6.0, 5.0, 7.0), seed=10),
        _ellipsoid_case("pb", (11, 12, 4), (5.0, 6.0, 8.0), seed=11),
    ]
    labels = {0: "background", 1: "object"}

    def variant(name: str, transform, suffix: str = ".nii.gz") -> Path:
        cases = []
        for case_id, (image, label, affine) in zip(("pa", "pb"), base, strict=True):
            img2, aff2 = transform(image, affine)
            lab2, _ = transform(label, affine)
            cases.append(Case(case_id, img2[..., None], lab2, aff2))
        return write_msd(tmp / name, cases, ["MR"], labels, suffix=suffix)

    def permute(data, affine):
        return np.ascontiguousarray(data.transpose(1, 0, 2)), affine[:, [1, 0, 2, 3]]

    return {
        "ras": variant("ras", lambda d, a: (d, a)),
        "lps_flip": variant("lps", lambda d, a: flip_voxel_axes(d, a, (0, 1))),
        "flip_xyz": variant("xyz", lambda d, a: flip_voxel_axes(d, a, (0, 1, 2))),
        "transposed": variant("tr", permute),
        # ITK files: "ras" data gets direction diag(-1,-1,1), "lps" data the identity direction
        "mha_ras": variant("mha_ras", lambda d, a: (d, a), suffix=".mha"),
        "nrrd_lps": variant("nrrd_lps", lambda d, a: flip_voxel_axes(d, a, (0, 1)), suffix=".nrrd"),
    }


@pytest.fixture(scope="module")
def orientation_stores(tmp_path_factory) -> dict[str, SliceStore]:
    tmp = tmp_path_factory.mktemp("orient")
    opts = PrepareOptions(resolution=32, folds=2, workers=1)
    return {k: prepare(v, tmp / f"store_{k}", opts) for k, v in _orientation_variants(tmp).items()}


@pytest.mark.parametrize("variant", ["lps_flip", "flip_xyz", "transposed", "mha_ras", "nrrd_lps"])
def test_orientation_does_not_change_the_store(orientation_stores, variant):
    ref, other = orientation_stores["ras"], orientation_stores[variant]
    assert other.patients == ref.patients
    np.testing.assert_array_equal(np.asarray(other.labels), np.asarray(ref.labels))
    np.testing.assert_array_equal(np.asarray(other.images), np.asarray(ref.images))
    np.testing.assert_array_equal(np.asarray(other.positions), np.asarray(ref.positions))
    assert [p["spacing_mm"] for p in other.meta["patients"]] == [
        p["spacing_mm"] for p in ref.meta["patients"]
    ]


def test_orientation_reference_is_not_trivial(orientation_stores):
    """The reference store is not symmetric: flipping it would be detected."""
    labels = np.asarray(orientation_stores["ras"].labels)
    assert labels.any()
    assert not np.array_equal(labels, labels[:, ::-1, :])
    assert not np.array_equal(labels, labels[:, :, ::-1])
    assert not np.array_equal(labels, labels[::-1])


def test_channel_stored_flipped_is_reoriented(tmp_path):
    """nnU-Net: channel 1 of one case saved with reversed x/y axes still lines up with channel 0."""
    cases = make_cases(2, channels=2, label_values=(0, 1), seed=7)
    ref = write_nnunet(tmp_path / "ref", cases, ["T1", "T2"], {0: "background", 1: "x"})
    flipped = write_nnunet(tmp_path / "flip", cases, ["T1", "T2"], {0: "background", 1: "x"})
    c = cases[1]
    data, affine = flip_voxel_axes(c.image[..., 1], c.affine, (0, 1))
    write_nifti(flipped / "imagesTr" / f"{c.case_id}_0001.nii.gz", data, affine)
    a = prepare(ref, tmp_path / "a", exact_options())
    b = prepare(flipped, tmp_path / "b", exact_options())
    np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
    np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))


# -- label remapping -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sparse_labels(tmp_path_factory):
    """Declared labels {0, 2, 5} (dict in shuffled order); case 1 uses only {0, 5}."""
    tmp = tmp_path_factory.mktemp("remap")
    cases = [
        make_case("sp_000", label_values=(0, 2, 5), seed=1),
        make_case("sp_001", label_values=(0, 5), seed=2),
    ]
    declared = {5: "edema", 0: "background", 2: "core"}
    msd = write_msd(tmp / "msd", cases, ["MR"], declared)
    nnunet = write_nnunet(tmp / "nnunet", cases, ["MR"], declared)
    return cases, {
        "msd": prepare(msd, tmp / "s_msd", exact_options()),
        "nnunet": prepare(nnunet, tmp / "s_nn", exact_options()),
    }


@pytest.mark.parametrize("layout", ["msd", "nnunet"])
def test_declared_labels_remapped_in_value_order(sparse_labels, layout):
    cases, stores = sparse_labels
    store = stores[layout]
    assert store.label_names == ["background", "core", "edema"]
    assert store.num_classes == 3
    assert store.meta["source_label_values"] == [0, 2, 5]
    assert set(np.unique(store.labels).tolist()) == {0, 1, 2}
    for case in cases:
        _, labels = store.patient(case.case_id)
        np.testing.assert_array_equal(labels, to_store(remap(case.label, [0, 2, 5]), 14, 0))
    # the case without value 2 keeps 5 -> 2 (rank among the declared values, not among present ones)
    _, labels1 = store.patient("sp_001")
    assert set(np.unique(labels1).tolist()) == {0, 2}


def test_float_label_file_is_accepted(tmp_path):
    cases = make_cases(2, label_values=(0, 1, 2), seed=3)
    root = write_msd(tmp_path / "d", cases, ["MR"], {0: "bg", 1: "a", 2: "b"})
    for case in cases:
        write_nifti(
            root / "labelsTr" / f"{case.case_id}.nii.gz", case.label.astype(np.float32), case.affine
        )
    store = prepare(root, tmp_path / "s", exact_options())
    for case in cases:
        np.testing.assert_array_equal(store.patient(case.case_id)[1], to_store(case.label, 14, 0))


# -- non-finite repair -------------------------------------------------------------------------


def test_repair_nonfinite_gives_finite_output(tmp_path):
    cases = make_cases(2, channels=2, seed=4)
    bad = cases[0].image.copy()
    bad[5, 5, 5, 0] = np.nan
    bad[6, 6, 6, 1] = np.inf
    bad[7, 7, 7, 1] = -np.inf
    cases[0] = Case(cases[0].case_id, bad, cases[0].label, cases[0].affine)
    root = write_msd(tmp_path / "d", cases, ["T1", "T2"], {0: "bg", 1: "x"})
    store = prepare(root, tmp_path / "s", exact_options(repair_nonfinite=True))
    images = np.asarray(store.images).astype(np.float32)
    assert np.isfinite(images).all()
    assert store.meta["options"]["repair_nonfinite"] is True
    # a repaired voxel takes the channel's minimum: the bottom of the range
    img0, _ = store.patient(cases[0].case_id)
    nan_pixel = to_store(np.isnan(bad[..., 0]).astype(float), 14, 0) > 0
    inf_pixel = to_store(np.isinf(bad[..., 1]).astype(float), 14, 0) > 0
    assert nan_pixel.sum() == 1 and inf_pixel.sum() == 2
    assert np.all(img0[:, 0][nan_pixel] == -1.0)
    assert np.all(img0[:, 1][inf_pixel] == -1.0)


# -- slice selection options -----------------------------------------------------------------


def test_drop_empty_trains_on_labelled_slices_and_keeps_every_slice_for_testing(tiny_msd, tmp_path):
    from synthaug.data import load_dataset

    store = prepare(tiny_msd, tmp_path / "s", exact_options(drop_empty=True))
    full = prepare(tiny_msd, tmp_path / "full", exact_options())
    spec = load_dataset(tiny_msd)
    for case in spec.cases:
        _, label = case.load()
        z_with_fg = np.flatnonzero((label.data > 0).any(axis=(0, 1)))
        # Every slice stays in the store: the case is a test patient of one fold.
        np.testing.assert_array_equal(store.patient(case.case_id)[1], full.patient(case.case_id)[1])
        idx = store.training_indices([case.case_id])
        np.testing.assert_array_equal(store.positions[idx], z_with_fg)
        assert np.all(store.labels[idx].reshape(len(idx), -1).max(axis=1) > 0)
    for fold in range(store.num_folds):
        split = store.split(fold)
        test_images, test_labels = store.arrays(split.test)
        assert len(test_labels) == len(full.arrays(split.test)[1])  # test patients unedited
        train_labels = store.training_arrays(split.train)[1]
        assert (train_labels.reshape(len(train_labels), -1).max(axis=1) > 0).all()
    assert store.fingerprint != full.fingerprint


def test_drop_edge_marks_end_slices_untrainable(tiny_msd, tmp_path):
    store = prepare(tiny_msd, tmp_path / "s", exact_options(drop_edge=0.2))
    for patient in store.patients:
        a, b = store.slice_range(patient)
        np.testing.assert_array_equal(store.positions[a:b], np.arange(SHAPE[2]))
        idx = store.training_indices([patient])
        np.testing.assert_array_equal(store.positions[idx], np.arange(2, SHAPE[2] - 2))


def test_foreground_crop_fills_the_field_of_view(tiny_msd, tmp_path):
    """The zero rim is cropped away, so no slice has a padding row/column of pure background."""
    store = prepare(tiny_msd, tmp_path / "s", PrepareOptions(resolution=16, folds=2, workers=1))
    images = np.asarray(store.images).astype(np.float32)
    # the body spans the cropped box along y (rows): first and last row are inside the body
    # y (12 body voxels, rows) is the longer extent after cropping, so it fills all 16 rows
    assert (images > -1.0).any(axis=(0, 1, 3)).all()
    uncropped = prepare(tiny_msd, tmp_path / "u", exact_options(resolution=16))
    assert not (np.asarray(uncropped.images) > -1.0).any(axis=(0, 1, 3)).all()


def test_foreground_crop_box_does_not_depend_on_the_labels():
    """The crop box comes from image intensities alone: a label outside the image content
    (here one labelled voxel in the background corner) must not widen the test image's crop."""
    from synthaug.data.preprocess import BACKGROUND_VALUE, _crop

    img = np.full((4, 10, 12, 2), BACKGROUND_VALUE, dtype=np.float32)  # [S, H, W, C]
    img[1:3, 3:7, 4:9, 0] = 0.5  # image content: slices 1-2, rows 3-6, columns 4-8
    lab = np.zeros((4, 10, 12), dtype=np.uint8)
    lab[1:3, 4:6, 5:7] = 1  # inside the content
    stray = lab.copy()
    stray[3, 0, 11] = 2  # labelled, but where the image is pure background
    positions = np.arange(4)
    opts = PrepareOptions(crop="foreground")

    img_a, lab_a, pos_a = _crop(img, lab, positions, opts)
    img_b, lab_b, pos_b = _crop(img, stray, positions, opts)
    assert img_a.shape == img_b.shape == (2, 4, 5, 2)
    np.testing.assert_array_equal(img_a, img_b)
    np.testing.assert_array_equal(pos_a, pos_b)
    np.testing.assert_array_equal(pos_a, [1, 2])
    np.testing.assert_array_equal(lab_a, lab_b)  # the stray voxel is cut away with the rim


@pytest.mark.parametrize("workers", [2])
def test_parallel_workers_give_the_same_store(tiny_msd, tiny_store, tmp_path, workers):
    store = prepare(tiny_msd, tmp_path / "s", exact_options(workers=workers))
    np.testing.assert_array_equal(np.asarray(store.images), np.asarray(tiny_store.images))
    np.testing.assert_array_equal(np.asarray(store.labels), np.asarray(tiny_store.labels))
    assert store.meta["folds"] == tiny_store.meta["folds"]


# -- atomic replacement ------------------------------------------------------------------------


def test_existing_store_without_overwrite_is_an_error(tiny_msd, tiny_store, tmp_path):
    out = tmp_path / "store"
    prepare(tiny_msd, out, exact_options())
    before = snapshot(out)
    with pytest.raises(StoreError, match="already exists"):
        prepare(tiny_msd, out, exact_options(resolution=16))
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_existing_folder_without_overwrite_is_left_alone(tiny_msd, tmp_path):
    out = tmp_path / "not_a_store"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SynthaugError):
        prepare(tiny_msd, out, exact_options())
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_the_store(tiny_msd, tmp_path):
    out = tmp_path / "store"
    first = prepare(tiny_msd, out, exact_options())
    assert first.resolution == 14
    cases = make_cases(3, prefix="other", seed=9)
    other = write_msd(tmp_path / "other", cases, ["MR"], {0: "bg", 1: "x"})
    second = prepare(other, out, exact_options(resolution=16, folds=3), overwrite=True)
    reread = SliceStore(out)
    assert reread.patients == ["other_000", "other_001", "other_002"]
    assert reread.resolution == 16 and reread.num_folds == 3
    assert reread.images.shape == (3 * SHAPE[2], 1, 16, 16)
    assert second.path == out
    assert leftovers(out) == []
    assert sorted(p.name for p in out.iterdir()) == [
        "images.npy",
        "labels.npy",
        "positions.npy",
        "store.json",
        "trainable.npy",
    ]


@pytest.mark.parametrize("earlier", [False, True])
def test_failure_while_writing_leaves_nothing_half_written(
    tiny_msd, tmp_path, monkeypatch, earlier
):
    """A crash after the arrays are written but before store.json: no partial store anywhere."""
    import importlib

    # (synthaug.data.prepare the attribute is the function; the module is in sys.modules)
    prepare_module = importlib.import_module("synthaug.data.prepare")

    out = tmp_path / "store"
    if earlier:
        prepare(tiny_msd, out, exact_options())
    before = snapshot(out) if earlier else None

    def crash(path, obj):
        assert (Path(path).parent / "images.npy").is_file()  # the arrays went to the temporary dir
        raise RuntimeError("disk full")

    monkeypatch.setattr(prepare_module, "write_json", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(tiny_msd, out, exact_options(resolution=16), overwrite=True)
    assert leftovers(out) == []
    if earlier:
        assert snapshot(out) == before
    else:
        assert not out.exists()


# -- patients' slices --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """Patients with 6, 9, 4 and 7 slices."""
    tmp = tmp_path_factory.mktemp("uneven")
    cases = [
        make_case(f"u{i}", shape=(12, 14, nz), label_values=(0, 1), seed=20 + i)
        for i, nz in enumerate((6, 9, 4, 7))
    ]
    root = write_msd(tmp / "d", cases, ["MR"], {0: "bg", 1: "x"})
    return cases, prepare(root, tmp / "s", exact_options(folds=2))


def test_patient_slices_are_contiguous_and_their_own(uneven):
    cases, store = uneven
    assert store.slice_counts() == [6, 9, 4, 7]
    assert store.meta["num_slices"] == 26
    start = 0
    for case in cases:
        a, b = store.slice_range(case.case_id)
        assert a == start
        start = b
        np.testing.assert_array_equal(store.positions[a:b], np.arange(case.label.shape[2]))
        np.testing.assert_array_equal(store.labels[a:b], to_store(case.label, 14, 0))
    assert start == len(store.images)
    np.testing.assert_array_equal(store.indices(["u2", "u0"]), np.r_[15:19, 0:6])


def test_median_slices(uneven):
    _, store = uneven
    assert store.median_slices() in (6, 7)  # median of 4, 6, 7, 9 is 6.5
    assert store.median_slices(["u0", "u1", "u2"]) == 6  # 6, 9, 4
    assert store.median_slices(["u1", "u3", "u2"]) == 7  # 9, 7, 4
    assert store.median_slices(["u1"]) == 9


# -- the SliceStore API -------------------------------------------------------------------------


def test_store_on_a_plain_folder_raises(tmp_path):
    (tmp_path / "images.npy").write_bytes(b"")
    with pytest.raises(StoreError, match="not a slice store"):
        SliceStore(tmp_path)
    with pytest.raises(StoreError):
        SliceStore(tmp_path / "missing")


def test_store_with_corrupt_metadata_raises(tiny_store, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_store.path, bad)
    (bad / "store.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt"):
        SliceStore(bad)
    meta = json.loads((tiny_store.path / "store.json").read_text())
    meta["format"] = "something-else"
    (bad / "store.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError):
        SliceStore(bad)
    meta = json.loads((tiny_store.path / "store.json").read_text())
    meta["num_slices"] += 1
    (bad / "store.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="slices"):
        SliceStore(bad)


@pytest.mark.parametrize("fold", [-1, 2, 5])
def test_fold_out_of_range_raises(tiny_store, fold):
    assert tiny_store.num_folds == 2
    with pytest.raises(StoreError, match="fold"):
        tiny_store.split(fold)


def test_unknown_patient_raises(tiny_store):
    with pytest.raises(StoreError, match="no patient"):
        tiny_store.patient("nobody")


def test_arrays_dtypes_and_shapes(tiny_store):
    split = tiny_store.split(0)
    images, labels = tiny_store.arrays(split.train)
    n = sum(tiny_store.slice_counts(split.train))
    assert n > 0
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.shape == (n, 2, 14, 14)
    assert labels.shape == (n, 14, 14)
    empty_images, empty_labels = tiny_store.arrays([])
    assert len(empty_images) == 0 and len(empty_labels) == 0
    img, lab = tiny_store.patient(split.test[0])
    assert img.dtype == np.float32 and lab.dtype == np.int64
    assert img.shape == (SHAPE[2], 2, 14, 14)


def test_store_reads_without_mmap(tiny_store):
    store = SliceStore(tiny_store.path, mmap=False)
    assert isinstance(store.images, np.ndarray) and not isinstance(store.images, np.memmap)
    np.testing.assert_array_equal(store.images, np.asarray(tiny_store.images))


def test_label_frequencies(tiny_store):
    freqs = tiny_store.label_frequencies()
    assert freqs.shape == (3,)
    assert freqs.sum() == pytest.approx(1.0)
    counts = np.bincount(np.asarray(tiny_store.labels).ravel(), minlength=3)
    np.testing.assert_allclose(freqs, counts / counts.sum())
    assert freqs[0] > freqs[1] > 0 and freqs[2] > 0
    one = tiny_store.label_frequencies([tiny_store.patients[0]])
    assert one.sum() == pytest.approx(1.0)
    assert not np.allclose(one, freqs)


def test_summary_and_provenance(tiny_store, tiny_msd):
    s = tiny_store.summary()
    assert s["patients"] == 4
    assert s["slices"] == 4 * SHAPE[2]
    assert s["modalities"] == ["T1", "T2"]
    assert s["labels"] == ["background", "alpha", "beta"]
    assert s["resolution"] == 14 and s["axis"] == "axial" and s["folds"] == 2
    assert s["median_slices"] == SHAPE[2]
    assert sum(s["label_frequencies"]) == pytest.approx(1.0, abs=1e-4)
    meta = tiny_store.meta
    assert meta["source"]["path"] == str(tiny_msd.resolve())
    assert meta["source"]["layout"] == "msd"
    assert meta["options"]["resolution"] == 14 and meta["options"]["crop"] == "none"
    assert "synthaug_version" in meta and meta["created"]
    assert "patients=4" in repr(tiny_store)
