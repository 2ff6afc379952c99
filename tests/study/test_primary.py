"""The primary test is made for cross-validation: crafted tables with answers worked by hand
or by scipy / baycomp (issue 21)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from baycomp.single import Posterior
from scipy import stats as ss

from synthaug.errors import SynthaugError
from synthaug.stats.analysis import analyse, compare_sources, design_floors
from synthaug.stats.core import fold_units, nadeau_bengio
from synthaug.study.config import parse_study

TEST, TRAIN, VAL = 2, 10, 4  # patients per fold: rho = 2 / (10 + 4)


def _rows(diffs_by_cell: dict[tuple[str, str, int], list[float]], capped=()) -> pd.DataFrame:
    """A results table from exact fold differences: baseline 0.7 + a per-fold offset, and
    each (dataset, source, n) at baseline + its difference for that fold."""
    rows = []
    for (dataset, source, n), diffs in diffs_by_cell.items():
        for fold, d in enumerate(diffs):
            base = 0.7 + 0.01 * fold
            cell = {"dataset": dataset, "fold": fold, "seed": 0, "class_name": "mean",
                    "test_patients": TEST, "train_patients": TRAIN, "val_patients": VAL}  # fmt: skip
            rows.append({**cell, "source": "none", "n": 0, "dice": base, "capped": False})
            hit = (dataset, source, n, fold) in capped
            rows.append({**cell, "source": source, "n": n, "dice": base + d, "capped": hit})
    return pd.DataFrame(rows).drop_duplicates(subset=["dataset", "source", "n", "fold", "seed"])


# Ten folds, every difference positive but small against its spread.
SMALL_POSITIVE = [0.001, 0.002, 0.004, 0.006, 0.008, 0.010, 0.012, 0.016, 0.025, 0.045]


def test_all_positive_but_noisy_differences_are_not_a_gain():
    df = _rows({("A", "s", 4): SMALL_POSITIVE})
    row = analyse(df).comparisons.iloc[0]
    d = np.array(SMALL_POSITIVE)
    # By hand: Wilcoxon sees ten positive signs (p = 2/2^10), the corrected t sees the spread.
    assert row["wilcoxon_p"] == pytest.approx(2 / 2**10)
    rho = TEST / (TRAIN + VAL)
    t = d.mean() / math.sqrt((1 / 10 + rho) * d.var(ddof=1))
    p = 2 * ss.t.sf(t, 9)
    assert row["t"] == pytest.approx(t) and row["p_value"] == pytest.approx(p)
    assert 0.05 < p < 0.1  # corrected t p ≈ 0.08 where Wilcoxon claims 0.002
    assert not row["significant"] and row["direction"] == "none"


def test_a_clear_gain_is_significant_and_its_interval_is_the_corrected_t():
    diffs = [0.05, 0.06, 0.055, 0.045, 0.052, 0.058, 0.049, 0.051, 0.06, 0.047]
    row = analyse(_rows({("A", "s", 4): diffs})).comparisons.iloc[0]
    test = nadeau_bengio(diffs, TEST / (TRAIN + VAL))
    half = ss.t.ppf(0.975, 9) * test.se
    assert row["significant"] and row["direction"] == "gain"
    assert row["ci_low"] == pytest.approx(test.mean - half)
    assert row["ci_high"] == pytest.approx(test.mean + half)


def test_a_capped_cell_on_either_side_decides_nothing():
    diffs = [0.05, 0.06, 0.055, 0.045, 0.052, 0.058, 0.049, 0.051, 0.06, 0.047]
    df = _rows({("A", "s", 4): diffs}, capped={("A", "s", 4, 3)})
    stats = analyse(df)
    row = stats.comparisons.iloc[0]
    assert row["capped"] and row["direction"] == "none" and not row["significant"]
    assert "step cap" in row["note"] and stats.capped_cells == 1
    # The real-only side capped instead: the same.
    df = _rows({("A", "s", 4): diffs})
    df.loc[(df["source"] == "none") & (df["fold"] == 0), "capped"] = True
    assert analyse(df).comparisons.iloc[0]["direction"] == "none"


def test_holm_runs_over_every_comparison_the_verdict_reports():
    diffs = [0.02, 0.03, 0.025, 0.015, 0.022, 0.028, 0.019, 0.021, 0.03, 0.017]
    cells = {(d, s, n): diffs for d in ("A", "B") for s in ("s", "t") for n in (2, 4)}
    stats = analyse(_rows(cells))
    comps = stats.comparisons
    assert len(comps) == 8
    # Every p is the same; Holm over one family of 8 multiplies the smallest by 8.
    assert comps["p_holm"].min() == pytest.approx(min(1.0, comps["p_value"].min() * 8))
    assert comps["mde_alpha"].tolist() == pytest.approx([0.05 / 8] * 8)
    assert json.loads(json.dumps(stats.as_dict()))["comparisons"][0]["primary_test"].startswith(
        "Nadeau-Bengio"
    )


def test_bouckaert_frank_over_repeats_matches_a_hand_computation():
    # 2 repeats × 5 folds: J = 10 differences, t = mean / sqrt((1/(k r) + n2/n1) var).
    diffs = [0.01, 0.03, -0.01, 0.02, 0.04, 0.0, 0.02, 0.01, 0.03, 0.05]
    df = _rows({("A", "s", 4): diffs})
    stats = analyse(df, repeats=2)
    row = stats.comparisons.iloc[0]
    d = np.array(diffs)
    t = d.mean() / math.sqrt((1 / (5 * 2) + TEST / (TRAIN + VAL)) * d.var(ddof=1))
    assert row["t"] == pytest.approx(t)
    assert row["p_value"] == pytest.approx(2 * ss.t.sf(abs(t), 5 * 2 - 1))
    assert "Bouckaert-Frank" in stats.primary_test and "2 repeats" in stats.primary_test


def test_rho_comes_from_the_split_sizes_not_the_number_of_folds_used():
    # Two folds of a 5-fold split: rho is 4 / (12 + 4) from the patients, not 1 / (2 - 1).
    df = _rows({("A", "s", 4): [0.01, 0.03]})
    df["test_patients"], df["train_patients"], df["val_patients"] = 4, 12, 4
    assert analyse(df).comparisons.iloc[0]["rho"] == pytest.approx(0.25)


def test_bayes_primary_decides_on_the_posterior():
    diffs = [0.05, 0.06, 0.055, 0.045, 0.052, 0.058, 0.049, 0.051, 0.06, 0.047]
    df = _rows({("A", "s", 4): diffs, ("A", "s", 8): SMALL_POSITIVE})
    comps = analyse(df, primary="bayes", rope=0.01).comparisons.set_index("n")
    test = nadeau_bengio(diffs, TEST / (TRAIN + VAL))
    harm, equivalent, gain = Posterior(test.mean, test.se**2, test.df, 0.01).probs()
    assert comps.loc[4, "p_gain"] == pytest.approx(gain)
    assert comps.loc[4, "direction"] == "gain"
    assert comps.loc[8, "direction"] == "none" and comps.loc[8, "p_gain"] < 0.95


def test_rope_zero_runs_and_has_no_equivalence():
    stats = analyse(_rows({("A", "s", 4): SMALL_POSITIVE}), rope=0.0)
    row = stats.comparisons.iloc[0]
    assert row["p_equivalent"] == 0.0
    assert row["p_gain"] + row["p_harm"] == pytest.approx(1.0)


def test_hd95_lower_is_better():
    df = _rows({("A", "s", 4): SMALL_POSITIVE[::-1]})
    df["hd95"] = 10.0 - 100 * (df["dice"] - 0.7)  # the same cells, distances fall as Dice rises
    df.loc[df["source"] != "none", "hd95"] -= 3.0
    row = analyse(df, metric="hd95", rope=0.5).comparisons.iloc[0]
    assert row["mean_diff"] < 0 and row["p_gain"] > row["p_harm"]


def test_source_comparisons_never_have_more_blocks_than_datasets():
    diffs = {(d, s, 4): list(np.linspace(0.0, 0.02, 6) + i * 0.01)
             for i, (d, s) in enumerate((d, s) for d in "ABC" for s in ("s", "t", "u"))}  # fmt: skip
    df = _rows(diffs)
    across, pairs = compare_sources(df, fold_units(df))
    assert (across["blocks"] <= 3).all() and across["blocks"].max() == 3
    assert across.iloc[0]["test"] == "Friedman"
    # Per dataset: each pair of sources by the corrected t over that dataset's folds.
    assert len(pairs) == 3 * 3 and (pairs["folds"] == 6).all()


def test_signed_rank_over_datasets_needs_five():
    two = analyse(_rows({(d, "s", 4): SMALL_POSITIVE for d in "AB"}))
    assert two.across_datasets.empty and "needs at least 5" in two.across_notes[0]
    five = analyse(_rows({(d, "s", 4): SMALL_POSITIVE for d in "ABCDE"}))
    assert len(five.across_datasets) == 1 and not five.across_notes


def test_a_class_no_model_learns_is_named():
    df = _rows({("A", "s", 4): SMALL_POSITIVE})
    lesion = df.assign(class_name="lesion", dice=0.0)
    stats = analyse(pd.concat([df, lesion], ignore_index=True))
    assert stats.unlearned == [
        {"dataset": "A", "class_name": "lesion", "best_dice": 0.0, "cells": len(lesion)}
    ]


def test_design_warning_is_about_what_the_corrected_test_can_detect():
    few = design_floors(datasets=2, sources=5, n_levels=3, folds=2)
    assert few and few[0][0] == "folds" and "detects only" in few[0][1]
    assert not [p for p in design_floors(1, 1, 2, folds=20) if p[0] == "folds"]


def _study(store, **over) -> dict:
    raw = {"name": "p", "datasets": [{"name": "toy", "store": str(store.path)}],
           "sources": ["real-mask-gmm"], "n_levels": [0, 1], "folds": [0, 1]}  # fmt: skip
    raw.update(over)
    return raw


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"stats": {"primary": "wilcoxon"}}, "stats.primary"),
        ({"stats": {"metric": "iou"}}, "stats.metric"),
        ({"stats": {"class_name": "tumour"}}, "stats.class_name"),
        ({"stats": {"rope": -0.1}}, "stats.rope"),
        ({"seg": {"synthetic_fraction": 1.0}}, "seg.synthetic_fraction"),
        ({"seg": {"nsd_tolerance": 0}}, "seg.nsd_tolerance"),
    ],
)
def test_analysis_settings_are_checked_before_any_training(study_store, over, field):
    with pytest.raises(SynthaugError, match=field.replace(".", r"\.")):
        parse_study(_study(study_store, **over))


def test_rope_zero_and_a_real_class_are_accepted(study_store):
    name = study_store.label_names[1]
    config = parse_study(_study(study_store, stats={"rope": 0, "class_name": name}))
    assert config.stats.rope == 0 and config.stats.class_name == name
