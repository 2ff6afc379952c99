"""Statistical building blocks of a study's analysis (``analysis.py`` puts them together).

The results table has one row per cell and class with at least the columns ``dataset``,
``source``, ``n`` (added synthetic patients; 0 = real only), ``fold``, ``seed``,
``class_name`` (``"mean"`` = mean foreground Dice) and the metric (``dice``). The real-only
baseline (n = 0) is trained once per (dataset, fold, seed); rows with ``source == "none"`` are
copied to every source of their dataset by :func:`expand_baseline`.

Units of analysis: seeds change only a U-Net's initialisation and batch order — the patients,
the generator and the synthetic set are shared within a fold — so :func:`fold_units` averages
seeds within a fold and every test here treats a fold as one independent pair.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as ss

from synthaug.errors import SynthaugError

BASELINE_SOURCE = "none"
"""``source`` label of the shared real-only (n = 0) rows."""

PROBLEM = ["dataset", "source"]
CELL = ["dataset", "source", "n", "fold", "seed"]
UNIT = ["dataset", "source", "n", "fold"]


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


# --------------------------------------------------------------------------- units and summaries


def fold_units(df: pd.DataFrame, metric: str = "dice", class_name: str = "mean") -> pd.DataFrame:
    """One row per (dataset, source, n, fold): ``value`` = the mean of ``metric`` over the
    fold's seeds (NaNs skipped), ``seeds`` = how many seeds gave a value. Units without any
    value are dropped. The shared n = 0 rows are copied to every source first."""
    data = _select(df, metric, class_name)
    # A cell built on a generator flagged unusable (the study ran with allow_unusable).
    flagged = data["generator_usable"].eq(False) if "generator_usable" in data else False
    # A U-Net whose best checkpoint is at its step cap: the budget, not the data, decided it.
    capped = data["capped"].fillna(False).astype(bool) if "capped" in data else False
    data = data.assign(flagged=flagged, capped=capped)
    grouped = data.groupby(UNIT, sort=True)
    units = grouped.agg(
        value=(metric, "mean"),
        seeds=(metric, "count"),
        flagged=("flagged", "any"),
        capped=("capped", "any"),
    ).reset_index()
    units = units[units["seeds"] > 0].reset_index(drop=True)
    return units.astype({"n": int, "fold": int, "seeds": int, "flagged": bool, "capped": bool})


def summarise(units: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, source, n): mean, standard error and std over folds of the seed-averaged
    values, the number of folds (``count``) and of seeds per fold (``seeds``, the smallest).
    ``std`` uses ddof=1; both it and ``se`` are NaN with fewer than 2 folds."""
    keys = ["dataset", "source", "n"]
    flagged = units["flagged"] if "flagged" in units else pd.Series(False, index=units.index)
    out = (
        units.assign(flagged=flagged)
        .groupby(keys, sort=True)
        .agg(
            mean=("value", "mean"),
            std=("value", "std"),
            count=("value", "count"),
            seeds=("seeds", "min"),
            flagged=("flagged", "any"),
        )
        .reset_index()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["se"] = out["std"] / np.sqrt(out["count"].to_numpy(dtype=float))
    columns = [*keys, "mean", "se", "std", "count", "seeds", "flagged"]
    return out[columns].astype({"count": int, "seeds": int, "flagged": bool})


def missing_units(units: pd.DataFrame) -> list[str]:
    """Imbalance in words: per (dataset, source), the folds some n level has and another lacks."""
    notes = []
    for (dataset, source), prob in units.groupby(PROBLEM, sort=True):
        folds = set(prob["fold"])
        for n, level in prob.groupby("n", sort=True):
            lacking = sorted(folds - set(level["fold"]))
            if lacking:
                notes.append(f"{dataset} / {source} n={n} lacks fold(s) {lacking}")
    return notes


# --------------------------------------------------------------------------- paired tests


@dataclass(frozen=True)
class SignedRank:
    """Wilcoxon signed-rank test of paired differences (zeros dropped, Wilcoxon's method).

    ``w_plus``/``w_minus``: rank sums of the positive / negative differences — the direction
    of the effect the test measures; ``p_value``: two-sided (exact without ties and n ≤ 50);
    ``floor``: the smallest two-sided p any data could give with this many nonzero pairs.
    """

    n_pairs: int
    n_nonzero: int
    w_plus: float
    w_minus: float
    p_value: float
    floor: float

    @property
    def direction(self) -> str:
        """ "gain" when the positive ranks dominate, "harm" when the negative ones do."""
        if self.w_plus > self.w_minus:
            return "gain"
        return "harm" if self.w_minus > self.w_plus else "none"


def wilcoxon_floor(n_nonzero: int) -> float:
    """Smallest two-sided exact Wilcoxon p with ``n_nonzero`` pairs: 2 / 2^n (1 for n = 0)."""
    return min(1.0, 2.0 / 2.0**n_nonzero) if n_nonzero else 1.0


def signed_rank(diffs: ArrayLike) -> SignedRank:
    """The signed-rank test of ``diffs`` (NaN p with fewer than 2 pairs; 1 when all are 0)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    nonzero = d[d != 0]
    ranks = ss.rankdata(np.abs(nonzero))
    w_plus, w_minus = float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())
    if len(d) < 2:
        p = math.nan
    elif len(nonzero) == 0:
        p = 1.0
    else:
        p = float(ss.wilcoxon(nonzero, zero_method="wilcox").pvalue)
    return SignedRank(len(d), len(nonzero), w_plus, w_minus, p, wilcoxon_floor(len(nonzero)))


def _signed_rank_null_cdf(n: int) -> np.ndarray:
    """P(W+ ≤ w) for w = 0..n(n+1)/2 under H0 with n untied nonzero pairs (exact)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):  # each rank is in W+ or not: subset sums of 1..n
        counts[r:] = counts[r:] + counts[:-r].copy()
    return np.cumsum(counts) / 2.0**n


def hodges_lehmann(diffs: ArrayLike, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """The Hodges–Lehmann estimate of a paired shift (median of the Walsh averages) and its
    distribution-free confidence interval from the signed-rank null distribution.

    Returns (estimate, low, high, level): ``level`` is the interval's exact coverage — at
    least 1 − alpha when the pairs allow it, else the widest interval's (lower) coverage.
    """
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2.0)
    estimate = float(np.median(walsh))
    cdf = _signed_rank_null_cdf(n)
    # [A_(k), A_(M+1-k)] of the sorted Walsh averages covers the shift with probability
    # 1 - 2 P(W+ <= k-1): the largest k with P(W+ <= k-1) <= alpha/2, at least 1.
    k = max(int(np.searchsorted(cdf, alpha / 2.0, side="right")), 1)
    level = 1.0 - 2.0 * float(cdf[k - 1])
    return estimate, float(walsh[k - 1]), float(walsh[len(walsh) - k]), level


@dataclass(frozen=True)
class CorrectedT:
    """Nadeau–Bengio corrected resampled t-test of fold differences: the training sets of
    cross-validation folds overlap, so the variance of the mean difference is inflated by
    ``rho`` = n_test / n_train (Nadeau & Bengio 2003). For r repeats of k-fold the same
    statistic over all J = k·r differences is Bouckaert & Frank's (2004) corrected repeated
    k-fold test: t = mean / sqrt((1/(k·r) + n_test/n_train) · var), k·r − 1 degrees of freedom."""

    mean: float
    se: float
    t: float
    df: int
    p_value: float
    rho: float


def nadeau_bengio(diffs: ArrayLike, rho: float) -> CorrectedT:
    """t = mean(d) / sqrt((1/J + rho) · var(d)), J−1 degrees of freedom, two-sided p."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < 2:
        return CorrectedT(float(d.mean()) if n else math.nan, math.nan, math.nan, 0, math.nan, rho)
    mean, var = float(d.mean()), float(d.var(ddof=1))
    se = math.sqrt((1.0 / n + rho) * var)
    if se == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0 else 0.0
    else:
        t = mean / se
        p = float(2.0 * ss.t.sf(abs(t), n - 1))
    return CorrectedT(mean, se, t, n - 1, p, rho)


def correlated_bayes(test: CorrectedT, rope: float) -> tuple[float, float, float]:
    """baycomp's Bayesian correlated t-test on the corrected fold differences:
    (P(harm), P(practically equivalent), P(gain)) with the region of practical equivalence
    ±``rope`` (Benavoli et al. 2017). NaNs with fewer than 2 folds."""
    from baycomp.single import Posterior

    if test.df < 1:
        return math.nan, math.nan, math.nan
    if not math.isfinite(test.se):
        return math.nan, math.nan, math.nan
    if test.se == 0:  # every fold difference equal: the posterior is a point at the mean
        harm, gain = float(test.mean < -rope), float(test.mean > rope)
        return harm, 1.0 - harm - gain, gain
    posterior = Posterior(test.mean, test.se**2, test.df, rope)
    return _three(posterior.probs())


def signed_rank_bayes(
    baseline: ArrayLike, augmented: ArrayLike, rope: float, seed: int = 0, nsamples: int = 50000
) -> tuple[float, float, float]:
    """baycomp's Bayesian signed-rank test over datasets (Benavoli et al. 2014), one mean
    score per dataset: (P(harm), P(practically equivalent), P(gain)); seeded."""
    from baycomp import SignedRankTest

    x, y = np.asarray(baseline, dtype=float), np.asarray(augmented, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan, math.nan
    probs = SignedRankTest.probs(x, y, rope, nsamples=nsamples, random_state=seed)
    return _three(probs)


def _three(probs: Sequence[float]) -> tuple[float, float, float]:
    """baycomp's probabilities as (harm, equivalent, gain): with ``rope == 0`` it returns
    only (left, right), and P(equivalent) is 0."""
    values = [float(p) for p in probs]
    if len(values) == 2:
        return values[0], 0.0, values[1]
    harm, equivalent, gain = values
    return harm, equivalent, gain


def corrected_interval(test: CorrectedT, alpha: float) -> tuple[float, float]:
    """The corrected t-test's (1 − alpha) interval of the mean difference:
    mean ± t_{1−alpha/2, J−1} · se (NaN with fewer than 2 folds)."""
    if test.df < 1 or not math.isfinite(test.se):
        return math.nan, math.nan
    half = float(ss.t.ppf(1.0 - alpha / 2.0, test.df)) * test.se
    return test.mean - half, test.mean + half


def min_detectable_effect(
    sd: float, folds: int, rho: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest mean difference the corrected t-test detects with probability ``power``
    at two-sided ``alpha``, given the fold-to-fold standard deviation ``sd`` of differences
    (``folds`` = J paired differences, all repeats of a repeated k-fold included)."""
    if folds < 2 or not np.isfinite(sd):
        return math.nan
    df = folds - 1
    factor = ss.t.ppf(1.0 - alpha / 2.0, df) + ss.t.ppf(power, df)
    return float(factor * sd * math.sqrt(1.0 / folds + rho))


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


EXACT_FRIEDMAN_LIMIT = 2_000_000  # (k!)^(N-1) rankings enumerated at most


def friedman_exact_p(avg_ranks: np.ndarray, num_blocks: int) -> float | None:
    """Exact permutation p of the Friedman statistic Σ R_j² (R_j: rank sums), every block's
    ranking equally likely under H0 (ties ignored); None when there are too many rankings to
    enumerate (then the F approximation is good)."""
    k = len(avg_ranks)
    if math.factorial(k) ** (num_blocks - 1) > EXACT_FRIEDMAN_LIMIT:
        return None
    perms = np.array(list(itertools.permutations(range(1, k + 1))), dtype=np.int64)
    dist: dict[tuple, int] = {tuple(perms[0]): 1}  # the first block's labels are arbitrary
    for _ in range(num_blocks - 1):
        nxt: dict[tuple, int] = {}
        for sums, count in dist.items():
            for key in map(tuple, perms + np.array(sums)):
                nxt[key] = nxt.get(key, 0) + count
        dist = nxt
    observed = float(np.sum((np.asarray(avg_ranks) * num_blocks) ** 2))
    total = sum(dist.values())
    extreme = sum(c for sums, c in dist.items() if sum(v * v for v in sums) >= observed - 1e-9)
    return extreme / total


def friedman_floor(k: int, num_blocks: int) -> float:
    """Smallest exact p of the Friedman test with k treatments and N blocks: every block
    ranking the treatments alike, (k!)^(1−N) (ties ignored)."""
    return float(math.exp((1 - num_blocks) * math.lgamma(k + 1)))


@dataclass
class FriedmanResult:
    """Friedman test of k treatments over N blocks (``scores``: blocks × treatments).

    ``avg_ranks``: rank 1 = best = highest score, ties averaged. ``chi2``/``chi2_p``: scipy's
    tie-corrected Friedman statistic (shown); ``iman_davenport_f``/``iman_davenport_p``: F with
    k−1 and (k−1)(N−1) degrees of freedom (Demšar 2006). ``exact_p``: the permutation p when
    the rankings can be enumerated (few blocks) — where the F approximation is poorest.
    ``p_value``, the decision: the exact p when there is one, else the Iman–Davenport p.
    ``floor``: the smallest p any data could give with these N and k. ``significant``:
    p_value < alpha. Nemenyi's pairwise p-values, critical difference and cliques are filled in
    only when significant.
    """

    label: str
    treatments: list
    blocks: list
    scores: pd.DataFrame
    chi2: float
    chi2_p: float
    iman_davenport_f: float
    iman_davenport_p: float
    exact_p: float | None
    p_value: float
    floor: float
    alpha: float
    avg_ranks: dict
    significant: bool
    nemenyi_p: pd.DataFrame | None = None
    q_alpha: float | None = None
    cd: float | None = None
    cliques: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.treatments)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable (no score matrix)."""
        return {
            "label": self.label,
            "treatments": [_jsonable(t) for t in self.treatments],
            "num_blocks": self.num_blocks,
            "blocks": [str(b) for b in self.blocks],
            "chi2": self.chi2,
            "chi2_p_value": self.chi2_p,
            "iman_davenport_f": _finite(self.iman_davenport_f),
            "iman_davenport_p": self.iman_davenport_p,
            "exact_p": self.exact_p,
            "p_value": self.p_value,
            "p_value_from": "exact permutation" if self.exact_p is not None else "Iman-Davenport F",
            "floor": self.floor,
            "alpha": self.alpha,
            "significant": self.significant,
            "avg_ranks": {str(t): r for t, r in self.avg_ranks.items()},
            "nemenyi_p": None
            if self.nemenyi_p is None
            else {
                str(a): {str(b): float(self.nemenyi_p.loc[a, b]) for b in self.treatments}
                for a in self.treatments
            },
            "cd": self.cd,
            "cliques": [[_jsonable(t) for t in c] for c in self.cliques],
            "notes": list(self.notes),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer | int) else str(value)


def friedman_test(scores: pd.DataFrame, alpha: float = 0.05, label: str = "") -> FriedmanResult:
    """Friedman test of the columns (treatments) of ``scores`` over its rows (blocks), higher
    is better; Nemenyi post-hoc only when the Iman–Davenport F rejects (and can)."""
    n_blocks, k = scores.shape
    if k < 3 or n_blocks < 2:
        raise StatsError(
            f"the Friedman test needs >= 3 treatments in >= 2 blocks; have {k} in {n_blocks}"
        )
    values = scores.to_numpy(dtype=float)
    treatments = list(scores.columns)
    mean_ranks = ss.rankdata(-values, axis=1, method="average").mean(axis=0)
    avg_ranks = {t: float(r) for t, r in zip(treatments, mean_ranks, strict=True)}
    chi2_unc = (
        12.0 * n_blocks / (k * (k + 1)) * (float(np.sum(mean_ranks**2)) - k * (k + 1) ** 2 / 4.0)
    )
    chi2_unc = max(chi2_unc, 0.0)  # rounding can leave -1e-15 when every block is tied
    if np.all(values == values[:, :1]):  # every block fully tied: no evidence at all
        chi2, p_value = 0.0, 1.0
    else:
        res = ss.friedmanchisquare(*values.T)
        chi2, p_value = float(res.statistic), float(res.pvalue)
    denom = n_blocks * (k - 1) - chi2_unc
    if denom <= 0:  # identical ranking in every block
        f_stat, f_p = math.inf, 0.0
    else:
        f_stat = (n_blocks - 1) * chi2_unc / denom
        f_p = float(ss.f.sf(f_stat, k - 1, (k - 1) * (n_blocks - 1)))
    floor = friedman_floor(k, n_blocks)
    exact = friedman_exact_p(mean_ranks, n_blocks)
    decision = exact if exact is not None else f_p
    notes = []
    if floor >= alpha:
        notes.append(
            f"{n_blocks} blocks × {k} treatments: even blocks that all agree give "
            f"p = {floor:.3g} >= {alpha}, so this test cannot reject"
        )
    result = FriedmanResult(
        label, treatments, list(scores.index), scores, chi2, p_value, float(f_stat), f_p, exact,
        float(decision), floor, alpha, avg_ranks, bool(decision < alpha), notes=notes,
    )  # fmt: skip
    if result.significant:
        _nemenyi(result, values)
    return result


def _nemenyi(result: FriedmanResult, values: np.ndarray) -> None:
    import scikit_posthocs as sp  # imported here: it pulls in matplotlib.pyplot and seaborn

    treatments = result.treatments
    nemenyi = sp.posthoc_nemenyi_friedman(pd.DataFrame(values, columns=treatments))
    nemenyi.index = pd.Index(treatments)
    nemenyi.columns = pd.Index(treatments)
    result.nemenyi_p = nemenyi
    result.q_alpha = nemenyi_q_alpha(result.k, result.alpha)
    result.cd = critical_difference(result.k, result.num_blocks, result.alpha)
    result.cliques = [list(c) for c in nemenyi_cliques(result.avg_ranks, result.cd)]
