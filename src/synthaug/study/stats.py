"""Statistics of a study's results table: summaries, Friedman + Nemenyi, Wilcoxon vs n = 0.

The results table has one row per cell and class with at least the columns ``dataset``,
``source``, ``n`` (added synthetic patients; 0 = real only), ``fold``, ``seed``,
``class_name`` (``"mean"`` = mean foreground Dice) and the metric (``dice``).
A *problem* is a ``(dataset, source)`` pair. The real-only baseline (n = 0) is trained once
per (dataset, fold, seed); rows with ``source == "none"`` are copied to every source of their
dataset by :func:`expand_baseline`, which every function here applies first.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as ss

from synthaug.errors import SynthaugError

BASELINE_SOURCE = "none"
"""``source`` label of the shared real-only (n = 0) rows."""

PROBLEM = ["dataset", "source"]
PAIR = ["fold", "seed"]
CELL = ["dataset", "source", "n", "fold", "seed"]

WILCOXON_COLUMNS = [
    "dataset",
    "source",
    "n",
    "n_pairs",
    "mean_diff",
    "median_diff",
    "statistic",
    "p_value",
    "p_holm",
    "significant",
    "direction",
    "note",
]


class StatsError(SynthaugError, ValueError):
    """The results table cannot support the requested analysis (columns, duplicates, size)."""


# --------------------------------------------------------------------------- table helpers


def _require(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StatsError(f"results table lacks column(s) {missing}; it has {list(df.columns)}")


def expand_baseline(df: pd.DataFrame) -> pd.DataFrame:
    """Copy the shared n = 0 rows (``source == "none"``) to every source of their dataset.

    Returns a new table without those ``"none"`` rows, except for datasets that have no other
    source (kept as they are). Where a source already has its own n = 0 row for the same
    (fold, seed, class_name), that row wins. Idempotent.
    """
    _require(df, ["dataset", "source", "n"])
    shared = (df["source"] == BASELINE_SOURCE).to_numpy()
    if not shared.any():
        return df.reset_index(drop=True)
    bad = df[shared & (df["n"] != 0).to_numpy()]
    if len(bad):
        raise StatsError(
            f'{len(bad)} row(s) have source "{BASELINE_SOURCE}" but n != 0 '
            f"(n values {sorted(bad['n'].unique().tolist())}); only the n = 0 baseline is shared"
        )
    keep = df[~shared]
    base = df[shared]
    copies = []
    for dataset, rows in base.groupby("dataset", sort=False):
        sources = keep.loc[keep["dataset"] == dataset, "source"].unique()
        if len(sources) == 0:
            copies.append(rows)  # nothing to attach to: leave the baseline as it is
            continue
        copies.extend(rows.assign(source=s) for s in sources)
    added = pd.concat(copies, ignore_index=True)
    # A source's own n = 0 row wins over the copy; genuine duplicates are left for callers.
    key = [c for c in [*CELL, "class_name"] if c in df.columns]
    own = pd.MultiIndex.from_frame(keep[key])
    added = added[~pd.MultiIndex.from_frame(added[key]).isin(own)]
    return pd.concat([keep, added], ignore_index=True)


def _select(df: pd.DataFrame, metric: str, class_name: str | None) -> pd.DataFrame:
    """Rows of one class (all classes if None) after :func:`expand_baseline`; checked unique."""
    _require(df, [*CELL, metric, *(["class_name"] if class_name is not None else [])])
    data = expand_baseline(df)
    key = list(CELL)
    if class_name is not None:
        data = data[data["class_name"] == class_name]
        if data.empty:
            raise StatsError(f"no rows with class_name == {class_name!r}")
    elif "class_name" in data.columns:
        key.append("class_name")
    dup = data.duplicated(subset=key, keep=False)
    if dup.any():
        example = data.loc[dup, key].head(3).to_dict("records")
        raise StatsError(
            f"{int(dup.sum())} rows share a cell key {key} (e.g. {example}); "
            "deduplicate the results table (or split it by the extra factor) first"
        )
    return data


# --------------------------------------------------------------------------- summaries


def summarise(
    df: pd.DataFrame, metric: str = "dice", class_name: str | None = "mean"
) -> pd.DataFrame:
    """Per (dataset, source, n): mean, standard error, std, count of ``metric`` over folds × seeds.

    Returns columns dataset, source, n[, class_name if ``class_name`` is None], mean, se, std,
    count. ``std`` uses ddof=1; ``se = std / sqrt(count)``; both are NaN when count < 2.
    NaN metric values are left out of every statistic and of the count.
    """
    data = _select(df, metric, class_name)
    by_class = class_name is None and "class_name" in data.columns
    keys = ["dataset", "source", "n"] + (["class_name"] if by_class else [])
    out = data.groupby(keys, sort=True)[metric].agg(["mean", "std", "count"]).reset_index()
    out["count"] = out["count"].astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["se"] = out["std"] / np.sqrt(out["count"].to_numpy(dtype=float))
    return out[[*keys, "mean", "se", "std", "count"]]


# --------------------------------------------------------------------------- Friedman + Nemenyi


def nemenyi_q_alpha(k: int, alpha: float = 0.05) -> float:
    """Return Nemenyi's critical value q_α for k treatments: studentized range quantile / √2."""
    if k < 2:
        raise StatsError(f"the Nemenyi critical value needs k >= 2 treatments, got {k}")
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha must lie in (0, 1), got {alpha}")
    return float(ss.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def critical_difference(k: int, num_problems: int, alpha: float = 0.05) -> float:
    """Return Demšar's critical difference CD = q_α · sqrt(k(k+1) / (6N)) in average-rank units."""
    if num_problems < 1:
        raise StatsError(f"the critical difference needs N >= 1 problems, got {num_problems}")
    return nemenyi_q_alpha(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * num_problems))


def nemenyi_cliques(avg_ranks: Mapping[Hashable, float], cd: float) -> list[list[Hashable]]:
    """Return the maximal groups of ≥ 2 treatments whose average ranks span less than ``cd``.

    Each group lists treatments from best (lowest rank) to worst; groups are ordered by their
    best member. A treatment significantly different from all others is in no group.
    """
    order = sorted(avg_ranks, key=lambda t: avg_ranks[t])
    ranks = [avg_ranks[t] for t in order]
    groups: list[list[Hashable]] = []
    last_end = -1
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and j > last_end:  # not contained in the previous (longer-reaching) group
            groups.append(order[i : j + 1])
            last_end = j
    return groups


@dataclass
class FriedmanResult:
    """Friedman test over n levels (treatments) across (dataset, source) problems (blocks).

    ``avg_ranks``: rank 1 = best = highest score, ties averaged. ``chi2``/``p_value``: scipy's
    tie-corrected Friedman statistic; ``chi2_uncorrected``: Demšar's formula without the tie
    correction, from which the Iman–Davenport ``iman_davenport_f`` (F with k−1 and (k−1)(N−1)
    degrees of freedom) is computed as in Demšar (2006). ``nemenyi_p``: pairwise p-values
    (scikit-posthocs), indexed by n level. ``cd``: critical difference at ``alpha``;
    ``cliques``: maximal groups of n levels whose rank span is < ``cd``.
    """

    n_levels: list[int]
    problems: list[tuple[str, str]]
    num_problems: int
    scores: pd.DataFrame
    chi2: float
    p_value: float
    chi2_uncorrected: float
    iman_davenport_f: float
    iman_davenport_p: float
    avg_ranks: dict[int, float]
    nemenyi_p: pd.DataFrame
    alpha: float
    q_alpha: float
    cd: float
    cliques: list[list[int]]
    dropped_levels: list[int] = field(default_factory=list)
    dropped_problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        """Number of treatments (n levels) compared."""
        return len(self.n_levels)

    @property
    def significant(self) -> bool:
        """Whether the Friedman test (tie-corrected) rejects equal ranks at ``alpha``."""
        return bool(self.p_value < self.alpha)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (no score matrix; Nemenyi p as nested dict)."""
        return {
            "n_levels": list(self.n_levels),
            "num_problems": self.num_problems,
            "problems": [list(p) for p in self.problems],
            "chi2": self.chi2,
            "p_value": self.p_value,
            "chi2_uncorrected": self.chi2_uncorrected,
            "iman_davenport_f": self.iman_davenport_f,
            "iman_davenport_p": self.iman_davenport_p,
            "avg_ranks": {str(n): r for n, r in self.avg_ranks.items()},
            "nemenyi_p": {
                str(a): {str(b): float(self.nemenyi_p.loc[a, b]) for b in self.n_levels}
                for a in self.n_levels
            },
            "alpha": self.alpha,
            "q_alpha": self.q_alpha,
            "cd": self.cd,
            "cliques": [list(c) for c in self.cliques],
            "dropped_levels": list(self.dropped_levels),
            "dropped_problems": [list(p) for p in self.dropped_problems],
            "notes": list(self.notes),
        }


def friedman_nemenyi(
    df: pd.DataFrame,
    class_name: str = "mean",
    alpha: float = 0.05,
    metric: str = "dice",
    complete: Literal["levels", "problems"] = "levels",
) -> FriedmanResult:
    """Friedman test of the n levels over all (dataset, source) problems, with Nemenyi post-hoc.

    A problem's score at n is its mean ``metric`` over folds × seeds (NaNs skipped). With
    ``complete="levels"`` only n levels present in every problem are compared (the others are
    listed in ``dropped_levels``); with ``"problems"`` only problems having every n level seen
    anywhere are kept (``dropped_problems``). Raises :class:`StatsError` when fewer than 3
    levels or 2 problems remain. Returns a :class:`FriedmanResult`.
    """
    if complete not in ("levels", "problems"):
        raise StatsError(f'complete must be "levels" or "problems", got {complete!r}')
    data = _select(df, metric, class_name)
    data = data[data["source"] != BASELINE_SOURCE]
    scores = data.groupby([*PROBLEM, "n"], sort=True)[metric].mean().unstack("n")
    scores = scores.sort_index(axis=1)
    present = scores.notna()
    dropped_levels: list[int] = []
    dropped_problems: list[tuple[str, str]] = []
    if complete == "levels":
        full = present.all(axis=0)
        dropped_levels = [int(n) for n in scores.columns[~full]]
        scores = scores.loc[:, full]
    else:
        full = present.all(axis=1)
        dropped_problems = [tuple(p) for p in scores.index[~full]]
        scores = scores.loc[full]
    n_problems, k = scores.shape
    if k < 3 or n_problems < 2:
        raise StatsError(
            f"the Friedman test needs >= 3 n levels in >= 2 problems; have {k} level(s) "
            f"{[int(n) for n in scores.columns]} in {n_problems} problem(s) "
            f"(dropped levels {dropped_levels}, dropped problems {dropped_problems})"
        )
    levels = [int(n) for n in scores.columns]
    scores.columns = pd.Index(levels, name="n")
    values = scores.to_numpy(dtype=float)

    ranks = ss.rankdata(-values, axis=1, method="average")  # rank 1 = highest score
    mean_ranks = ranks.mean(axis=0)
    avg_ranks = {n: float(r) for n, r in zip(levels, mean_ranks, strict=True)}

    chi2_unc = (
        12.0 * n_problems / (k * (k + 1)) * (float(np.sum(mean_ranks**2)) - k * (k + 1) ** 2 / 4.0)
    )
    chi2_unc = max(chi2_unc, 0.0)  # rounding can leave -1e-15 when every block is tied
    if np.all(values == values[:, :1]):  # every problem fully tied: no evidence at all
        chi2, p_value = 0.0, 1.0
    else:
        res = ss.friedmanchisquare(*values.T)
        chi2, p_value = float(res.statistic), float(res.pvalue)

    df1, df2 = k - 1, (k - 1) * (n_problems - 1)
    denom = n_problems * (k - 1) - chi2_unc
    if denom <= 0:  # identical ranking in every problem
        f_stat, f_p = math.inf, 0.0
    else:
        f_stat = (n_problems - 1) * chi2_unc / denom
        f_p = float(ss.f.sf(f_stat, df1, df2))

    import scikit_posthocs as sp  # imported here: it pulls in matplotlib.pyplot and seaborn

    nemenyi = sp.posthoc_nemenyi_friedman(pd.DataFrame(values, columns=levels))
    nemenyi.index = pd.Index(levels, name="n")
    nemenyi.columns = pd.Index(levels, name="n")

    q_alpha = nemenyi_q_alpha(k, alpha)
    cd = critical_difference(k, n_problems, alpha)
    cliques = [[int(n) for n in c] for c in nemenyi_cliques(avg_ranks, cd)]

    notes = []
    if dropped_levels:
        notes.append(f"n levels missing from some problem were dropped: {dropped_levels}")
    if dropped_problems:
        notes.append(f"problems missing some n level were dropped: {dropped_problems}")
    if n_problems <= 10 or k <= 5:
        notes.append(
            f"N={n_problems} problems, k={k} levels: the chi-square approximation of the "
            "Friedman p-value is rough for N <= 10 or k <= 5"
        )
    return FriedmanResult(
        n_levels=levels,
        problems=[tuple(p) for p in scores.index],
        num_problems=n_problems,
        scores=scores,
        chi2=chi2,
        p_value=p_value,
        chi2_uncorrected=float(chi2_unc),
        iman_davenport_f=float(f_stat),
        iman_davenport_p=f_p,
        avg_ranks=avg_ranks,
        nemenyi_p=nemenyi,
        alpha=alpha,
        q_alpha=q_alpha,
        cd=cd,
        cliques=cliques,
        dropped_levels=dropped_levels,
        dropped_problems=dropped_problems,
        notes=notes,
    )


# --------------------------------------------------------------------------- Wilcoxon vs n = 0


def holm_adjust(p_values: ArrayLike) -> np.ndarray:
    """Return Holm step-down adjusted p-values (same order; NaNs stay NaN and are not counted)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    q = p[valid]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * q[order])
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    out[valid] = result
    return out


def _paired_test(
    diffs: np.ndarray, zero_method: str, alpha: float
) -> tuple[float, float, list[str]]:
    """(statistic, p, notes) of a two-sided Wilcoxon signed-rank test; never raises."""
    m = diffs.size
    if m < 2:
        return math.nan, math.nan, [f"{m} pair(s): no test"]
    if np.all(diffs == 0):
        return math.nan, 1.0, ["all differences zero"]
    notes = []
    nonzero = int(np.count_nonzero(diffs))
    floor = 2.0 ** (1 - nonzero)  # smallest two-sided exact p with this many nonzero pairs
    if floor >= alpha:
        notes.append(f"{nonzero} nonzero pairs: p cannot fall below {floor:.3g}")
    try:
        res = ss.wilcoxon(diffs, zero_method=zero_method)
        return float(res.statistic), float(res.pvalue), notes
    except ValueError as err:  # e.g. too few nonzero differences for the zero_method
        return math.nan, math.nan, [*notes, f"wilcoxon failed: {err}"]


def wilcoxon_vs_baseline(
    df: pd.DataFrame,
    class_name: str = "mean",
    alpha: float = 0.05,
    metric: str = "dice",
    zero_method: Literal["wilcox", "pratt", "zsplit"] = "wilcox",
) -> pd.DataFrame:
    """Per problem and n > 0: paired Wilcoxon signed-rank test of metric(n) vs metric(0).

    Pairs are matched on (fold, seed); cells without a partner or with a NaN value are left out.
    Holm's correction runs over the n levels within each problem. Returns one row per
    (dataset, source, n > 0) with columns dataset, source, n, n_pairs, mean_diff,
    median_diff (metric(n) − metric(0)), statistic, p_value, p_holm, significant
    (p_holm < alpha), direction ("gain" / "harm" / "none" by the sign of mean_diff when
    significant) and note (why p is NaN or 1, unpaired cells, unreachable significance).
    Fewer than 2 pairs give p = NaN; all-zero differences give p = 1.
    """
    data = _select(df, metric, class_name)
    data = data[data["source"] != BASELINE_SOURCE]
    rows: list[dict[str, Any]] = []
    for (dataset, source), prob in data.groupby(PROBLEM, sort=True):
        base = prob.loc[prob["n"] == 0].set_index(PAIR)[metric]
        start = len(rows)
        for n in sorted(prob.loc[prob["n"] > 0, "n"].unique()):
            cur = prob.loc[prob["n"] == n].set_index(PAIR)[metric]
            paired = pd.concat({"x": cur, "b": base}, axis=1, join="inner").dropna()
            diffs = (paired["x"] - paired["b"]).to_numpy(dtype=float)
            notes = []
            if base.empty:
                notes.append("no n=0 baseline")
            elif len(paired) < len(cur):
                notes.append(f"{len(cur) - len(paired)} cell(s) unpaired or NaN")
            stat, p, test_notes = _paired_test(diffs, zero_method, alpha)
            rows.append(
                {
                    "dataset": dataset,
                    "source": source,
                    "n": int(n),
                    "n_pairs": int(diffs.size),
                    "mean_diff": float(diffs.mean()) if diffs.size else math.nan,
                    "median_diff": float(np.median(diffs)) if diffs.size else math.nan,
                    "statistic": stat,
                    "p_value": p,
                    "note": "; ".join(notes + test_notes),
                }
            )
        block = rows[start:]
        for row, adj in zip(block, holm_adjust([r["p_value"] for r in block]), strict=True):
            row["p_holm"] = float(adj)
            row["significant"] = bool(adj < alpha)  # NaN compares False
            if row["significant"] and row["mean_diff"] > 0:
                row["direction"] = "gain"
            elif row["significant"] and row["mean_diff"] < 0:
                row["direction"] = "harm"
            else:
                row["direction"] = "none"
    out = pd.DataFrame(rows, columns=WILCOXON_COLUMNS)
    return out.astype({"n": int, "n_pairs": int, "significant": bool})
