"""The real-patients axis: nested seeded subsets, generators and U-Nets of a level trained on
exactly its patients (refused otherwise), what a synthetic patient is worth in real
patients, per-level comparisons, and deformed real masks that keep their classes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from synthaug.data.mask_augment import deform_masks
from synthaug.errors import SynthaugError
from synthaug.generator import TrainRequest
from synthaug.gmm.family import GMM
from synthaug.seg.train import SegOptions, train_seg
from synthaug.stages.generate import GenerateOptions, generate
from synthaug.stats.analysis import analyse
from synthaug.stats.worth import equivalent_real_patients, pooled_monotone, worth_table
from synthaug.study.config import parse_study


def test_subsets_are_nested_seeded_and_leave_validation_and_test_alone(toy_store):
    train = toy_store.split(0).train
    two, three = toy_store.training_patients(0, 2), toy_store.training_patients(0, 3)
    assert set(two) < set(three) < set(train) and len(two) == 2 and len(three) == 3
    assert toy_store.training_patients(0, 2) == two  # the same subset every time
    assert toy_store.training_patients(0) == train
    assert [p for p in train if p in two] == two  # in the split's order
    other_seed = {tuple(toy_store.training_patients(0, 2, seed=s)) for s in range(6)}
    assert len(other_seed) > 1  # the subset depends on its seed
    with pytest.raises(SynthaugError, match="has 4 training patients, so a subset of 5"):
        toy_store.training_patients(0, 5)


def test_a_levels_generator_and_unet_use_exactly_its_patients(toy_store, tmp_path):
    request = TrainRequest(str(toy_store.path), 0, "painter", str(tmp_path / "gmm2"),
                           "default", real_patients=2)  # fmt: skip
    run = GMM.train(request)
    assert GMM.describe(run).train_patients == toy_store.training_patients(0, 2)
    with pytest.raises(SynthaugError, match="train_patients=2 patients, not 4"):
        GMM.train(replace(request, resume=True, real_patients=None))
    syn = tmp_path / "syn"
    generate(GenerateOptions(str(run), "real-mask-gmm", 2, str(syn), seed=1))
    recorded = json.loads((syn / "dataset.json").read_text())["synthaug"]["train_patients"]
    assert recorded == toy_store.training_patients(0, 2)
    base = dict(store=str(toy_store.path), fold=0, synthetic=str(syn), n_patients=1,
                preset="cpu-micro", max_steps=2)  # fmt: skip
    with pytest.raises(SynthaugError, match="made from 2 real training patients, not the 4"):
        train_seg(SegOptions(**base, out=str(tmp_path / "all")))  # all 4 real + a 2-patient set
    assert not (tmp_path / "all" / "results.json").exists()
    result = train_seg(SegOptions(**base, out=str(tmp_path / "two"), real_patients=2))
    assert result.real_patients == 2 and result.real_train_patients == 2


def test_deformed_masks_keep_every_class_and_follow_their_seed():
    masks = np.zeros((6, 32, 32), np.int64)
    masks[:, 8:24, 8:24] = 1
    masks[:, 15, 15] = 2  # one pixel: easily lost by a careless deformation
    masks[3, 0, 31] = 2  # at the corner: pushed out by most shifts
    deformed = deform_masks(masks, seed=3)
    for before, after in zip(masks, deformed, strict=True):
        assert set(np.unique(after)) == set(np.unique(before))
    assert (deformed != masks).mean() > 0.01  # they did move
    assert np.array_equal(deform_masks(masks, seed=3), deformed)
    assert not np.array_equal(deform_masks(masks, seed=4), deformed)


def _curve_table(source_dice: dict[int, float], spread: float = 0.01) -> pd.DataFrame:
    """Real-only Dice 0.5 / 0.6 / 0.7 at 4 / 8 / 16 patients on two folds (± spread), and a
    source's cells at level 4 with the given Dice per n (± 3 spread: the folds disagree)."""
    rows = []
    for fold, shift in ((0, -spread), (1, spread)):
        for level, dice in ((4, 0.5), (8, 0.6), (16, 0.7)):
            rows.append(dict(dataset="d", source="none", n=0, fold=fold, seed=0,
                             class_name="mean", dice=dice + shift, real_patients=str(level),
                             train_patients=level))  # fmt: skip
        for n, dice in source_dice.items():
            rows.append(dict(dataset="d", source="s", n=n, fold=fold, seed=0,
                             class_name="mean", dice=dice + 3 * shift, real_patients="4",
                             train_patients=4))  # fmt: skip
    return pd.DataFrame(rows)


def test_worth_reads_the_real_only_curve_and_never_extrapolates():
    worth = {e["n"]: e for e in worth_table(_curve_table({2: 0.6, 4: 0.75, 8: 0.45}))}
    assert worth[2]["equivalent_real_patients"] == pytest.approx(8.0)
    lo, hi = worth[2]["ci"]
    assert lo < 8.0 < hi  # each fold reads its own curve
    assert worth[4]["equivalent_real_patients"] is None
    assert "more than 16 real patients" in worth[4]["note"]
    assert worth[8]["equivalent_real_patients"] is None
    assert "less than 4 real patients" in worth[8]["note"]
    assert worth[2]["real_patients"] == "4" and worth[2]["source"] == "s"
    # halfway in log r between 4 and 8 patients is sqrt(32), not 6
    assert equivalent_real_patients([4, 8], [0.5, 0.6], 0.55)[0] == pytest.approx(32**0.5)
    assert pooled_monotone([0.5, 0.7, 0.6, 0.8]) == pytest.approx([0.5, 0.65, 0.65, 0.8])
    assert worth_table(_curve_table({2: 0.6}).query("real_patients == '4'")) == []


def test_each_level_is_compared_with_its_own_real_only_cells_under_one_holm():
    rows = []
    for fold in range(5):
        for level, base in (("4", 0.5), ("all", 0.7)):
            rows.append(dict(dataset="d", source="none", n=0, fold=fold, seed=0,
                             class_name="mean", dice=base + 0.01 * fold, real_patients=level,
                             train_patients=4 if level == "4" else 16, test_patients=4))  # fmt: skip
            gain = 0.08 if level == "4" else 0.0
            rows.append(dict(dataset="d", source="s", n=2, fold=fold, seed=0, class_name="mean",
                             dice=base + gain + 0.01 * fold + 0.002 * (fold % 2),
                             real_patients=level, train_patients=4 if level == "4" else 16,
                             test_patients=4))  # fmt: skip
    stats = analyse(pd.DataFrame(rows))
    comps = stats.comparisons.set_index("dataset")
    assert set(comps.index) == {"d · 4 real", "d · all real"}
    assert comps.loc["d · 4 real", "mean_diff"] == pytest.approx(0.081, abs=1e-3)
    assert comps.loc["d · all real", "mean_diff"] == pytest.approx(0.001, abs=1e-3)
    # Holm over both levels' comparisons: the smaller p doubled, the larger kept (monotone)
    small, large = sorted(comps["p_value"])
    assert sorted(comps["p_holm"]) == pytest.approx(
        [min(1, 2 * small), max(min(1, 2 * small), large)]
    )
    assert comps.loc["d · 4 real", "significant"] and not comps.loc["d · all real", "significant"]
    assert stats.as_dict()["worth"]  # the two levels give a curve


def test_the_config_takes_nested_levels_and_refuses_what_cannot_be(study_store):
    raw = {"datasets": [{"name": "toy", "store": str(study_store.path)}], "n_levels": [0, 1],
           "folds": [0], "sources": ["real-mask-gmm"]}  # fmt: skip
    assert parse_study({**raw, "real_patients": [2, "all"]}).real_patients == [2, None]
    assert parse_study(raw).real_patients == [None]
    for bad, message in (([3, 2], "strictly increasing"), (["all", 2], "all last"),
                         ([0], "at least 1"), ([50], "do not fit fold 0")):  # fmt: skip
        with pytest.raises(SynthaugError, match=message):
            parse_study({**raw, "real_patients": bad})
    before = parse_study(raw).fingerprint()
    assert parse_study({**raw, "real_patients": ["all"]}).fingerprint() == before
    assert parse_study({**raw, "real_patients": [2, "all"]}).fingerprint() != before


def test_a_study_along_the_real_patients_axis(study_store, tmp_path):
    from synthaug.report.html import make_report
    from synthaug.stages.sources import GeneratorRef
    from synthaug.study.layout import StudyLayout
    from synthaug.study.records import read_results
    from synthaug.study.runner import run_study

    raw = {"name": "levels", "datasets": [{"name": "toy", "store": str(study_store.path)}],
           "sources": ["real-mask-gmm", "augmented-mask-gmm"], "n_levels": [0, 1],
           "folds": [0, 1], "real_patients": [2, "all"], "gmm": {"allow_unusable": True},
           "seg": {"preset": "cpu-micro", "max_steps": 20}, "quality": {"enabled": False}}  # fmt: skip
    results = run_study(parse_study(raw), tmp_path / "study", workers=1)
    df = read_results(results)
    assert set(df["real_patients"].astype(str)) == {"2", "all"}
    assert set(df.loc[df["real_patients"].astype(str) == "2", "train_patients"]) == {2}
    layout = StudyLayout(tmp_path / "study")
    for fold in (0, 1):
        run = layout.generator_run("toy", fold, GeneratorRef("gmm", "painter"), 2)
        recorded = json.loads((run / "run.json").read_text())["train_patients"]
        assert recorded == study_store.training_patients(fold, 2)
    stats = json.loads(layout.stats.read_text())
    assert {w["real_patients"] for w in stats["worth"]} == {"2", "all"}
    assert {c["dataset"] for c in stats["comparisons"]} == {"toy · 2 real", "toy · all real"}
    assert make_report(results, tmp_path / "report").is_file()
