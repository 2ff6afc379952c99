"""Folds split patients, not cases: several cases of one patient never cross folds."""

from __future__ import annotations

import pytest

from synthaug.data import prepare
from synthaug.data.splits import kfold_splits, patient_groups
from synthaug.errors import SynthaugError
from tests.helpers.data import exact_options, make_case, write_msd

ACDC_IDS = [f"patient{p:03d}_frame{f:02d}" for p in range(1, 9) for f in (1, 12)]


@pytest.fixture(scope="module")
def acdc_like(tmp_path_factory):
    """An ACDC-like dataset: 8 patients with an end-diastolic and an end-systolic frame."""
    cases = [make_case(case_id, seed=i) for i, case_id in enumerate(ACDC_IDS)]
    return write_msd(tmp_path_factory.mktemp("acdc") / "msd", cases, ["MR"], {0: "bg", 1: "lv"})


def _roles(split: dict[str, list[str]], case: str) -> str:
    return next(role for role, ids in split.items() if case in ids)


def test_grouped_cases_never_cross_folds(acdc_like, tmp_path):
    store = prepare(acdc_like, tmp_path / "s", exact_options(folds=4, val_fraction=0.3))
    assert store.meta["grouping"] == "auto: ACDC frames"
    assert store.groups["patient003_frame12"] == "patient003"
    for fold in range(store.num_folds):
        split = store.split(fold)
        roles = {"train": split.train, "val": split.val, "test": split.test}
        for p in range(1, 9):
            frames = [f"patient{p:03d}_frame01", f"patient{p:03d}_frame12"]
            assert _roles(roles, frames[0]) == _roles(roles, frames[1]), (fold, p)
    summary = store.summary()
    assert summary["patient_groups"] == 8 and len(summary["grouped_cases"]) == 8
    # Case-level splitting would have put frames of one patient on both sides.
    ungrouped = kfold_splits(store.patients, 4, 0, 0.3)
    crossed = any(
        _roles(s, f"patient{p:03d}_frame01") != _roles(s, f"patient{p:03d}_frame12")
        for s in ungrouped
        for p in range(1, 9)
    )
    assert crossed


def test_a_regex_groups_and_none_does_not(acdc_like, tmp_path):
    by_regex = prepare(acdc_like, tmp_path / "r", exact_options(folds=4, group=r"^(patient\d+)_"))
    assert by_regex.meta["grouping"].startswith("regex")
    assert len(set(by_regex.groups.values())) == 8
    none = prepare(acdc_like, tmp_path / "n", exact_options(folds=4, group="none"))
    assert len(set(none.groups.values())) == 16


def test_grouping_that_changes_nothing_gives_the_old_splits():
    ids = [f"case_{i:03d}" for i in range(23)]
    groups, how = patient_groups(ids, "auto")
    assert how.startswith("auto: none") and groups == {i: i for i in ids}
    assert kfold_splits(ids, 5, 3, 0.2, groups) == kfold_splits(ids, 5, 3, 0.2)


def test_brats_time_points_are_one_patient():
    ids = ["BraTS-GLI-00001-000", "BraTS-GLI-00001-001", "BraTS-GLI-00002-000"]
    groups, how = patient_groups(ids, "auto")
    assert how == "auto: BraTS time points"
    assert groups["BraTS-GLI-00001-001"] == groups["BraTS-GLI-00001-000"] != groups[ids[2]]


@pytest.mark.parametrize(
    ("group", "message"),
    [("patient(", "not a regular expression"), ("patient", "capture group"), (r"^(x)\d", "match")],
)
def test_bad_groupings_name_the_problem(group, message):
    with pytest.raises(SynthaugError, match=message):
        patient_groups(ACDC_IDS, group)


def test_too_few_groups_for_the_folds(acdc_like, tmp_path):
    with pytest.raises(SynthaugError, match="9 patient groups|patient groups"):
        prepare(acdc_like, tmp_path / "s", exact_options(folds=9))
    assert not (tmp_path / "s").exists()
