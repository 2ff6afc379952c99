"""Patient-level k-fold splits: disjoint, complete, seeded; recorded in the store."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.data import prepare
from synthaug.data.splits import kfold_splits
from synthaug.errors import SynthaugError
from tests.helpers.data import exact_options

IDS = [f"patient_{i:02d}" for i in range(23)]


def _check_partition(ids: list[str], splits: list[dict[str, list[str]]], folds: int) -> None:
    assert len(splits) == folds
    tests = [set(s["test"]) for s in splits]
    # every patient in exactly one fold's test set
    counts = {p: sum(p in t for t in tests) for p in ids}
    assert all(c == 1 for c in counts.values()), counts
    assert set().union(*tests) == set(ids)
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    for s in splits:
        train, val, test = set(s["train"]), set(s["val"]), set(s["test"])
        assert not train & val and not train & test and not val & test
        assert train | val | test == set(ids)
        assert (
            len(s["train"]) == len(train)
            and len(s["val"]) == len(val)
            and len(s["test"]) == len(test)
        )
        assert s["train"] == sorted(s["train"]) and s["test"] == sorted(s["test"])


@pytest.mark.parametrize(
    ("n", "folds", "seed", "val_fraction"),
    [
        (23, 5, 0, 0.2),
        (23, 5, 7, 0.2),
        (10, 2, 1, 0.3),
        (5, 5, 3, 0.2),
        (6, 3, 2, 0.0),
        (2, 2, 0, 0.2),
    ],
)
def test_splits_partition_patients(n, folds, seed, val_fraction):
    ids = IDS[:n]
    splits = kfold_splits(ids, folds, seed, val_fraction)
    _check_partition(ids, splits, folds)
    for s in splits:
        rest = n - len(s["test"])
        if val_fraction == 0:
            assert s["val"] == []
        elif rest >= 2:
            assert 1 <= len(s["val"]) <= rest - 1  # always some validation and some training
            assert len(s["val"]) == min(max(round(val_fraction * rest), 1), rest - 1)
        assert len(s["train"]) >= 1


def test_splits_deterministic_for_a_seed():
    assert kfold_splits(IDS, 5, 42, 0.2) == kfold_splits(list(IDS), 5, 42, 0.2)


def test_splits_differ_between_seeds():
    a = kfold_splits(IDS, 5, 0, 0.2)
    b = kfold_splits(IDS, 5, 1, 0.2)
    assert [s["test"] for s in a] != [s["test"] for s in b]
    # not just a relabelling of the folds: the test sets themselves differ
    assert {tuple(s["test"]) for s in a} != {tuple(s["test"]) for s in b}


def test_splits_do_not_depend_on_id_order_only_via_seed():
    """The assignment is a seeded shuffle, not the input order chopped into chunks."""
    splits = kfold_splits(IDS, 5, 0, 0.2)
    chunks = [sorted(c.tolist()) for c in np.array_split(np.array(IDS), 5)]
    assert [s["test"] for s in splits] != chunks


def test_validation_patients_vary_between_folds():
    splits = kfold_splits(IDS, 5, 0, 0.2)
    assert len({tuple(s["val"]) for s in splits}) == 5


def test_more_folds_than_patients_is_an_error():
    with pytest.raises(SynthaugError, match="folds"):
        kfold_splits(IDS[:3], 4, 0)


# -- splits recorded in the store -----------------------------------------------------------------


def test_store_records_the_splits(tiny_store):
    opts = tiny_store.meta["options"]
    expected = kfold_splits(tiny_store.patients, opts["folds"], opts["seed"], opts["val_fraction"])
    assert [
        {k: f[k] for k in ("train", "val", "test")} for f in tiny_store.meta["folds"]
    ] == expected
    assert [f["fold"] for f in tiny_store.meta["folds"]] == list(range(len(expected)))
    _check_partition(tiny_store.patients, expected, tiny_store.num_folds)
    for fold in range(tiny_store.num_folds):
        split = tiny_store.split(fold)
        assert split.fold == fold
        assert split.test == expected[fold]["test"]


def test_store_slices_never_straddle_train_and_test(tiny_store):
    for fold in range(tiny_store.num_folds):
        split = tiny_store.split(fold)
        parts = [
            set(tiny_store.indices(group).tolist())
            for group in (split.train, split.val, split.test)
        ]
        assert all(parts), "each group has slices"
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
        assert set().union(*parts) == set(range(len(tiny_store.images)))


def test_prepare_seed_sets_the_folds(tiny_msd, tmp_path):
    a = prepare(tiny_msd, tmp_path / "a", exact_options(folds=2, seed=11))
    b = prepare(tiny_msd, tmp_path / "b", exact_options(folds=2, seed=11))
    assert a.meta["folds"] == b.meta["folds"]
    assert [f["test"] for f in a.meta["folds"]] == [
        s["test"] for s in kfold_splits(a.patients, 2, 11, a.meta["options"]["val_fraction"])
    ]
    # a seed that assigns these 4 patients differently gives a store with those folds
    other_seed = next(
        s
        for s in range(12, 40)
        if [f["test"] for f in kfold_splits(a.patients, 2, s, 0.2)]
        != [f["test"] for f in a.meta["folds"]]
    )
    c = prepare(tiny_msd, tmp_path / "c", exact_options(folds=2, seed=other_seed))
    assert [f["test"] for f in c.meta["folds"]] != [f["test"] for f in a.meta["folds"]]
    assert c.meta["options"]["seed"] == other_seed
