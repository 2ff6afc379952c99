"""The study's statistics in one place: what ``synthaug stats`` prints, ``stats.json`` holds
and the report shows (schema: docs/statistics.md).

Units: a fold is one pair (seeds are averaged within it, :func:`core.fold_units`). Folds of a
cross-validation are NOT independent — their training sets overlap — so no test here treats
them as independent draws.

* **Comparisons** (the primary analysis) — per (dataset, source, n > 0) against n = 0 over
  the folds. The decision (``significant``, ``direction``) comes from the ``primary`` test:
  ``corrected-t`` (default), the Nadeau–Bengio corrected resampled t-test (Bouckaert–Frank's
  for repeated k-fold), with Holm over ONE pre-specified family — every comparison the verdict
  reports; or ``bayes``, baycomp's Bayesian correlated t-test (the same correction) with a
  region of practical equivalence: a gain or harm when its posterior probability is at least
  ``BAYES_DECISION``. A comparison with a capped U-Net on either side (best model at the step
  cap) gets direction "none". Wilcoxon signed-rank and the Hodges–Lehmann shift are a
  labelled sensitivity analysis (they assume independent folds).
* **Across datasets** — per (source, n), baycomp's Bayesian signed-rank test on the
  datasets' mean Dice, only with at least ``MIN_SIGNED_RANK_DATASETS`` datasets.
* **Omnibus over n levels** — design "per-source" (default): per source a Friedman test with
  the datasets as blocks, Holm over the sources. Design "paper" pools (dataset, source)
  problems as blocks, as Vu et al. (2025) did, labelled so. Nemenyi ranks and the critical
  difference only after the Iman–Davenport F rejects.
* **Sources against each other** — per (dataset, n > 0) and pair of sources, the corrected
  t-test over folds (Holm over all pairs); across datasets, a Friedman test (3+ sources) or
  signed-rank (2) with the datasets as blocks.
* **Power** — per family: pairs, and the smallest mean difference the primary test would
  detect (80 % power) at the α it actually uses, given the observed fold-to-fold spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from synthaug.stats.core import (
    BASELINE_SOURCE,
    FriedmanResult,
    StatsError,
    corrected_interval,
    correlated_bayes,
    fold_units,
    friedman_floor,
    friedman_test,
    hodges_lehmann,
    holm_adjust,
    min_detectable_effect,
    missing_units,
    nadeau_bengio,
    signed_rank,
    signed_rank_bayes,
    summarise,
)
from synthaug.stats.worth import LEVEL, worth_table

DESIGNS = ("per-source", "paper")
PRIMARY_TESTS = ("corrected-t", "bayes")
METRICS = {"dice": True, "slice_dice": True, "nsd": True, "hd95": False}
"""The metrics a study can be analysed on, and whether higher is better."""
DEFAULT_ROPE = 0.01
BAYES_DECISION = 0.95
MIN_SIGNED_RANK_DATASETS = 5
SIGNED_RANK_PRIOR = (
    "baycomp's default Dirichlet-process prior: one pseudo-dataset with difference 0 and "
    "weight 0.5. P(gain) is the posterior probability that a randomly drawn dataset of this "
    "kind gains more than the ROPE; with few datasets the prior and the handful of values "
    "dominate, so it is run only with at least 5 datasets."
)
DESIGN_NOTE = {
    "per-source": (
        "Design per-source: each source is its own Friedman family with the datasets as "
        "blocks. Sources share the n = 0 baseline and the test patients (a filtered and an "
        "unfiltered source even share the generator), so treating them as independent blocks "
        "would count the same evidence several times."
    ),
    "paper": (
        "Design paper (Vu et al. 2025): every (dataset, source) problem is a block of one "
        "Friedman test. Sources of a dataset share the n = 0 baseline and the test patients, "
        "so these blocks are not independent and this p-value is optimistic; shown to "
        "reproduce the paper's analysis."
    ),
}


def primary_test_name(primary: str, repeats: int = 1) -> str:
    """The primary test in words, as ``stats.json`` names it on every comparison."""
    corrected = (
        f"Bouckaert-Frank corrected repeated k-fold t-test ({repeats} repeats)"
        if repeats > 1
        else "Nadeau-Bengio corrected resampled t-test"
    )
    if primary == "bayes":
        return f"Bayesian correlated t-test (baycomp; {corrected} variance), P >= {BAYES_DECISION}"
    return f"{corrected}, Holm over all comparisons"


@dataclass
class StudyStatistics:
    """Every figure of a study's analysis (see the module docstring)."""

    design: str
    alpha: float
    rope: float
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    across_datasets: pd.DataFrame
    omnibus: list[FriedmanResult]
    omnibus_notes: list[str]
    sources: pd.DataFrame
    power: list[dict]
    imbalance: list[str] = field(default_factory=list)
    primary: str = "corrected-t"
    metric: str = "dice"
    class_name: str = "mean"
    source_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    across_notes: list[str] = field(default_factory=list)
    repeats: int = 1
    unlearned: list[dict] = field(default_factory=list)
    worth: list[dict] = field(default_factory=list)  # stats.worth: synthetic in real patients

    @property
    def primary_test(self) -> str:
        return primary_test_name(self.primary, self.repeats)

    @property
    def capped_cells(self) -> int:
        """Comparisons with a U-Net stopped by its step cap on either side."""
        return int(self.comparisons["capped"].sum()) if len(self.comparisons) else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "design_note": DESIGN_NOTE[self.design],
            "alpha": self.alpha,
            "rope": self.rope,
            "metric": self.metric,
            "metric_higher_is_better": METRICS[self.metric],
            "class_name": self.class_name,
            "primary_test": self.primary_test,
            "unit": "fold (seeds averaged within a fold)",
            "summary": _records(self.summary),
            "comparisons": [
                _comparison_entry(r, self.primary_test) for r in _records(self.comparisons)
            ],
            "capped_comparisons": self.capped_cells,
            "across_datasets": _records(self.across_datasets),
            "across_datasets_notes": list(self.across_notes),
            "across_datasets_prior": SIGNED_RANK_PRIOR,
            "omnibus": [_omnibus_entry(f, self.design) for f in self.omnibus],
            "omnibus_notes": list(self.omnibus_notes),
            "sources": _records(self.sources),
            "source_pairs": _records(self.source_pairs),
            "power": self.power,
            "imbalance": list(self.imbalance),
            "unlearned_classes": list(self.unlearned),
            "worth": list(self.worth),
        }


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    """numpy scalars → Python; NaN/inf → None (JSON has neither)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _comparison_entry(row: dict, primary_test: str) -> dict:
    return {
        **{k: row[k] for k in ("dataset", "source", "n", "n_pairs", "seeds")},
        "primary_test": primary_test,
        "direction": row["direction"],
        "significant": row["significant"],
        "mean_diff": row["mean_diff"],
        "ci": [row["ci_low"], row["ci_high"]],
        "ci_kind": "corrected t interval of the mean fold difference (n - real-only)",
        "p_value": row["p_value"],
        "p_holm": row["p_holm"],
        "t": row["t"],
        "rho": row["rho"],
        "p_harm": row["p_harm"],
        "p_equivalent": row["p_equivalent"],
        "p_gain": row["p_gain"],
        "mde": row["mde"],
        "mde_alpha": row["mde_alpha"],
        "capped": row["capped"],
        "unusable_generator": row["flagged"],
        "sensitivity": {
            "kind": "Wilcoxon signed-rank and Hodges-Lehmann over folds: they assume "
            "independent folds, which cross-validation folds are not",
            "w_plus": row["w_plus"],
            "w_minus": row["w_minus"],
            "p_value": row["wilcoxon_p"],
            "p_holm": row["wilcoxon_p_holm"],
            "min_p": row["min_p"],
            "hodges_lehmann": row["hl_shift"],
            "hl_ci": [row["hl_low"], row["hl_high"]],
            "hl_ci_level": row["hl_level"],
        },
        "note": row["note"],
    }


def _omnibus_entry(result: FriedmanResult, design: str) -> dict:
    return {"design": design, **result.as_dict()}


# --------------------------------------------------------------------------- comparisons


def split_rho(df: pd.DataFrame, dataset: str) -> float:
    """n_test / n_train of the Nadeau–Bengio correction, from the split's patient counts.
    The learner's data is every non-test patient — it trains on the training patients and
    selects its checkpoint on the validation ones — so n_train = train + validation, which
    is (k − 1) / k of the patients in a k-fold split (ρ = 1 / (k − 1), baycomp's choice)."""
    if {"test_patients", "train_patients"} <= set(df.columns):
        rows = df[df["dataset"] == dataset]
        learn = rows["train_patients"] + rows.get("val_patients", 0)
        if learn.mean() > 0:
            return float(rows["test_patients"].mean() / learn.mean())
    raise StatsError(
        f"dataset {dataset}: the results table lacks test_patients/train_patients, which the "
        "corrected t-test's correlation rho = n_test / n_train needs"
    )


def _paired(base: pd.DataFrame, cur: pd.DataFrame) -> pd.DataFrame:
    """Fold values of an n level and its real-only partner (folds both have)."""
    return pd.concat(
        {"x": cur.set_index("fold"), "b": base.set_index("fold")}, axis=1, join="inner"
    ).dropna(subset=[("x", "value"), ("b", "value")])


def _compare(
    base: pd.DataFrame,
    cur: pd.DataFrame,
    rho: float,
    alpha: float,
    rope: float,
    higher_is_better: bool,
) -> dict[str, Any]:
    """One n level against n = 0 over the folds both have; diffs in the metric's units."""
    paired = _paired(base, cur)
    diffs = (paired[("x", "value")] - paired[("b", "value")]).to_numpy(dtype=float)
    better = diffs if higher_is_better else -diffs  # > 0: an improvement
    nb = nadeau_bengio(diffs, rho)
    low, high = corrected_interval(nb, alpha)
    loss, equivalent, win = correlated_bayes(nadeau_bengio(better, rho), rope)
    test = signed_rank(better)
    hl, hl_low, hl_high, hl_level = hodges_lehmann(diffs, alpha)
    capped = bool(paired[("x", "capped")].any() or paired[("b", "capped")].any())
    notes = []
    if len(paired) < len(cur):
        notes.append(f"{len(cur) - len(paired)} fold(s) without a real-only partner")
    if capped:
        notes.append("a U-Net on either side stopped at its step cap: no gain or harm drawn")
    return {
        "n_pairs": int(len(diffs)),
        "mean_diff": nb.mean, "ci_low": low, "ci_high": high,
        "t": nb.t, "p_value": nb.p_value, "rho": rho, "sd": _sd(diffs),
        "p_harm": loss, "p_equivalent": equivalent, "p_gain": win,
        "better": float(np.mean(better)) if len(better) else math.nan,
        "w_plus": test.w_plus, "w_minus": test.w_minus, "wilcoxon_p": test.p_value,
        "sign": test.direction, "min_p": test.floor,
        "hl_shift": hl, "hl_low": hl_low, "hl_high": hl_high, "hl_level": hl_level,
        "capped": capped, "note": "; ".join(notes),
    }  # fmt: skip


def _sd(diffs: np.ndarray) -> float:
    return float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan


COMPARISON_COLUMNS = [
    "dataset", "source", "n", "n_pairs", "seeds", "mean_diff", "ci_low", "ci_high", "t",
    "p_value", "p_holm", "significant", "direction", "rho", "p_harm", "p_equivalent", "p_gain",
    "mde", "mde_alpha", "capped", "flagged", "w_plus", "w_minus", "wilcoxon_p",
    "wilcoxon_p_holm", "min_p", "hl_shift", "hl_low", "hl_high", "hl_level", "note",
]  # fmt: skip


def comparisons(
    df: pd.DataFrame,
    units: pd.DataFrame,
    alpha: float = 0.05,
    rope: float = DEFAULT_ROPE,
    primary: str = "corrected-t",
    metric: str = "dice",
) -> pd.DataFrame:
    """Each (dataset, source, n > 0) against its n = 0 over folds; the decision from the
    ``primary`` test, Holm over all of them (one family: everything the verdict reports)."""
    rows: list[dict[str, Any]] = []
    data = units[units["source"] != BASELINE_SOURCE]
    higher = METRICS[metric]
    for (dataset, source), prob in data.groupby(["dataset", "source"], sort=True):
        base = prob.loc[prob["n"] == 0]
        rho = split_rho(df, dataset)
        for n in sorted(prob.loc[prob["n"] > 0, "n"].unique()):
            level = prob.loc[prob["n"] == n]
            row = _compare(base, level, rho, alpha, rope, higher)
            if base.empty:
                row["note"] = "; ".join(filter(None, ["no real-only baseline", row["note"]]))
            rows.append({"dataset": dataset, "source": source, "n": int(n),
                         "seeds": int(level["seeds"].min()),
                         "flagged": bool(level["flagged"].any()), **row})  # fmt: skip
    out = pd.DataFrame(rows, columns=[*COMPARISON_COLUMNS, "sign", "sd", "better"])
    if out.empty:
        return out[COMPARISON_COLUMNS]
    _decide(out, alpha, primary)
    types = {"n": int, "n_pairs": int, "significant": bool, "flagged": bool, "capped": bool}
    return out[COMPARISON_COLUMNS].astype(types)


def _decide(out: pd.DataFrame, alpha: float, primary: str) -> None:
    """Fill the family-wise decision columns of the comparisons table in place."""
    m = len(out)
    out["p_holm"] = holm_adjust(out["p_value"])
    out["wilcoxon_p_holm"] = holm_adjust(out["wilcoxon_p"])
    # Holm's first (most demanding) threshold is alpha / m: an effect of this size is found
    # whatever the other comparisons show.
    out["mde_alpha"] = alpha / m if primary == "corrected-t" else alpha
    out["mde"] = [
        min_detectable_effect(sd, k, rho, a)
        for sd, k, rho, a in zip(
            out["sd"], out["n_pairs"], out["rho"], out["mde_alpha"], strict=True
        )
    ]
    if primary == "bayes":
        gain = out["p_gain"] >= BAYES_DECISION
        harm = out["p_harm"] >= BAYES_DECISION
        out["significant"] = (gain | harm) & ~out["capped"]
        out["direction"] = np.where(gain, "gain", np.where(harm, "harm", "none"))
    else:
        out["significant"] = (out["p_holm"] < alpha) & ~out["capped"]  # NaN compares False
        out["direction"] = np.where(out["better"] > 0, "gain", "harm")
    out["direction"] = np.where(out["significant"], out["direction"], "none")


def across_datasets(
    units: pd.DataFrame, rope: float = DEFAULT_ROPE, metric: str = "dice"
) -> tuple[pd.DataFrame, list[str]]:
    """Per (source, n > 0): baycomp's Bayesian signed-rank over the datasets' mean metric, only
    with at least ``MIN_SIGNED_RANK_DATASETS`` datasets; returns the table and why not."""
    columns = ["source", "n", "num_datasets", "p_harm", "p_equivalent", "p_gain"]
    means = units[units["source"] != BASELINE_SOURCE]
    datasets = means["dataset"].nunique()
    if datasets < MIN_SIGNED_RANK_DATASETS:
        note = (
            f"Bayesian signed-rank test over datasets not run: {datasets} dataset(s), it needs "
            f"at least {MIN_SIGNED_RANK_DATASETS} (with fewer its probabilities rest on the "
            "prior and a handful of values)."
        )
        return pd.DataFrame(columns=columns), [note]
    sign = 1.0 if METRICS[metric] else -1.0
    means = means.groupby(["source", "n", "dataset"], sort=True)["value"].mean().unstack("n")
    rows = []
    for source, table in means.groupby(level="source", sort=True):
        if 0 not in table.columns:
            continue
        for n in [c for c in table.columns if c > 0]:
            both = table[[0, n]].dropna()
            harm, equivalent, gain = signed_rank_bayes(sign * both[0], sign * both[n], rope)
            rows.append({"source": source, "n": int(n), "num_datasets": len(both),
                         "p_harm": harm, "p_equivalent": equivalent, "p_gain": gain})  # fmt: skip
    return pd.DataFrame(rows, columns=columns), []


# --------------------------------------------------------------------------- omnibus tests


def _balanced_scores(problem_units: pd.DataFrame, block: list[str]) -> pd.DataFrame:
    """Mean over folds per block × n level, using only the folds every level of a
    (dataset, source) problem has."""
    parts = []
    for _, prob in problem_units.groupby(["dataset", "source"], sort=True):
        table = prob.pivot_table(index="fold", columns="n", values="value").dropna()
        if table.empty:
            continue
        keys = prob[block].iloc[0]
        parts.append(pd.DataFrame([table.mean()], index=[tuple(keys)]))
    scores = pd.concat(parts) if parts else pd.DataFrame()
    return scores.dropna(axis=1)  # levels missing from some block are not compared


def omnibus(
    units: pd.DataFrame, design: str = "per-source", alpha: float = 0.05
) -> tuple[list[FriedmanResult], list[str]]:
    """Friedman tests over n levels under ``design``; returns the results and why any test
    could not be run. Per-source decisions are Holm-corrected over the sources."""
    if design not in DESIGNS:
        raise StatsError(f"design: {design!r} is not one of {', '.join(DESIGNS)}")
    data = units[units["source"] != BASELINE_SOURCE]
    groups = (
        [("all (dataset, source) problems", data, ["dataset", "source"])]
        if design == "paper"
        else [(f"source {s}", d, ["dataset"]) for s, d in data.groupby("source", sort=True)]
    )
    results, notes = [], []
    for label, group, block in groups:
        scores = _balanced_scores(group, block)
        scores.index = [" / ".join(map(str, k)) for k in scores.index]
        scores.columns = [int(c) for c in scores.columns]
        try:
            results.append(friedman_test(scores, alpha, label))
        except StatsError as exc:
            notes.append(f"{label}: not tested — {exc}")
    if design == "per-source" and results:
        _holm_decisions(results, alpha)
    return results, notes


def _holm_decisions(results: list[FriedmanResult], alpha: float) -> None:
    """Per-source tests are one family: reject only where Holm's adjusted p is below alpha."""
    adjusted = holm_adjust([r.p_value for r in results])
    for result, p in zip(results, adjusted, strict=True):
        if result.significant and not p < alpha:
            result.significant = False
            result.nemenyi_p, result.cd, result.cliques = None, None, []
        result.notes.append(f"Holm over {len(results)} sources: adjusted p = {p:.3g}")


def compare_sources(
    df: pd.DataFrame, units: pd.DataFrame, alpha: float = 0.05, metric: str = "dice"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sources against each other at each n > 0.

    Across datasets (``sources`` table): datasets are the blocks — never (dataset, fold),
    whose folds share patients — Friedman with three or more sources, signed-rank with two,
    Holm over the n levels. Per dataset (``pairs`` table): each pair of sources by the
    corrected t-test over the folds, Holm over all pairs."""
    data = units[(units["source"] != BASELINE_SOURCE) & (units["n"] > 0)]
    sign = 1.0 if METRICS[metric] else -1.0
    rows = []
    for n, level in data.groupby("n", sort=True):
        table = level.pivot_table(index="dataset", columns="source", values="value").dropna()
        rows.append(_across_sources(int(n), sign * table, alpha))
    out = pd.DataFrame(rows, columns=["n", "sources", "blocks", "test", "p_value", "floor", "best"])
    out["p_holm"] = holm_adjust(out["p_value"]) if len(out) else []
    out["significant"] = (out["p_holm"] < alpha) & (out["floor"].fillna(1.0) < alpha)
    return out, _source_pairs(df, data, alpha)


def _across_sources(n: int, table: pd.DataFrame, alpha: float) -> dict[str, Any]:
    """One n level: the sources (columns) over the datasets (rows); higher is better."""
    row: dict[str, Any] = {"n": n, "sources": len(table.columns), "blocks": len(table)}
    if len(table.columns) < 2 or len(table) < 2:
        why = "fewer than 2 datasets" if len(table) < 2 else "fewer than 2 sources"
        return {**row, "test": f"none ({why})", "p_value": math.nan, "floor": math.nan,
                "best": None}  # fmt: skip
    best = table.mean().idxmax()
    if len(table.columns) == 2:
        a, b = table.columns
        test = signed_rank(table[b] - table[a])
        return {**row, "test": f"signed-rank {b} - {a}", "p_value": test.p_value,
                "floor": test.floor, "best": best}  # fmt: skip
    if len(table) < 2:
        return {**row, "test": "none", "p_value": math.nan, "floor": math.nan, "best": best}
    f = friedman_test(table, alpha, f"sources at n={n}")
    return {**row, "test": "Friedman", "p_value": f.p_value, "floor": f.floor, "best": best}


def _source_pairs(df: pd.DataFrame, data: pd.DataFrame, alpha: float) -> pd.DataFrame:
    columns = ["dataset", "n", "source_a", "source_b", "folds", "mean_diff", "p_value", "p_holm",
               "significant"]  # fmt: skip
    rows = []
    for (dataset, n), level in data.groupby(["dataset", "n"], sort=True):
        table = level.pivot_table(index="fold", columns="source", values="value").dropna()
        rho = split_rho(df, dataset)
        for a, b in combinations(sorted(table.columns), 2):
            test = nadeau_bengio((table[b] - table[a]).to_numpy(), rho)
            rows.append({"dataset": dataset, "n": int(n), "source_a": a, "source_b": b,
                         "folds": len(table), "mean_diff": test.mean,
                         "p_value": test.p_value})  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    if len(out):
        out["p_holm"] = holm_adjust(out["p_value"])
        out["significant"] = out["p_holm"] < alpha
    return out


# --------------------------------------------------------------------------- power


def power_summary(
    comps: pd.DataFrame,
    tests: list[FriedmanResult],
    sources: pd.DataFrame,
    alpha: float,
    design: str = "per-source",
) -> list[dict]:
    """Per test family: its tests, independent pairs or blocks, the α its decision uses and,
    for the primary comparisons, the median detectable effect at that α."""
    families = []
    if len(comps):
        families.append(
            {
                "family": "primary: each n against real-only, every dataset and source",
                "tests": int(len(comps)),
                "independent_pairs": int(comps["n_pairs"].min()),
                "alpha_used": float(comps["mde_alpha"].min()),
                "mde": _plain(float(comps["mde"].median())),
                "mde_note": "smallest mean difference the primary test detects with 80% "
                "power at alpha_used and the observed fold-to-fold spread (median over tests)",
                "capped": int(comps["capped"].sum()),
            }
        )
    holm = len(tests) if design == "per-source" else 1  # per-source tests: Holm over sources
    for test in tests:
        corrected = min(1.0, test.floor * holm)
        families.append(
            {
                "family": f"Friedman over n levels, {test.label}",
                "tests": 1,
                "independent_pairs": test.num_blocks,
                "min_p": test.floor,
                "min_p_after_correction": corrected,
                "can_reach_alpha": bool(corrected < alpha),
            }
        )
    if len(sources):
        floor = float(sources["floor"].min()) if sources["floor"].notna().any() else math.nan
        families.append(
            {
                "family": "sources against each other at each n (datasets as blocks)",
                "tests": int(len(sources)),
                "independent_pairs": int(sources["blocks"].min()),
                "min_p": _plain(floor),
                "min_p_after_correction": _plain(min(1.0, floor * len(sources))),
                "can_reach_alpha": bool(floor * len(sources) < alpha),
            }
        )
    return families


def mde_factor(folds: int, rho: float, alpha: float) -> float:
    """The primary test's detectable effect in units of the fold-to-fold SD of differences."""
    return min_detectable_effect(1.0, folds, rho, alpha)


def design_floors(
    datasets: int,
    sources: int,
    n_levels: int,
    folds: int,
    alpha: float = 0.05,
    rho: float | None = None,
) -> list[tuple[str, str]]:
    """(field, problem) for each test family a planned study can hardly make significant.
    ``folds`` counts every paired difference (all repeats); ``rho`` = n_test / n_train
    (default: that of a single k-fold over ``folds`` folds, 1 / (folds − 1))."""
    problems = []
    comparisons_per_study = datasets * sources * (n_levels - 1)
    if comparisons_per_study:
        rho = rho if rho is not None else 1.0 / max(folds - 1, 1)
        factor = mde_factor(folds, rho, alpha / comparisons_per_study)
        if not factor < 2.0:
            problems.append(
                (
                    "folds",
                    f"{folds} folds: the corrected t-test (Holm over {comparisons_per_study} "
                    f"comparisons) detects only mean differences above {factor:.3g} times "
                    "the fold-to-fold spread of the differences (80% power); more folds or "
                    "repeats, or fewer n levels and sources, lower it",
                )
            )
    if n_levels >= 3 and datasets >= 2:
        friedman = min(1.0, friedman_floor(n_levels, datasets) * sources)
        if friedman >= alpha:
            problems.append(
                (
                    "datasets",
                    f"{datasets} datasets × {n_levels} n levels: the per-source Friedman test "
                    f"can give at best p = {friedman:.3g} (Holm over {sources} sources)",
                )
            )
    elif n_levels >= 3:
        problems.append(("datasets", "one dataset: no Friedman test over datasets"))
    return problems


# --------------------------------------------------------------------------- classes


UNLEARNED_DICE = 0.05
"""A class whose Dice stays at or below this in every cell is one no model learned."""


def unlearned_classes(df: pd.DataFrame, threshold: float = UNLEARNED_DICE) -> list[dict]:
    """Per dataset, the foreground classes no cell's U-Net learned (Dice ≤ ``threshold`` in
    every cell): mean foreground Dice hides them, so the verdict names them."""
    if not {"class_name", "dice"} <= set(df.columns):
        return []
    per_class = df[df["class_name"] != "mean"]
    found = []
    for (dataset, name), rows in per_class.groupby(["dataset", "class_name"], sort=True):
        best = rows["dice"].max()
        if pd.notna(best) and best <= threshold:
            found.append({"dataset": dataset, "class_name": name, "best_dice": float(best),
                          "cells": int(len(rows))})  # fmt: skip
    return found


# --------------------------------------------------------------------------- the analysis


def per_level_datasets(df: pd.DataFrame) -> pd.DataFrame:
    """A study with several real-patients levels: each (dataset, level) becomes one problem,
    named "DATASET · R real", so every comparison is against the real-only cells of the same
    level and Holm runs over all levels' comparisons together (one pre-specified family)."""
    if LEVEL not in df or df[LEVEL].astype(str).nunique() < 2:
        return df
    return df.assign(dataset=df["dataset"].astype(str) + " · " + df[LEVEL].astype(str) + " real")


def level_of(dataset: str) -> tuple[str, str | None]:
    """("lesion", "4") from a per-level problem name "lesion · 4 real"; (name, None) else."""
    base, sep, rest = str(dataset).rpartition(" · ")
    if sep and rest.endswith(" real"):
        return base, rest.removesuffix(" real")
    return str(dataset), None


def analyse(
    df: pd.DataFrame,
    design: str = "per-source",
    alpha: float = 0.05,
    rope: float = DEFAULT_ROPE,
    metric: str = "dice",
    class_name: str = "mean",
    primary: str = "corrected-t",
    repeats: int = 1,
) -> StudyStatistics:
    """The whole analysis of a results table (see the module docstring)."""
    if design not in DESIGNS:
        raise StatsError(f"design: {design!r} is not one of {', '.join(DESIGNS)}")
    if primary not in PRIMARY_TESTS:
        raise StatsError(f"primary: {primary!r} is not one of {', '.join(PRIMARY_TESTS)}")
    if metric not in METRICS:
        raise StatsError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
    if metric not in df.columns:
        raise StatsError(f"metric: the results table has no {metric!r} column")
    if not rope >= 0:
        raise StatsError(f"rope: must be 0 or more, got {rope}")
    worth = worth_table(df, metric, class_name)
    df = per_level_datasets(df)
    units = fold_units(df, metric, class_name)
    # The Friedman ranks count higher as better.
    ranked = units if METRICS[metric] else units.assign(value=-units["value"])
    comps = comparisons(df, units, alpha, rope, primary, metric)
    tests, notes = omnibus(ranked, design, alpha)
    sources, pairs = compare_sources(df, units, alpha, metric)
    across, across_notes = across_datasets(units, rope, metric)
    return StudyStatistics(
        design=design,
        alpha=alpha,
        rope=rope,
        summary=summarise(units[units["source"] != BASELINE_SOURCE]),
        comparisons=comps,
        across_datasets=across,
        omnibus=tests,
        omnibus_notes=notes,
        sources=sources,
        power=power_summary(comps, tests, sources, alpha, design),
        imbalance=missing_units(units[units["source"] != BASELINE_SOURCE]),
        primary=primary,
        metric=metric,
        class_name=class_name,
        source_pairs=pairs,
        across_notes=across_notes,
        repeats=repeats,
        unlearned=unlearned_classes(df),
        worth=worth,
    )
