"""The study's statistics in one place: what ``synthaug stats`` prints, ``stats.json`` holds
and the report shows (schema: docs/statistics.md).

Units: a fold is one independent pair (seeds are averaged within it, :func:`stats.fold_units`).

* **Comparisons** — per (dataset, source, n > 0) against n = 0 over the folds: Wilcoxon
  signed-rank (direction from W+ against W−, Hodges–Lehmann shift with its CI), the
  Nadeau–Bengio corrected t-test, and baycomp's Bayesian correlated t-test with a region of
  practical equivalence (P(harm), P(equivalent), P(gain)). Holm's correction runs over each
  source's comparisons (datasets × n levels): a source is one family.
* **Across datasets** — per (source, n), baycomp's Bayesian signed-rank test on the
  datasets' mean Dice.
* **Omnibus over n levels** — design "per-source" (default): per source a Friedman test with
  the datasets as blocks, Holm over the sources. Sources share the n = 0 baseline, the test
  patients and, for a filtered and unfiltered source, the generator, so pooling them as
  independent blocks inflates N. Design "paper" pools (dataset, source) problems as blocks, as
  Vu et al. (2025) did; it is labelled so wherever it is shown. Nemenyi ranks and the critical
  difference only after the Iman–Davenport F rejects.
* **Sources against each other** — at each n > 0, the sources over (dataset, fold) blocks:
  Friedman with three or more sources, signed-rank with two; Holm over the n levels.
* **Power** — per family: independent pairs, the smallest p the design can give, and the
  smallest effect the corrected t-test would detect (80 % power) given the observed
  fold-to-fold spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthaug.stats.core import (
    BASELINE_SOURCE,
    FriedmanResult,
    StatsError,
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
    wilcoxon_floor,
)

DESIGNS = ("per-source", "paper")
DEFAULT_ROPE = 0.01
DESIGN_NOTE = {
    "per-source": (
        "Design per-source: each source is its own family with the datasets as blocks. "
        "Sources share the n = 0 baseline and the test patients (a filtered and an "
        "unfiltered source even share the generator), so treating them as independent "
        "blocks would count the same evidence several times."
    ),
    "paper": (
        "Design paper (Vu et al. 2025): every (dataset, source) problem is a block of one "
        "Friedman test. Sources of a dataset share the n = 0 baseline and the test patients, "
        "so these blocks are not independent and this p-value is optimistic; shown to "
        "reproduce the paper's analysis."
    ),
}


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "design_note": DESIGN_NOTE[self.design],
            "alpha": self.alpha,
            "rope": self.rope,
            "unit": "fold (seeds averaged within a fold)",
            "summary": _records(self.summary),
            "comparisons": [_comparison_entry(r) for r in _records(self.comparisons)],
            "across_datasets": _records(self.across_datasets),
            "omnibus": [_omnibus_entry(f, self.design) for f in self.omnibus],
            "omnibus_notes": list(self.omnibus_notes),
            "sources": _records(self.sources),
            "power": self.power,
            "imbalance": list(self.imbalance),
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


def _comparison_entry(row: dict) -> dict:
    return {
        **{k: row[k] for k in ("dataset", "source", "n", "n_pairs", "seeds", "direction")},
        "p_value": row["p_value"],
        "p_holm": row["p_holm"],
        "significant": row["significant"],
        "w_plus": row["w_plus"],
        "w_minus": row["w_minus"],
        "mean_diff": row["mean_diff"],
        "effect": {
            "estimate": row["effect"],
            "ci": [row["ci_low"], row["ci_high"]],
            "ci_level": row["ci_level"],
            "kind": "Hodges-Lehmann shift of fold Dice differences (n - real-only)",
        },
        "corrected_t": {
            "t": row["nb_t"],
            "p_value": row["nb_p"],
            "p_holm": row["nb_p_holm"],
            "rho": row["rho"],
        },  # fmt: skip
        "p_harm": row["p_harm"],
        "p_equivalent": row["p_equivalent"],
        "p_gain": row["p_gain"],
        "min_p": row["min_p"],
        "min_p_holm": row["min_p_holm"],
        "mde": row["mde"],
        "unusable_generator": row["flagged"],
        "note": row["note"],
    }


def _omnibus_entry(result: FriedmanResult, design: str) -> dict:
    return {"design": design, **result.as_dict()}


# --------------------------------------------------------------------------- comparisons


def _rho(df: pd.DataFrame, dataset: str, folds: int) -> tuple[float, str]:
    """n_test / n_train of the Nadeau–Bengio correction, from the dataset's patient counts."""
    if {"test_patients", "train_patients", "val_patients"} <= set(df.columns):
        rows = df[df["dataset"] == dataset]
        learn = (rows["train_patients"] + rows["val_patients"]).mean()
        if learn > 0:
            return float(rows["test_patients"].mean() / learn), ""
    return 1.0 / max(folds - 1, 1), "rho assumed 1/(folds-1): the table lacks patient counts"


def _compare(
    base: pd.Series, cur: pd.Series, rho: tuple[float, str], alpha: float, rope: float
) -> dict[str, Any]:
    """One n level against n = 0 over the folds both have."""
    paired = pd.concat({"x": cur, "b": base}, axis=1, join="inner").dropna()
    diffs = (paired["x"] - paired["b"]).to_numpy(dtype=float)
    test = signed_rank(diffs)
    effect, lo, hi, level = hodges_lehmann(diffs, alpha)
    rho, rho_note = rho
    nb = nadeau_bengio(diffs, rho)
    harm, equivalent, gain = correlated_bayes(nb, rope)
    sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan
    notes = [n for n in (rho_note,) if n]
    if len(paired) < len(cur):
        notes.append(f"{len(cur) - len(paired)} fold(s) without a real-only partner")
    if test.floor >= alpha:
        notes.append(f"{test.n_nonzero} folds: p cannot fall below {test.floor:.3g}")
    return {
        "n_pairs": int(len(diffs)),
        "mean_diff": float(diffs.mean()) if len(diffs) else math.nan,
        "effect": effect, "ci_low": lo, "ci_high": hi, "ci_level": level,
        "w_plus": test.w_plus, "w_minus": test.w_minus, "p_value": test.p_value,
        "sign": test.direction,
        "nb_t": nb.t, "nb_p": nb.p_value, "rho": rho,
        "p_harm": harm, "p_equivalent": equivalent, "p_gain": gain,
        "min_p": test.floor,
        "mde": min_detectable_effect(sd, len(diffs), rho, alpha),
        "note": "; ".join(notes),
    }  # fmt: skip


COMPARISON_COLUMNS = [
    "dataset", "source", "n", "n_pairs", "seeds", "mean_diff", "effect", "ci_low", "ci_high",
    "ci_level", "w_plus", "w_minus", "p_value", "p_holm", "significant", "direction", "nb_t",
    "nb_p", "nb_p_holm", "rho", "p_harm", "p_equivalent", "p_gain", "min_p", "min_p_holm",
    "mde", "flagged", "note",
]  # fmt: skip


def comparisons(
    df: pd.DataFrame, units: pd.DataFrame, alpha: float = 0.05, rope: float = DEFAULT_ROPE
) -> pd.DataFrame:
    """Each (dataset, source, n > 0) against its n = 0 over folds; Holm within each source."""
    rows: list[dict[str, Any]] = []
    data = units[units["source"] != BASELINE_SOURCE]
    for (dataset, source), prob in data.groupby(["dataset", "source"], sort=True):
        base = prob.loc[prob["n"] == 0].set_index("fold")["value"]
        rho = _rho(df, dataset, prob["fold"].nunique())
        for n in sorted(prob.loc[prob["n"] > 0, "n"].unique()):
            level = prob.loc[prob["n"] == n]
            row = _compare(base, level.set_index("fold")["value"], rho, alpha, rope)
            if base.empty:
                row["note"] = "no real-only baseline; " + row["note"]
            seeds = int(level["seeds"].min())
            flagged = bool(level["flagged"].any())  # built on a generator flagged unusable
            rows.append({"dataset": dataset, "source": source, "n": int(n), "seeds": seeds,
                         "flagged": flagged, **row})  # fmt: skip
    out = pd.DataFrame(rows, columns=[*COMPARISON_COLUMNS, "sign"])
    for _, family in out.groupby("source", sort=False):
        idx = family.index
        out.loc[idx, "p_holm"] = holm_adjust(family["p_value"])
        out.loc[idx, "nb_p_holm"] = holm_adjust(family["nb_p"])
        out.loc[idx, "min_p_holm"] = np.minimum(1.0, family["min_p"] * len(family))
    out["significant"] = out["p_holm"] < alpha  # NaN compares False
    out["direction"] = np.where(out["significant"], out["sign"], "none")
    types = {"n": int, "n_pairs": int, "significant": bool, "flagged": bool}
    return out[COMPARISON_COLUMNS].astype(types)


def across_datasets(units: pd.DataFrame, rope: float = DEFAULT_ROPE) -> pd.DataFrame:
    """Per (source, n > 0): baycomp's Bayesian signed-rank over the datasets' mean Dice."""
    means = units[units["source"] != BASELINE_SOURCE]
    means = means.groupby(["source", "n", "dataset"], sort=True)["value"].mean().unstack("n")
    rows = []
    for source, table in means.groupby(level="source", sort=True):
        if 0 not in table.columns:
            continue
        for n in [c for c in table.columns if c > 0]:
            both = table[[0, n]].dropna()
            harm, equivalent, gain = signed_rank_bayes(both[0], both[n], rope)
            rows.append(
                {
                    "source": source,
                    "n": int(n),
                    "num_datasets": len(both),
                    "p_harm": harm,
                    "p_equivalent": equivalent,
                    "p_gain": gain,
                }  # fmt: skip
            )
    return pd.DataFrame(
        rows, columns=["source", "n", "num_datasets", "p_harm", "p_equivalent", "p_gain"]
    )


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


def compare_sources(units: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """At each n > 0: the sources against each other over (dataset, fold) blocks."""
    data = units[(units["source"] != BASELINE_SOURCE) & (units["n"] > 0)]
    rows = []
    for n, level in data.groupby("n", sort=True):
        table = level.pivot_table(index=["dataset", "fold"], columns="source", values="value")
        table = table.dropna()
        row: dict[str, Any] = {"n": int(n), "sources": len(table.columns), "blocks": len(table)}
        if len(table.columns) < 2 or len(table) < 2:
            rows.append({**row, "test": "none", "p_value": math.nan, "best": None})
            continue
        best = table.mean().idxmax()
        if len(table.columns) == 2:
            a, b = table.columns
            test = signed_rank(table[b] - table[a])
            rows.append({**row, "test": f"signed-rank {b} - {a}", "p_value": test.p_value,
                         "floor": test.floor, "best": best})  # fmt: skip
        else:
            f = friedman_test(table, alpha, f"sources at n={n}")
            rows.append({**row, "test": "Friedman", "p_value": f.p_value, "floor": f.floor,
                         "best": best})  # fmt: skip
    out = pd.DataFrame(rows, columns=["n", "sources", "blocks", "test", "p_value", "floor", "best"])
    out["p_holm"] = holm_adjust(out["p_value"]) if len(out) else []
    out["significant"] = (out["p_holm"] < alpha) & (out["floor"].fillna(1.0) < alpha)
    return out


# --------------------------------------------------------------------------- power


def power_summary(
    comps: pd.DataFrame,
    tests: list[FriedmanResult],
    sources: pd.DataFrame,
    alpha: float,
    design: str = "per-source",
) -> list[dict]:
    """Per test family: independent pairs or blocks, the smallest p it can give (after its
    correction) and, for the per-dataset comparisons, the median detectable effect."""
    families = []
    for source, family in comps.groupby("source", sort=True):
        families.append(
            {
                "family": f"{source}: each n against real-only, per dataset",
                "tests": int(len(family)),
                "independent_pairs": int(family["n_pairs"].min()),
                "min_p": float(family["min_p"].min()),
                "min_p_after_correction": float(family["min_p_holm"].min()),
                "can_reach_alpha": bool(family["min_p_holm"].min() < alpha),
                "mde": _plain(float(family["mde"].median())),
                "mde_note": "smallest mean Dice difference the corrected t-test detects "
                "with 80% power at the observed fold-to-fold spread (median over tests)",
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
        floor = float(sources["floor"].min()) if "floor" in sources else math.nan
        families.append(
            {
                "family": "sources against each other at each n",
                "tests": int(len(sources)),
                "independent_pairs": int(sources["blocks"].min()),
                "min_p": floor,
                "min_p_after_correction": min(1.0, floor * len(sources)),
                "can_reach_alpha": bool(floor * len(sources) < alpha),
            }
        )
    return families


def design_floors(
    datasets: int, sources: int, n_levels: int, folds: int, alpha: float = 0.05
) -> list[tuple[str, str]]:
    """(field, problem) for each test family a planned study cannot make significant."""
    problems = []
    comparisons_per_source = datasets * (n_levels - 1)
    floor = min(1.0, wilcoxon_floor(folds) * comparisons_per_source)
    if comparisons_per_source and floor >= alpha:
        problems.append(
            (
                "folds",
                f"{folds} folds (seeds do not add pairs) give at best p = {floor:.3g} after "
                f"Holm over a source's {comparisons_per_source} comparisons: no per-dataset "
                "gain or harm can be significant (the Bayesian probabilities still inform)",
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


# --------------------------------------------------------------------------- the analysis


def analyse(
    df: pd.DataFrame,
    design: str = "per-source",
    alpha: float = 0.05,
    rope: float = DEFAULT_ROPE,
    metric: str = "dice",
    class_name: str = "mean",
) -> StudyStatistics:
    """The whole analysis of a results table (see the module docstring)."""
    if design not in DESIGNS:
        raise StatsError(f"design: {design!r} is not one of {', '.join(DESIGNS)}")
    units = fold_units(df, metric, class_name)
    comps = comparisons(df, units, alpha, rope)
    tests, notes = omnibus(units, design, alpha)
    sources = compare_sources(units, alpha)
    return StudyStatistics(
        design=design,
        alpha=alpha,
        rope=rope,
        summary=summarise(units[units["source"] != BASELINE_SOURCE]),
        comparisons=comps,
        across_datasets=across_datasets(units, rope),
        omnibus=tests,
        omnibus_notes=notes,
        sources=sources,
        power=power_summary(comps, tests, sources, alpha, design),
        imbalance=missing_units(units[units["source"] != BASELINE_SOURCE]),
    )
