"""Repeated k-fold cross-validation: R seeded k-fold splits of the same patients in one store
(repeat 0 the plain split), a study config that names them (``folds: k, repeats: R``), and
the dry run's power of each choice."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from synthaug.data import prepare
from synthaug.data.options import PrepareOptions
from synthaug.data.splits import kfold_splits, repeated_kfold_splits
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.stats.core import min_detectable_effect
from synthaug.study.config import kfold_rho, parse_study
from synthaug.study.dry_run import describe_plan
from tests.helpers.data import exact_options
from tests.helpers.toy import write_toy_msd

IDS = [f"patient_{i:02d}" for i in range(23)]


def _partitions(ids: list[str], splits: list[dict]) -> None:
    """The splits of one repeat: every case in exactly one test set, roles disjoint."""
    tests = [set(s["test"]) for s in splits]
    assert sorted(p for t in tests for p in t) == sorted(ids)
    for s in splits:
        train, val, test = set(s["train"]), set(s["val"]), set(s["test"])
        assert not train & val and not train & test and not val & test
        assert train | val | test == set(ids)


def _by_repeat(splits: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for s in splits:
        out.setdefault(s["repeat"], []).append(s)
    return out


# -- the splits -------------------------------------------------------------------------------


def test_repeat_zero_is_the_plain_kfold_split():
    plain = kfold_splits(IDS, 5, 7, 0.2)
    assert kfold_splits(IDS, 5, 7, 0.2, repeat=0) == plain
    repeated = repeated_kfold_splits(IDS, 5, 3, 7, 0.2)
    assert [{k: s[k] for k in ("train", "val", "test")} for s in repeated[:5]] == plain


def test_splits_are_indexed_repeat_by_repeat():
    splits = repeated_kfold_splits(IDS, 4, 3, 0, 0.2)
    assert [s["fold"] for s in splits] == list(range(12))
    assert [s["repeat"] for s in splits] == [r for r in range(3) for _ in range(4)]
    assert [s["fold_in_repeat"] for s in splits] == [f for _ in range(3) for f in range(4)]


@pytest.mark.parametrize(
    ("n", "folds", "repeats", "seed", "val_fraction"),
    [(23, 5, 3, 0, 0.2), (10, 2, 4, 5, 0.3), (6, 3, 2, 1, 0.0), (5, 5, 2, 9, 0.2)],
)
def test_each_repeat_partitions_the_patients(n, folds, repeats, seed, val_fraction):
    ids = IDS[:n]
    by_repeat = _by_repeat(repeated_kfold_splits(ids, folds, repeats, seed, val_fraction))
    assert sorted(by_repeat) == list(range(repeats))
    for splits in by_repeat.values():
        assert len(splits) == folds
        _partitions(ids, splits)
        sizes = [len(s["test"]) for s in splits]
        assert max(sizes) - min(sizes) <= 1


def test_repeats_are_seeded():
    a = repeated_kfold_splits(IDS, 5, 3, 11, 0.2)
    assert a == repeated_kfold_splits(list(IDS), 5, 3, 11, 0.2)
    b = repeated_kfold_splits(IDS, 5, 3, 12, 0.2)
    for r in (1, 2):
        assert [s["test"] for s in _by_repeat(a)[r]] != [s["test"] for s in _by_repeat(b)[r]]


def test_repeats_differ_from_each_other():
    by_repeat = _by_repeat(repeated_kfold_splits(IDS, 5, 4, 0, 0.2))
    partitions = [frozenset(tuple(s["test"]) for s in splits) for splits in by_repeat.values()]
    assert len(set(partitions)) == 4  # not a relabelling of the same test sets
    vals = [tuple(s["val"]) for splits in by_repeat.values() for s in splits]
    assert len(set(vals)) == len(vals)  # validation draws are not shared across repeats


def test_patient_groups_are_respected_across_repeats():
    ids = [f"patient{p:03d}_frame{f:02d}" for p in range(9) for f in (1, 12)]
    groups = {c: c.split("_")[0] for c in ids}
    splits = repeated_kfold_splits(ids, 3, 3, 4, 0.3, groups)
    for s in splits:
        for role in ("train", "val", "test"):
            for case in s[role]:
                partner = [c for c in ids if groups[c] == groups[case] and c != case]
                assert all(p in s[role] for p in partner), (s["fold"], role, case)
    for splits_r in _by_repeat(splits).values():
        _partitions(ids, splits_r)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_prepare_options_refuse_bad_repeats(bad):
    with pytest.raises(SynthaugError, match="^repeats: "):
        PrepareOptions(repeats=bad).validate()
    assert PrepareOptions(repeats=3).validate().repeats == 3


def test_negative_repeat_index_is_refused():
    with pytest.raises(SynthaugError, match="repeat"):
        kfold_splits(IDS, 5, 0, repeat=-1)


# -- the store --------------------------------------------------------------------------------


def test_store_records_repeats_and_repeat_zero_is_the_plain_store(tiny_msd, tiny_store, tmp_path):
    store = prepare(tiny_msd, tmp_path / "rep", exact_options(repeats=3))
    assert store.repeats == 3 and store.folds_per_repeat == 2 and store.num_folds == 6
    assert store.meta["repeats"] == 3 and store.meta["folds_per_repeat"] == 2
    plain = tiny_store.meta["folds"]
    assert store.meta["folds"][:2] == plain  # repeat 0: exactly the store without repeats
    for i, entry in enumerate(store.meta["folds"]):
        assert (entry["fold"], entry["repeat"], entry["fold_in_repeat"]) == (i, i // 2, i % 2)
        split = store.split(i)
        assert split.fold == i and split.repeat == i // 2 and split.test == entry["test"]
    for r in range(3):
        _partitions(store.patients, store.meta["folds"][2 * r : 2 * r + 2])
    assert tiny_store.repeats == 1 and tiny_store.folds_per_repeat == tiny_store.num_folds
    assert store.fingerprint != tiny_store.fingerprint
    assert store.summary()["repeats"] == 3 and store.summary()["folds"] == 6


def test_store_prepared_before_repeats_reads_as_one_repeat(tiny_store, tmp_path):
    """A store.json without the repeat keys (written before repeated k-fold) keeps its folds,
    reads as one repeat and keeps its fingerprint."""
    old = tmp_path / "old"
    shutil.copytree(tiny_store.path, old)
    meta = json.loads((old / "store.json").read_text())
    del meta["repeats"], meta["folds_per_repeat"], meta["options"]["repeats"]
    meta["folds"] = [{k: f[k] for k in ("fold", "train", "val", "test")} for f in meta["folds"]]
    (old / "store.json").write_text(json.dumps(meta))
    store = SliceStore(old)
    assert store.repeats == 1 and store.folds_per_repeat == store.num_folds == 2
    assert [store.split(f).repeat for f in range(2)] == [0, 0]
    assert store.fingerprint == tiny_store.fingerprint


def test_cli_prepare_repeats(run_cli, tiny_msd, tmp_path):
    out = tmp_path / "store"
    args = ["prepare", "--dataset", tiny_msd, "--resolution", "14", "--crop", "none"]
    args += ["--folds", "2", "--workers", "1"]
    result = run_cli(*args, "--out", out, "--repeats", "2")
    assert result.code == 0, result.err
    assert "4 folds (2 folds × 2 repeats)" in result.err
    store = SliceStore(out)
    assert store.repeats == 2 and store.num_folds == 4
    bad = run_cli(*args, "--out", tmp_path / "bad", "--repeats", "0")
    assert bad.code != 0 and "repeats" in bad.err
    assert not (tmp_path / "bad").exists()


# -- the study config -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repeated_store(tmp_path_factory) -> SliceStore:
    """6 toy patients × 2 slices of 32 px, 3 folds × 2 repeats (read-only)."""
    tmp = tmp_path_factory.mktemp("repeated")
    ds = write_toy_msd(tmp / "ds", patients=6, slices=2)
    opts = PrepareOptions(
        resolution=32, folds=3, repeats=2, normalization=["none"], crop="none", workers=1
    )
    return prepare(ds, tmp / "store", opts)


def _study(store: SliceStore, **over) -> dict:
    raw = {
        "name": "rep",
        "datasets": [{"name": "toy", "store": str(store.path)}],
        "sources": ["joint"],
        "n_levels": [0, 1],
        "folds": 3,
        "gan": {"preset": "cpu-micro", "kimg": 0.024},
        "seg": {"preset": "cpu-micro", "max_steps": 30},
    }
    raw.update(over)
    return raw


def test_config_folds_k_with_repeats_expands_to_split_indices(repeated_store):
    config = parse_study(_study(repeated_store, repeats=2))
    assert config.folds == [0, 1, 2, 3, 4, 5] and config.repeats == 2
    # ρ is that of one 3-fold split (1/2), not of 6 folds (1/5): repeats re-split patients
    assert kfold_rho(config) == pytest.approx(0.5)
    one = parse_study(_study(repeated_store))
    assert one.folds == [0, 1, 2] and one.repeats == 1
    assert parse_study(_study(repeated_store, folds=[0, 1, 2])).folds == [0, 1, 2]
    # repeats 1 adds nothing to the fingerprint: studies before repeats keep theirs
    assert one.fingerprint() == parse_study(_study(repeated_store, folds=[0, 1, 2])).fingerprint()
    assert config.fingerprint() != one.fingerprint()
    # the study record (to_dict, read back by the report) parses to the same config
    again = parse_study(config.to_dict())
    assert again.folds == config.folds and again.repeats == 2
    assert again.fingerprint() == config.fingerprint()


def test_config_refuses_a_store_with_fewer_repeats(repeated_store):
    with pytest.raises(SynthaugError) as info:
        parse_study(_study(repeated_store, repeats=3))
    message = str(info.value)
    assert message.startswith("repeats: ")
    assert str(repeated_store.path) in message
    assert "synthaug prepare --folds 3 --repeats 3" in message


def test_config_refuses_another_k(repeated_store):
    with pytest.raises(SynthaugError, match=r"^folds: .*synthaug prepare --folds 5 --repeats 2"):
        parse_study(_study(repeated_store, folds=5, repeats=2))


def test_config_refuses_repeats_on_a_store_prepared_without(study_store):
    with pytest.raises(SynthaugError, match=r"^repeats: .*1 repeat\(s\).*--repeats 2"):
        parse_study(_study(study_store, folds=2, repeats=2))
    assert parse_study(_study(study_store, folds=2)).folds == [0, 1]


def test_config_refuses_listed_folds_of_later_repeats(repeated_store):
    """Split indices of repeat 1 listed without ``repeats`` would pass as one repeat's folds."""
    with pytest.raises(SynthaugError, match=r"^folds: split indices \[3, 4\]"):
        parse_study(_study(repeated_store, folds=[0, 3, 4]))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"repeats": 0}, "repeats"),
        ({"repeats": "2"}, "repeats"),
        ({"repeats": True}, "repeats"),
        ({"folds": 1}, "folds"),
        ({"folds": True}, "folds"),
        ({"folds": "3"}, "folds"),
    ],
)
def test_bad_folds_or_repeats_name_the_field(repeated_store, change, field):
    with pytest.raises(SynthaugError, match=rf"^{field}: "):
        parse_study(_study(repeated_store, **change))


# -- the dry run ------------------------------------------------------------------------------

ROW = re.compile(r"^\s+(\d+) × (\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)")


def _table(text: str) -> dict[tuple[int, int], tuple[int, float, float, str, str]]:
    rows = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            k, r, j = int(m[1]), int(m[2]), int(m[3])
            rows[(k, r)] = (j, float(m[4]), float(m[5]), m[6], line)
    return rows


def test_dry_run_prints_the_power_of_repeats(repeated_store, tmp_path):
    config = parse_study(_study(repeated_store, repeats=2))
    text = describe_plan(config, tmp_path / "out")
    assert "3 × 2 repeats" in text and "Bouckaert–Frank" in text
    assert "ρ" in text and "does not shrink" in text
    rows = _table(text)
    assert {(3, 2), (5, 1), (5, 2), (5, 3), (5, 5), (10, 1)} <= set(rows)
    j, rho, factor, mde, line = rows[(3, 2)]
    assert "planned" in line and j == 6
    assert rho == pytest.approx(0.5, abs=1e-3)
    assert factor == pytest.approx((1 / 6 + 0.5) ** 0.5, abs=1e-3)
    assert float(mde) == pytest.approx(min_detectable_effect(1.0, 6, 0.5, 0.05), abs=0.006)
    five = [float(rows[(5, r)][3]) for r in (1, 2, 3, 5)]
    assert five == sorted(five, reverse=True) and five[0] > five[-1]  # shrinks with repeats
    assert five[0] == pytest.approx(min_detectable_effect(1.0, 5, 0.25), abs=0.01)
    assert [rows[(5, r)][0] for r in (1, 2, 3, 5)] == [5, 10, 15, 25]
    # the ρ term stays with repeats: the correction factor never falls below √ρ
    assert all(rows[(5, r)][2] > 0.25**0.5 for r in (1, 2, 3, 5))
    # 10 folds need 10 patients: this store has 6, so no MDE is promised
    assert rows[(10, 1)][3] == "—" and "needs 10 patients" in rows[(10, 1)][4]


def test_dry_run_of_a_plain_study_marks_it_planned(repeated_store, tmp_path):
    text = describe_plan(parse_study(_study(repeated_store)), tmp_path / "out")
    rows = _table(text)
    assert "planned" in rows[(3, 1)][4] and rows[(3, 1)][0] == 3
    assert float(rows[(3, 1)][3]) > float(rows[(5, 5)][3])


def test_dry_run_of_listed_splits_promises_no_mde_for_one_pair(study_store, tmp_path):
    text = describe_plan(parse_study(_study(study_store, folds=[0])), tmp_path / "out")
    planned = next(line for line in text.splitlines() if "(planned)" in line)
    assert planned.split()[:4] == ["1", "of", "2", "×"] and "—" in planned
