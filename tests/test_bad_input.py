"""Every bad input ends in one SynthaugError naming the case/file and the problem, through the API
and through the CLI (exit 2, one line on stderr), with nothing written at the output path and an
earlier store there left untouched even with --overwrite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from synthaug.data import prepare
from synthaug.errors import DatasetError, SynthaugError
from tests.helpers.data import (
    BRATS_FILES,
    Case,
    dataset_json,
    exact_options,
    leftovers,
    make_affine,
    make_cases,
    rewrite_json,
    rotation_z,
    snapshot,
    write_brats,
    write_msd,
    write_nifti,
    write_nnunet,
)


@dataclass
class Bad:
    path: Path
    expect: tuple[str | tuple[str, ...], ...]  # each entry: a substring, or a tuple of alternatives
    error: type[Exception] = DatasetError


LABELS = {0: "background", 1: "object"}


def _msd(
    root: Path, n: int = 2, channels: int = 1, suffix: str = ".nii.gz"
) -> tuple[Path, list[Case]]:
    cases = make_cases(n, channels=channels, label_values=(0, 1))
    mods = ["T1", "T2", "FLAIR"][:channels]
    return write_msd(root, cases, mods, LABELS, suffix=suffix), cases


def _nnunet(
    root: Path, n: int = 2, channels: int = 2, ending: str = ".nii.gz"
) -> tuple[Path, list[Case]]:
    cases = make_cases(n, channels=channels, label_values=(0, 1))
    return write_nnunet(
        root, cases, ["T1", "T2", "FLAIR"][:channels], LABELS, file_ending=ending
    ), cases


def _msd_label(root: Path, case: Case, data: np.ndarray, affine: np.ndarray) -> None:
    write_nifti(root / "labelsTr" / f"{case.case_id}.nii.gz", data, affine)


def _msd_image(root: Path, case: Case, data: np.ndarray, suffix: str = ".nii.gz") -> None:
    write_nifti(root / "imagesTr" / f"{case.case_id}{suffix}", data, case.affine)


# -- the catalogue of bad inputs ------------------------------------------------------------------


def shape_mismatch(root: Path) -> Bad:
    root, cases = _msd(root)
    _msd_label(root, cases[1], cases[1].label[:, :, :9], cases[1].affine)
    return Bad(root, ("case_001", "shape mismatch"))


def spacing_mismatch(root: Path) -> Bad:
    root, cases = _msd(root)
    _msd_label(root, cases[1], cases[1].label, make_affine(spacing=(1.0, 1.0, 1.5)))
    return Bad(root, ("case_001", "geometry mismatch", "spacing"))


def origin_mismatch(root: Path) -> Bad:
    root, cases = _msd(root)
    _msd_label(root, cases[1], cases[1].label, make_affine(origin=(0.5, 0.0, 0.0)))
    return Bad(root, ("case_001", "geometry mismatch", "origin"))


def direction_mismatch(root: Path) -> Bad:
    root, cases = _msd(root)
    _msd_label(root, cases[1], cases[1].label, make_affine(rotation=rotation_z(5.0)))
    return Bad(root, ("case_001", "geometry mismatch", "direction"))


def truncated_nii_gz(root: Path) -> Bad:
    root, cases = _msd(root)
    path = root / "imagesTr" / "case_001.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Bad(root, ("case_001.nii.gz", "truncated or corrupt"))


def truncated_nii(root: Path) -> Bad:
    root, cases = _msd(root, suffix=".nii")
    path = root / "imagesTr" / "case_001.nii"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Bad(root, ("case_001.nii", "truncated or corrupt"))


def garbage_nii_gz(root: Path) -> Bad:
    root, cases = _msd(root)
    (root / "imagesTr" / "case_001.nii.gz").write_bytes(np.random.default_rng(0).bytes(3000))
    return Bad(root, ("case_001.nii.gz", ("corrupt", "cannot read")))


def gzipped_garbage_nii_gz(root: Path) -> Bad:
    import gzip

    root, cases = _msd(root)
    payload = gzip.compress(np.random.default_rng(1).bytes(3000))
    (root / "imagesTr" / "case_001.nii.gz").write_bytes(payload)
    return Bad(root, ("case_001.nii.gz", ("corrupt", "cannot read")))


def garbage_nii(root: Path) -> Bad:
    root, cases = _msd(root, suffix=".nii")
    (root / "labelsTr" / "case_001.nii").write_bytes(np.random.default_rng(2).bytes(3000))
    return Bad(root, ("case_001.nii", ("corrupt", "cannot read")))


def garbage_nrrd(root: Path) -> Bad:
    root, _ = _nnunet(root, ending=".nrrd")
    (root / "imagesTr" / "case_001_0001.nrrd").write_bytes(np.random.default_rng(3).bytes(3000))
    return Bad(root, ("case_001_0001.nrrd", "truncated or corrupt"))


def truncated_mha(root: Path) -> Bad:
    root, _ = _nnunet(root, ending=".mha")
    path = root / "labelsTr" / "case_001.mha"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Bad(root, ("case_001.mha", "truncated or corrupt"))


def missing_label_file(root: Path) -> Bad:
    root, _ = _msd(root)
    (root / "labelsTr" / "case_001.nii.gz").unlink()
    return Bad(root, ("case_001.nii.gz", "missing"))


def missing_image_file(root: Path) -> Bad:
    root, _ = _msd(root)
    (root / "imagesTr" / "case_000.nii.gz").unlink()
    return Bad(root, ("case_000.nii.gz", "missing"))


def nan_voxels(root: Path) -> Bad:
    root, cases = _msd(root)
    image = cases[1].image[..., 0].copy()
    image[3:5, 3:5, 2] = np.nan
    _msd_image(root, cases[1], image)
    return Bad(root, ("case_001", "NaN/Inf"))


def inf_voxels(root: Path) -> Bad:
    root, cases = _msd(root, channels=2)
    image = cases[1].image.copy()
    image[6, 6, 6, 1] = np.inf
    _msd_image(root, cases[1], image)
    return Bad(root, ("case_001", "NaN/Inf"))


def undeclared_label(root: Path) -> Bad:
    root, cases = _msd(root)
    label = cases[1].label.copy()
    label[5, 5, 5] = 3
    _msd_label(root, cases[1], label, cases[1].affine)
    return Bad(root, ("case_001", "not declared", "[3]"))


def brats2021_with_label_3(root: Path) -> Bad:
    cases = make_cases(2, prefix="BraTS2021", channels=4, label_values=(0, 1, 2, 3))
    return Bad(write_brats(root, cases, "2021"), ("BraTS2021_000_seg", "not declared", "[3]"))


def non_integer_label(root: Path) -> Bad:
    root, cases = _msd(root)
    label = cases[1].label.astype(np.float32)
    label[5, 5, 5] = 0.5
    _msd_label(root, cases[1], label, cases[1].affine)
    return Bad(root, ("case_001", "non-integer"))


def label_not_3d(root: Path) -> Bad:
    root, cases = _msd(root)
    label = np.stack([cases[1].label, cases[1].label], axis=-1)
    _msd_label(root, cases[1], label, cases[1].affine)
    return Bad(root, ("case_001", "3-D"))


def empty_dataset(root: Path) -> Bad:
    root, _ = _msd(root)
    meta = dataset_json(root)
    meta["training"] = []
    rewrite_json(root, meta)
    return Bad(root, (root.name, "no cases"))


def invalid_json(root: Path) -> Bad:
    root, _ = _msd(root)
    text = (root / "dataset.json").read_text()
    (root / "dataset.json").write_text(text[: len(text) // 2])
    return Bad(root, ("dataset.json", "not valid JSON"))


def json_not_an_object(root: Path) -> Bad:
    root, _ = _msd(root)
    (root / "dataset.json").write_text("[1, 2, 3]")
    return Bad(root, ("dataset.json", "JSON object"))


def msd_missing_labels_key(root: Path) -> Bad:
    root, _ = _msd(root)
    meta = dataset_json(root)
    del meta["labels"]
    rewrite_json(root, meta)
    return Bad(root, ("dataset.json", "missing required key", "labels"))


def msd_training_entry_without_label(root: Path) -> Bad:
    root, _ = _msd(root)
    meta = dataset_json(root)
    del meta["training"][1]["label"]
    rewrite_json(root, meta)
    return Bad(root, ("dataset.json", "training entry 1", "label"))


def msd_non_integer_label_key(root: Path) -> Bad:
    root, _ = _msd(root)
    meta = dataset_json(root)
    meta["labels"] = {"0": "background", "one": "object"}
    rewrite_json(root, meta)
    return Bad(root, ("dataset.json", "not an integer"))


def nnunet_missing_file_ending(root: Path) -> Bad:
    root, _ = _nnunet(root)
    meta = dataset_json(root)
    del meta["file_ending"]
    rewrite_json(root, meta)
    return Bad(root, ("dataset.json", "missing required key", "file_ending"))


def json_of_no_known_layout(root: Path) -> Bad:
    root, _ = _msd(root)
    rewrite_json(root, {"name": "mystery", "description": "no layout keys"})
    return Bad(root, ("dataset.json", "neither MSD"))


def msd_channel_counts_differ(root: Path) -> Bad:
    cases = make_cases(2, channels=3, label_values=(0, 1))
    cases[0] = Case(cases[0].case_id, cases[0].image[..., :2], cases[0].label, cases[0].affine)
    return Bad(
        write_msd(root, cases, ["T1", "T2"], LABELS), ("case_001", "3 channel", "2 modalities")
    )


def nnunet_channel_file_missing(root: Path) -> Bad:
    root, _ = _nnunet(root)
    (root / "imagesTr" / "case_001_0001.nii.gz").unlink()
    return Bad(root, ("case_001_0001.nii.gz", "missing"))


def nnunet_extra_channel_file(root: Path) -> Bad:
    root, cases = _nnunet(root)
    write_nifti(root / "imagesTr" / "case_001_0002.nii.gz", cases[1].image[..., 1], cases[1].affine)
    return Bad(root, ("case_001", "channel"))


def nnunet_channel_shape_differs(root: Path) -> Bad:
    root, cases = _nnunet(root)
    write_nifti(
        root / "imagesTr" / "case_001_0001.nii.gz", cases[1].image[:, :, :9, 1], cases[1].affine
    )
    return Bad(root, ("case_001_0001.nii.gz", "shape"))


def nnunet_channel_origin_differs(root: Path) -> Bad:
    root, cases = _nnunet(root)
    write_nifti(
        root / "imagesTr" / "case_001_0001.nii.gz",
        cases[1].image[..., 1],
        make_affine(origin=(4.0, 0.0, 0.0)),
    )
    return Bad(root, ("case_001", ("origin", "geometry")))


def nnunet_num_training_wrong(root: Path) -> Bad:
    root, _ = _nnunet(root)
    meta = dataset_json(root)
    meta["numTraining"] = 5
    rewrite_json(root, meta)
    return Bad(root, ("dataset.json", "numTraining"))


def nnunet_region_labels(root: Path) -> Bad:
    root, _ = _nnunet(root)
    meta = dataset_json(root)
    meta["labels"]["whole"] = [1, 2]
    rewrite_json(root, meta)
    return Bad(root, ("dataset.json", "region"))


def brats_missing_sequence(root: Path) -> Bad:
    cases = make_cases(2, prefix="BraTS2021", channels=4, label_values=(0, 1, 2, 4))
    root = write_brats(root, cases, "2021")
    (root / "BraTS2021_001" / "BraTS2021_001_flair.nii.gz").unlink()
    return Bad(root, ("BraTS2021_001", "missing sequences"))


def brats_missing_seg(root: Path) -> Bad:
    cases = make_cases(2, prefix="BraTS2021", channels=4, label_values=(0, 1, 2, 4))
    root = write_brats(root, cases, "2021")
    (root / "BraTS2021_001" / "BraTS2021_001_seg.nii.gz").unlink()
    return Bad(root, ("BraTS2021_001", "seg"))


def brats_mixed_naming(root: Path) -> Bad:
    cases = make_cases(2, prefix="BraTS", channels=4, label_values=(0, 1, 2))
    write_brats(root, cases[:1], "2021")
    write_brats(root, cases[1:], "2023")
    assert BRATS_FILES["2023"][0].startswith("{id}-")
    return Bad(root, ("BraTS_001", "mixes"))


def unknown_layout(root: Path) -> Bad:
    root.mkdir(parents=True)
    rng = np.random.default_rng(4)
    (root / "README.txt").write_text("some scans")
    (root / "scan.bin").write_bytes(rng.bytes(500))
    (root / "misc").mkdir()
    (root / "misc" / "a.dat").write_bytes(rng.bytes(100))
    (root / "misc" / "image.nii.gz").write_bytes(rng.bytes(100))
    return Bad(root, (root.name, "unknown layout"))


def dataset_folder_missing(root: Path) -> Bad:
    return Bad(root / "nowhere", ("nowhere", "not found"))


def more_folds_than_patients(root: Path) -> Bad:
    root, _ = _msd(root)
    return Bad(root, ("folds", "has 2"), error=SynthaugError)


BAD_INPUTS = [
    pytest.param(shape_mismatch, id="shape-mismatch"),
    pytest.param(spacing_mismatch, id="spacing-mismatch"),
    pytest.param(origin_mismatch, id="origin-mismatch"),
    pytest.param(direction_mismatch, id="direction-mismatch"),
    pytest.param(truncated_nii_gz, id="truncated-nii-gz"),
    pytest.param(truncated_nii, id="truncated-nii"),
    pytest.param(garbage_nii_gz, id="garbage-nii-gz"),
    pytest.param(gzipped_garbage_nii_gz, id="gzipped-garbage-nii-gz"),
    pytest.param(garbage_nii, id="garbage-nii-label"),
    pytest.param(garbage_nrrd, id="garbage-nrrd"),
    pytest.param(truncated_mha, id="truncated-mha"),
    pytest.param(missing_label_file, id="missing-label"),
    pytest.param(missing_image_file, id="missing-image"),
    pytest.param(nan_voxels, id="nan-voxels"),
    pytest.param(inf_voxels, id="inf-voxels"),
    pytest.param(undeclared_label, id="undeclared-label"),
    pytest.param(brats2021_with_label_3, id="brats-undeclared-label"),
    pytest.param(non_integer_label, id="non-integer-label"),
    pytest.param(label_not_3d, id="label-4d"),
    pytest.param(empty_dataset, id="empty-dataset"),
    pytest.param(invalid_json, id="invalid-json"),
    pytest.param(json_not_an_object, id="json-not-object"),
    pytest.param(msd_missing_labels_key, id="msd-missing-key"),
    pytest.param(msd_training_entry_without_label, id="msd-entry-without-label"),
    pytest.param(msd_non_integer_label_key, id="msd-label-key-not-int"),
    pytest.param(nnunet_missing_file_ending, id="nnunet-missing-key"),
    pytest.param(json_of_no_known_layout, id="json-no-layout"),
    pytest.param(msd_channel_counts_differ, id="msd-channel-counts-differ"),
    pytest.param(nnunet_channel_file_missing, id="nnunet-channel-missing"),
    pytest.param(nnunet_extra_channel_file, id="nnunet-extra-channel"),
    pytest.param(nnunet_channel_shape_differs, id="nnunet-channel-shape"),
    pytest.param(nnunet_channel_origin_differs, id="nnunet-channel-geometry"),
    pytest.param(nnunet_num_training_wrong, id="nnunet-numtraining"),
    pytest.param(nnunet_region_labels, id="nnunet-region-labels"),
    pytest.param(brats_missing_sequence, id="brats-missing-sequence"),
    pytest.param(brats_missing_seg, id="brats-missing-seg"),
    pytest.param(brats_mixed_naming, id="brats-mixed-naming"),
    pytest.param(unknown_layout, id="unknown-layout"),
    pytest.param(dataset_folder_missing, id="dataset-folder-missing"),
    pytest.param(more_folds_than_patients, id="folds-gt-patients"),
]


def _options(bad_builder: Callable) -> dict:
    folds = 3 if bad_builder is more_folds_than_patients else 2
    return {"folds": folds}


def _check_message(message: str, bad: Bad) -> None:
    assert "\n" not in message.strip(), message
    for expected in bad.expect:
        alternatives = expected if isinstance(expected, tuple) else (expected,)
        assert any(a in message for a in alternatives), f"{alternatives} not in {message!r}"


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert leftovers(out) == []


def _cli_args(bad: Bad, out: Path, folds: int, *extra: str) -> list[str]:
    return [
        "prepare",
        "--dataset",
        str(bad.path),
        "--out",
        str(out),
        "--resolution",
        "14",
        "--crop",
        "none",
        "--folds",
        str(folds),
        "--workers",
        "1",
        *extra,
    ]


@pytest.fixture
def earlier_store(tiny_store, tmp_path) -> Path:
    """A copy of a valid store at the output path, to be replaced (or not) by a bad prepare."""
    out = tmp_path / "store"
    shutil.copytree(tiny_store.path, out)
    return out


# -- API --------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", BAD_INPUTS)
def test_api_raises_one_message(builder, tmp_path):
    bad = builder(tmp_path / "data")
    out = tmp_path / "store"
    with pytest.raises(bad.error) as info:
        prepare(bad.path, out, exact_options(**_options(builder)))
    _check_message(str(info.value), bad)
    _assert_nothing_written(out)


@pytest.mark.parametrize("builder", BAD_INPUTS)
def test_api_overwrite_failure_keeps_earlier_store(builder, tmp_path, earlier_store):
    bad = builder(tmp_path / "data")
    before = snapshot(earlier_store)
    with pytest.raises(bad.error):
        prepare(bad.path, earlier_store, exact_options(**_options(builder)), overwrite=True)
    assert snapshot(earlier_store) == before
    assert leftovers(earlier_store) == []


def test_errors_are_synthaug_errors():
    assert issubclass(DatasetError, SynthaugError)


def test_parallel_workers_report_the_failing_case(tmp_path):
    """With a process pool the worker's DatasetError reaches the caller intact."""
    cases = make_cases(4, label_values=(0, 1))
    root = write_msd(tmp_path / "data", cases, ["MR"], LABELS)
    label = cases[2].label.copy()
    label[5, 5, 5] = 7
    _msd_label(root, cases[2], label, cases[2].affine)
    out = tmp_path / "store"
    with pytest.raises(DatasetError, match=r"case_002.*not declared"):
        prepare(root, out, exact_options(workers=2))
    _assert_nothing_written(out)


def test_geometry_within_tolerance_is_accepted(tmp_path):
    """Float rounding of the label's header (well below the tolerance) is not a mismatch."""
    root, cases = _msd(tmp_path / "data")
    affine = make_affine(spacing=(1.0, 1.0, 1.0 + 1e-6), origin=(1e-4, 0.0, -1e-4))
    _msd_label(root, cases[1], cases[1].label, affine)
    store = prepare(root, tmp_path / "store", exact_options())
    assert store.patients == ["case_000", "case_001"]


def test_geometry_tolerance_option_loosens_the_check(tmp_path):
    bad = origin_mismatch(tmp_path / "data")
    with pytest.raises(DatasetError):
        prepare(bad.path, tmp_path / "strict", exact_options())
    store = prepare(bad.path, tmp_path / "loose", exact_options(geometry_tolerance=0.1))
    assert len(store.patients) == 2


def test_nan_repaired_when_asked(tmp_path):
    bad = nan_voxels(tmp_path / "data")
    store = prepare(bad.path, tmp_path / "store", exact_options(repair_nonfinite=True))
    assert np.isfinite(np.asarray(store.images, dtype=np.float32)).all()


def test_case_load_alone_reports_the_file(tmp_path):
    """The lazy reader names the file too (used by later stages that read cases directly)."""
    from synthaug.data import load_dataset

    bad = truncated_nii_gz(tmp_path / "data")
    spec = load_dataset(bad.path)
    spec.cases[0].load()
    with pytest.raises(DatasetError, match="case_001.nii.gz"):
        spec.cases[1].load()


# -- CLI, in-process ------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", BAD_INPUTS)
def test_cli_one_error_line_and_exit_2(builder, tmp_path, run_cli):
    bad = builder(tmp_path / "data")
    out = tmp_path / "store"
    result = run_cli(*_cli_args(bad, out, _options(builder)["folds"]))
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("error: ")
    _check_message(result.err_lines[0], bad)
    assert result.out == ""
    _assert_nothing_written(out)


@pytest.mark.parametrize("builder", BAD_INPUTS)
def test_cli_overwrite_failure_keeps_earlier_store(builder, tmp_path, run_cli, earlier_store):
    bad = builder(tmp_path / "data")
    before = snapshot(earlier_store)
    result = run_cli(*_cli_args(bad, earlier_store, _options(builder)["folds"], "--overwrite"))
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert snapshot(earlier_store) == before
    assert leftovers(earlier_store) == []


def test_cli_existing_output_without_overwrite(tmp_path, run_cli, earlier_store, tiny_msd):
    before = snapshot(earlier_store)
    result = run_cli(*_cli_args(Bad(tiny_msd, ()), earlier_store, 2))
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert "already exists" in result.err_lines[0] and "--overwrite" in result.err_lines[0]
    assert snapshot(earlier_store) == before


# -- CLI, real subprocess ---------------------------------------------------------------------------


def _run_module(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTHAUG_QUIET": "1"}
    return subprocess.run(
        [sys.executable, "-m", "synthaug", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    "builder",
    [
        pytest.param(truncated_nii_gz, id="truncated-nii-gz"),
        pytest.param(origin_mismatch, id="origin-mismatch"),
        pytest.param(truncated_mha, id="truncated-mha"),
    ],
)
def test_subprocess_prepare_fails_cleanly(builder, tmp_path):
    bad = builder(tmp_path / "data")
    out = tmp_path / "new_store"
    proc = _run_module(_cli_args(bad, out, 2), tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    _check_message(lines[0], bad)
    assert proc.stdout == ""
    _assert_nothing_written(out)
    # (that --overwrite keeps the earlier store on these failures too:
    # test_cli_overwrite_failure_keeps_earlier_store, in-process)


def test_json_error_message_has_line_number(tmp_path):
    bad = invalid_json(tmp_path / "data")
    with pytest.raises(DatasetError, match=r"line \d+"):
        prepare(bad.path, tmp_path / "store", exact_options())
