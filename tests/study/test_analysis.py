"""The study's analysis on crafted results tables: units, designs, Bayesian probabilities,
power and the words of the verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import baycomp
import numpy as np
import pandas as pd
import pytest
import yaml

from synthaug.report.verdict import format_statistics, verdict
from synthaug.stats.analysis import analyse, design_floors
from synthaug.study.config import design_warnings, parse_study
from synthaug.study.dry_run import describe_plan


def _table(
    shifts: dict[tuple[str, str, int], float],
    datasets=("A", "B", "C", "D", "E", "F"),
    folds: int = 5,
    seeds: int = 1,
    seed: int = 0,
    noise: float = 0.002,
    patients: tuple[int, int, int] = (4, 12, 4),
) -> pd.DataFrame:
    """A results table: the shared real-only baseline per (dataset, fold, seed), then each
    (dataset, source, n) with ``shifts`` added to it (0 where not given) plus noise."""
    rng = np.random.default_rng(seed)
    sources = sorted({s for _, s, _ in shifts})
    levels = sorted({n for _, _, n in shifts})
    test, train, val = patients
    rows = []
    for d in datasets:
        for f in range(folds):
            base = rng.uniform(0.6, 0.8)
            for s in range(seeds):
                cell = {"dataset": d, "fold": f, "seed": s, "class_name": "mean",
                        "test_patients": test, "train_patients": train, "val_patients": val}  # fmt: skip
                rows.append({**cell, "source": "none", "n": 0, "dice": base})
                for src in sources:
                    for n in levels:
                        dice = base + shifts.get((d, src, n), 0.0) + rng.normal(0, noise)
                        rows.append({**cell, "source": src, "n": n, "dice": dice})
    return pd.DataFrame(rows)


def test_a_fold_is_one_pair_whatever_the_seeds():
    df = _table({("A", "joint", 4): 0.05}, datasets=("A",), folds=5, seeds=4)
    comparison = analyse(df).comparisons.iloc[0]
    assert comparison["n_pairs"] == 5 and comparison["seeds"] == 4
    # The sensitivity test's floor: 5 pairs can never give a Wilcoxon p below 0.0625.
    assert comparison["min_p"] == pytest.approx(0.0625)


def test_copies_of_a_source_add_no_evidence_in_the_default_design():
    # One source's table copied as 2, 4 and 8 "sources" of the same datasets.
    base = {(d, "s0", n): -0.01 * n for d in "AB" for n in (1, 2)}
    rows = []
    for copies in (1, 2, 4, 8):
        shifts = {(d, f"s{c}", n): v for (d, _, n), v in base.items() for c in range(copies)}
        df = _table(shifts, datasets=("A", "B"), noise=0.0)
        per_source = analyse(df)
        paper = analyse(df, design="paper")
        rows.append((copies, per_source, paper))
    first = rows[0][1].omnibus[0]
    for _, per_source, _ in rows:
        # Each source is its own test, over the same 2 datasets: identical and no stronger.
        assert all(t.num_blocks == 2 for t in per_source.omnibus)
        assert all(t.p_value == pytest.approx(first.p_value) for t in per_source.omnibus)
        assert not any(t.significant for t in per_source.omnibus)
    paper_p = [p.omnibus[0].p_value for _, _, p in rows]
    assert [p.omnibus[0].num_blocks for _, _, p in rows] == [2, 4, 8, 16]
    assert paper_p[0] > 0.05 and paper_p[-1] < 1e-6  # the copies "become" evidence...
    assert all(a > b for a, b in zip(paper_p, paper_p[1:], strict=False))
    paper = rows[-1][2]
    assert paper.as_dict()["design"] == "paper"
    assert "not independent" in " ".join(verdict(paper))  # ...and the paper design says so


def test_bayesian_probabilities_equal_direct_baycomp_calls():
    # All 5 folds of a 5-fold store: n_test / n_train = 1/4, what baycomp assumes.
    df = _table({("A", "joint", 4): 0.012}, datasets=("A",), folds=5, noise=0.01,
                patients=(5, 16, 4))  # fmt: skip
    row = analyse(df, rope=0.01).comparisons.iloc[0]
    units = df[df["class_name"] == "mean"]
    base = units[units["source"] == "none"].sort_values("fold")["dice"].to_numpy()
    aug = units[units["source"] == "joint"].sort_values("fold")["dice"].to_numpy()
    harm, equivalent, gain = baycomp.CorrelatedTTest.probs(base, aug, rope=0.01)
    assert (row["p_harm"], row["p_equivalent"], row["p_gain"]) == pytest.approx(
        (harm, equivalent, gain), abs=1e-12
    )
    assert row["rho"] == pytest.approx(5 / 20)


def test_across_datasets_probabilities_equal_baycomp_signed_rank():
    df = _table({(d, "joint", 2): 0.02 for d in "ABCDEF"}, noise=0.005)
    stats = analyse(df, rope=0.01)
    row = stats.across_datasets.iloc[0]
    units = df[df["class_name"] == "mean"]
    means = units.groupby(["source", "dataset"])["dice"].mean()
    expected = baycomp.SignedRankTest.probs(
        means["none"].to_numpy(), means["joint"].to_numpy(), 0.01, random_state=0
    )
    assert (row["p_harm"], row["p_equivalent"], row["p_gain"]) == pytest.approx(expected)
    assert row["num_datasets"] == 6 and row["p_gain"] > 0.9


def test_holm_runs_over_all_comparisons_of_the_study():
    shifts = {(d, src, n): 0.03 for d in "AB" for src in ("joint", "mask") for n in (1, 2, 4)}
    stats = analyse(_table(shifts, datasets=("A", "B"), folds=10, noise=0.002))
    comps = stats.comparisons
    assert len(comps) == 12
    raw = comps["p_value"].to_numpy()
    assert comps["p_holm"].max() <= min(1.0, 12 * raw.max()) + 1e-12
    assert comps["p_holm"].min() == pytest.approx(min(1.0, 12 * raw.min()))
    assert stats.comparisons["significant"].all()
    assert set(stats.comparisons["direction"]) == {"gain"}


def test_missing_cells_are_reported_not_averaged():
    df = _table({(d, "joint", n): 0.0 for d in "ABC" for n in (1, 2)}, datasets=("A", "B", "C"))
    df = df[~((df["dataset"] == "B") & (df["n"] == 2) & (df["fold"] == 3))]
    stats = analyse(df)
    assert stats.imbalance == ["B / joint n=2 lacks fold(s) [3]"]
    assert "Unbalanced" in " ".join(verdict(stats))
    b2 = stats.comparisons.set_index(["dataset", "n"]).loc[("B", 2)]
    assert b2["n_pairs"] == 4


def test_stats_json_carries_the_documented_fields():
    stats = analyse(_table({(d, "joint", 2): 0.02 for d in "ABC"}, datasets=("A", "B", "C")))
    data = json.loads(json.dumps(stats.as_dict()))  # JSON-clean: no NaN, no numpy
    entry = data["comparisons"][0]
    for key in ("dataset", "source", "n", "n_pairs", "direction", "p_holm", "ci",
                "primary_test", "capped", "mde_alpha", "p_gain", "p_equivalent", "p_harm"):  # fmt: skip
        assert key in entry
    assert len(entry["ci"]) == 2 and entry["primary_test"] == data["primary_test"]
    hl = entry["sensitivity"]
    assert {"hodges_lehmann", "hl_ci", "hl_ci_level", "p_value", "p_holm"} <= set(hl)
    for omnibus in data["omnibus"]:
        assert {"design", "num_blocks", "p_value", "significant"} <= set(omnibus)
    assert data["power"] and {"independent_pairs", "alpha_used", "mde"} <= set(data["power"][0])


def test_the_verdict_says_when_the_design_cannot_find_anything():
    table = _table({(d, "joint", 2): -0.05 for d in "AB"}, datasets=("A", "B"), folds=2, noise=0.03)
    stats = analyse(table)
    text = " ".join(verdict(stats))
    mde = stats.comparisons["mde"].median()
    assert "would likely go undetected" in text and mde > 0.05  # 2 folds: a 0.05 harm is hidden
    assert "no significant gain or harm" in text
    assert "Verdict:" in format_statistics(stats)


def test_design_floors_name_the_fields():
    fields = [f for f, _ in design_floors(datasets=6, sources=3, n_levels=26, folds=5)]
    assert fields == ["folds"]
    problems = dict(design_floors(datasets=2, sources=3, n_levels=3, folds=2))
    assert set(problems) == {"folds", "datasets"}
    assert "0.5" in problems["datasets"]  # (3!)^(1-2) = 1/6, times Holm over 3 sources
    # 20 folds with 12 comparisons: the corrected test detects less than twice the spread.
    assert design_floors(datasets=6, sources=1, n_levels=3, folds=20) == []


def test_paper_config_says_why_its_per_dataset_tests_cannot_reach_alpha(study_store):
    raw = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "configs" / "paper.yaml").read_text()
    )
    for entry in raw["datasets"]:
        entry["store"] = str(study_store.path)
    config = parse_study(raw)
    warnings = design_warnings(config)
    assert [w.split(":")[0] for w in warnings] == ["folds"]
    assert "Holm" in warnings[0]
    # The per-source Friedman test over 6 datasets and 26 levels can reject.
    assert not any(w.startswith("datasets") for w in warnings)


def test_dry_run_prints_the_plan_without_running(study_store, tmp_path):
    raw = {
        "name": "plan", "datasets": [{"name": "toy", "store": str(study_store.path)}],
        "sources": ["joint", "real-mask-conditional"], "n_levels": [0, 1, 2], "folds": [0, 1],
        "seeds": [0, 1], "gan": {"preset": "cpu-micro", "kimg": 0.024},
        "seg": {"preset": "cpu-micro", "max_steps": 30},
    }  # fmt: skip
    text = describe_plan(parse_study(raw), tmp_path / "out")
    assert "train-generators" in text and "quality" in text and "min" in text
    assert "warning: folds" in text
    assert not (tmp_path / "out").exists()


def test_stats_cli_json_and_design(tmp_path, run_cli):
    df = _table({(d, "joint", n): 0.0 for d in "ABC" for n in (2, 4)}, datasets=("A", "B", "C"))
    path = tmp_path / "results.csv"
    df.to_csv(path, index=False)
    args = ["stats", str(path), "--json", "--design", "paper"]
    result = run_cli(*args)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["design"] == "paper" and data["omnibus"][0]["num_blocks"] == 3
    bad = run_cli(*args[:-1], "pooled")
    assert bad.code == 2 and "design" in bad.err
    assert math.isfinite(data["rope"])
