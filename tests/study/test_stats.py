"""Study statistics, checked against Demšar (2006) worked by hand and against tiny tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from synthaug.study.cd_diagram import plot_cd_diagram
from synthaug.study.stats import (
    StatsError,
    critical_difference,
    expand_baseline,
    friedman_nemenyi,
    holm_adjust,
    nemenyi_cliques,
    nemenyi_q_alpha,
    summarise,
    wilcoxon_vs_baseline,
)

# --------------------------------------------------------------------------- Demšar (2006)

# Table 6 (Section 3.2.2): AUC of C4.5, C4.5+m, C4.5+cf, C4.5+m+cf on 14 data sets.
DEMSAR_AUC = {
    "adult (sample)": (0.763, 0.768, 0.771, 0.798),
    "breast cancer": (0.599, 0.591, 0.590, 0.569),
    "breast cancer wisconsin": (0.954, 0.971, 0.968, 0.967),
    "cmc": (0.628, 0.661, 0.654, 0.657),
    "ionosphere": (0.882, 0.888, 0.886, 0.898),
    "iris": (0.936, 0.931, 0.916, 0.931),
    "liver disorders": (0.661, 0.668, 0.609, 0.685),
    "lung cancer": (0.583, 0.583, 0.563, 0.625),
    "lymphography": (0.775, 0.838, 0.866, 0.875),
    "mushroom": (1.000, 1.000, 1.000, 1.000),
    "primary tumor": (0.940, 0.962, 0.965, 0.962),
    "rheum": (0.619, 0.666, 0.614, 0.669),
    "voting": (0.972, 0.981, 0.975, 0.975),
    "wine": (0.957, 0.978, 0.946, 0.970),
}

# The ranks printed in Table 6 (1 = best), written out by hand. Every row follows from the
# printed AUCs except "voting": the paper ranks its two 0.975s as 2 and 3 (the unrounded AUCs
# differ), not 2.5 and 2.5. Only with these ranks do the published numbers come out.
DEMSAR_RANKS = {
    "adult (sample)": (4, 3, 2, 1),
    "breast cancer": (1, 2, 3, 4),
    "breast cancer wisconsin": (4, 1, 2, 3),
    "cmc": (4, 1, 3, 2),
    "ionosphere": (4, 2, 3, 1),
    "iris": (1, 2.5, 4, 2.5),
    "liver disorders": (3, 2, 4, 1),
    "lung cancer": (2.5, 2.5, 4, 1),
    "lymphography": (4, 3, 2, 1),
    "mushroom": (2.5, 2.5, 2.5, 2.5),
    "primary tumor": (4, 2.5, 1, 2.5),
    "rheum": (3, 2, 4, 1),
    "voting": (4, 1, 2, 3),
    "wine": (3, 1, 4, 2),
}

N_DEMSAR, K_DEMSAR = 14, 4
Q_005_K4 = 2.569  # Demšar Table 5(a), two-tailed Nemenyi, alpha = 0.05, k = 4
Q_010_K4 = 2.291  # Demšar Table 5(b), alpha = 0.10, k = 4


def _chi2_f(avg_ranks: list[float], n: int, k: int) -> float:
    # χ²_F = 12N / (k(k+1)) · [Σ R_j² − k(k+1)²/4]
    return 12 * n / (k * (k + 1)) * (sum(r * r for r in avg_ranks) - k * (k + 1) ** 2 / 4)


def _f_f(chi2: float, n: int, k: int) -> float:
    # F_F = (N−1) χ²_F / (N(k−1) − χ²_F)
    return (n - 1) * chi2 / (n * (k - 1) - chi2)


def _cd(q: float, n: int, k: int) -> float:
    # CD = q_α · sqrt(k(k+1) / (6N))
    return q * math.sqrt(k * (k + 1) / (6 * n))


def _hand_avg_ranks() -> list[float]:
    return [sum(row[j] for row in DEMSAR_RANKS.values()) / N_DEMSAR for j in range(K_DEMSAR)]


def _demsar_frame(auc: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    """Each data set is a (dataset, source) problem; classifier j is the level n = j."""
    rows = [
        {
            "dataset": name,
            "source": "demsar",
            "n": j,
            "fold": 0,
            "seed": 0,
            "class_name": "mean",
            "dice": value,
        }
        for name, values in auc.items()
        for j, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def _demsar_as_ranked() -> dict[str, tuple[float, ...]]:
    """The table with voting's tie broken the way the paper ranked it (C4.5+cf ahead)."""
    auc = dict(DEMSAR_AUC)
    auc["voting"] = (0.972, 0.981, 0.97501, 0.975)
    return auc


def test_hand_formulas_reproduce_demsars_published_numbers():
    ranks = _hand_avg_ranks()
    assert [round(r, 3) for r in ranks] == [3.143, 2.000, 2.893, 1.964]
    chi2 = _chi2_f(ranks, N_DEMSAR, K_DEMSAR)
    assert round(chi2, 2) == 9.28
    assert round(_f_f(chi2, N_DEMSAR, K_DEMSAR), 2) == 3.69
    assert round(_cd(Q_005_K4, N_DEMSAR, K_DEMSAR), 2) == 1.25
    assert round(_cd(Q_010_K4, N_DEMSAR, K_DEMSAR), 2) == 1.12
    # Demšar: "the critical value of F(3, 39) for α = 0.05 is 2.85, so we reject".
    assert round(float(ss.f.ppf(0.95, 3, 39)), 2) == 2.85


@pytest.mark.parametrize(
    ("k", "alpha", "expected"),
    [
        (2, 0.05, 1.960),
        (3, 0.05, 2.343),
        (4, 0.05, Q_005_K4),
        (5, 0.05, 2.728),
        (6, 0.05, 2.850),
        (7, 0.05, 2.949),
        (8, 0.05, 3.031),
        (9, 0.05, 3.102),
        (10, 0.05, 3.164),
        (2, 0.10, 1.645),
        (4, 0.10, Q_010_K4),
        (10, 0.10, 2.920),
    ],
)
def test_q_alpha_matches_demsars_table(k, alpha, expected):
    assert nemenyi_q_alpha(k, alpha) == pytest.approx(expected, abs=1e-3)


def test_critical_difference_formula():
    assert critical_difference(4, 14, 0.05) == pytest.approx(
        nemenyi_q_alpha(4, 0.05) * math.sqrt(20 / 84), rel=1e-12
    )
    assert critical_difference(4, 14, 0.05) == pytest.approx(1.25, abs=5e-3)


def test_friedman_nemenyi_reproduces_demsar_example():
    res = friedman_nemenyi(_demsar_frame(_demsar_as_ranked()))
    hand = _hand_avg_ranks()
    assert res.n_levels == [0, 1, 2, 3]
    assert res.num_problems == N_DEMSAR and res.k == K_DEMSAR
    assert res.dropped_levels == [] and res.dropped_problems == []
    assert [res.avg_ranks[n] for n in range(4)] == pytest.approx(hand, abs=1e-12)

    chi2 = _chi2_f(hand, N_DEMSAR, K_DEMSAR)
    assert res.chi2_uncorrected == pytest.approx(chi2, rel=1e-12)
    assert res.chi2_uncorrected == pytest.approx(9.28, abs=5e-3)
    f_f = _f_f(chi2, N_DEMSAR, K_DEMSAR)
    assert res.iman_davenport_f == pytest.approx(f_f, rel=1e-12)
    assert res.iman_davenport_f == pytest.approx(3.69, abs=5e-3)
    assert res.iman_davenport_p == pytest.approx(ss.f.sf(f_f, 3, 39), rel=1e-9)
    assert res.iman_davenport_p < 0.05  # Demšar rejects the null hypothesis

    # scipy corrects χ² for ties: groups of sizes t give C = 1 − Σ(t³ − t) / (N k (k² − 1)).
    # Ties here: mushroom (4 tied), iris, lung cancer, primary tumor (2 tied each).
    c = 1 - (60 + 6 + 6 + 6) / (N_DEMSAR * K_DEMSAR * (K_DEMSAR**2 - 1))
    assert res.chi2 == pytest.approx(chi2 / c, rel=1e-9)
    assert res.chi2 > res.chi2_uncorrected
    assert res.p_value == pytest.approx(ss.chi2.sf(chi2 / c, 3), rel=1e-9)

    assert res.q_alpha == pytest.approx(Q_005_K4, abs=1e-3)
    assert res.cd == pytest.approx(_cd(Q_005_K4, N_DEMSAR, K_DEMSAR), abs=2e-3)
    # At 0.05 even best vs worst (3.143 − 1.964 = 1.18) is below CD = 1.25: one group.
    assert res.cliques == [[3, 1, 2, 0]]
    assert (res.nemenyi_p.to_numpy() >= 0.05).all()


def test_nemenyi_at_alpha_010_separates_c45_as_in_demsar():
    res = friedman_nemenyi(_demsar_frame(_demsar_as_ranked()), alpha=0.10)
    assert res.cd == pytest.approx(_cd(Q_010_K4, N_DEMSAR, K_DEMSAR), abs=2e-3)
    # C4.5 (n=0) is worse than C4.5+m (1) and C4.5+m+cf (3); C4.5+cf (2) sits in both groups.
    assert res.cliques == [[3, 1, 2], [2, 0]]
    p = res.nemenyi_p
    significant = {(a, b) for a in range(4) for b in range(a + 1, 4) if p.loc[a, b] < 0.10}
    assert significant == {(0, 1), (0, 3)}
    # Nemenyi p < alpha exactly when the rank difference exceeds CD.
    for a in range(4):
        for b in range(a + 1, 4):
            diff = abs(res.avg_ranks[a] - res.avg_ranks[b])
            assert (p.loc[a, b] < 0.10) == (diff > res.cd)


def test_printed_table_with_its_voting_tie_gives_different_ranks():
    # Ranking the rounded AUCs as printed ties voting's C4.5+cf and C4.5+m+cf at 2.5:
    # average ranks 44/14, 28/14, 41/14, 27/14, and χ²_F is no longer 9.28.
    res = friedman_nemenyi(_demsar_frame(DEMSAR_AUC))
    hand = [44 / 14, 28 / 14, 41 / 14, 27 / 14]
    assert [res.avg_ranks[n] for n in range(4)] == pytest.approx(hand, abs=1e-12)
    assert res.chi2_uncorrected == pytest.approx(_chi2_f(hand, 14, 4), rel=1e-12)
    assert round(res.chi2_uncorrected, 2) == 9.86


# --------------------------------------------------------------------------- Friedman edge cases


def _grid(problems, levels, folds=2, seeds=1, value=lambda p, n, f, s: 0.5) -> pd.DataFrame:
    rows = [
        {
            "dataset": d,
            "source": src,
            "n": n,
            "fold": f,
            "seed": s,
            "class_name": "mean",
            "dice": value((d, src), n, f, s),
        }
        for d, src in problems
        for n in levels
        for f in range(folds)
        for s in range(seeds)
    ]
    return pd.DataFrame(rows)


def test_friedman_drops_levels_or_problems_missing_somewhere():
    problems = [("A", "joint"), ("A", "mask-conditional"), ("B", "joint")]
    rng = np.random.default_rng(1)
    df = _grid(problems, [0, 1, 2, 4], value=lambda *a: float(rng.uniform(0.6, 0.9)))
    df = df[~((df.dataset == "B") & (df.n == 2))]
    by_level = friedman_nemenyi(df)
    assert by_level.n_levels == [0, 1, 4]
    assert by_level.dropped_levels == [2]
    assert by_level.num_problems == 3
    by_problem = friedman_nemenyi(df, complete="problems")
    assert by_problem.n_levels == [0, 1, 2, 4]
    assert by_problem.dropped_problems == [("B", "joint")]
    assert by_problem.problems == [("A", "joint"), ("A", "mask-conditional")]
    # Problem scores are means over folds × seeds.
    a = df[(df.dataset == "A") & (df.source == "joint") & (df.n == 1)]["dice"].mean()
    assert by_level.scores.loc[("A", "joint"), 1] == pytest.approx(a)


def test_friedman_ranks_highest_dice_first_and_all_ties_are_harmless():
    problems = [("A", "joint"), ("B", "joint"), ("C", "joint")]
    df = _grid(problems, [0, 1, 2], value=lambda p, n, f, s: 0.5 + 0.1 * n)
    res = friedman_nemenyi(df)
    assert res.avg_ranks == {0: 3.0, 1: 2.0, 2: 1.0}
    assert math.isinf(res.iman_davenport_f) and res.iman_davenport_p == 0.0
    tied = friedman_nemenyi(_grid(problems, [0, 1, 2]))
    assert tied.chi2 == 0.0 and tied.p_value == 1.0 and tied.chi2_uncorrected == 0.0
    assert tied.iman_davenport_f == 0.0 and tied.iman_davenport_p == pytest.approx(1.0)
    assert tied.cliques == [[0, 1, 2]]


def test_friedman_needs_three_levels_and_two_problems():
    with pytest.raises(StatsError, match="at least|>= 3"):
        friedman_nemenyi(_grid([("A", "joint"), ("B", "joint")], [0, 1]))
    with pytest.raises(StatsError, match=">= 2 problems"):
        friedman_nemenyi(_grid([("A", "joint")], [0, 1, 2]))


def test_nemenyi_cliques_are_maximal_groups_below_cd():
    ranks = {"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2, "e": 5.0}
    assert nemenyi_cliques(ranks, 1.0) == [["a", "b"], ["c", "d"]]
    assert nemenyi_cliques(ranks, 2.5) == [["a", "b", "c", "d"], ["c", "d", "e"]]
    assert nemenyi_cliques(ranks, 0.1) == []
    assert nemenyi_cliques({"a": 1.0, "b": 2.0}, 1.0) == []  # span must be < CD


# --------------------------------------------------------------------------- summaries


def test_summarise_mean_and_standard_error_by_hand():
    rows = [
        ("A", "joint", 0, 0, 0, 0.8),
        ("A", "joint", 0, 1, 0, 0.9),
        ("A", "joint", 0, 2, 0, 0.7),
        ("A", "joint", 4, 0, 0, 0.6),  # single value: s.e. undefined
        ("A", "joint", 8, 0, 0, 0.5),
        ("A", "joint", 8, 1, 0, math.nan),
    ]
    df = pd.DataFrame(rows, columns=["dataset", "source", "n", "fold", "seed", "dice"])
    df["class_name"] = "mean"
    df = pd.concat([df, df.assign(class_name="tumour", dice=0.1)], ignore_index=True)
    out = summarise(df).set_index("n")
    assert list(out.columns[:3]) == ["dataset", "source", "mean"]
    assert out.loc[0, "mean"] == pytest.approx(0.8)
    # std (ddof=1) of 0.8, 0.9, 0.7 is 0.1; s.e. = 0.1 / sqrt(3)
    assert out.loc[0, "std"] == pytest.approx(0.1)
    assert out.loc[0, "se"] == pytest.approx(0.1 / math.sqrt(3))
    assert out.loc[0, "count"] == 3
    assert out.loc[4, "mean"] == pytest.approx(0.6)
    assert out.loc[4, "count"] == 1 and math.isnan(out.loc[4, "se"])
    assert out.loc[8, "count"] == 1 and out.loc[8, "mean"] == pytest.approx(0.5)
    per_class = summarise(df, class_name=None)
    assert set(per_class["class_name"]) == {"mean", "tumour"}
    assert len(per_class) == 6


def test_duplicate_cells_are_an_error():
    df = _grid([("A", "joint")], [0, 1, 2])
    with pytest.raises(StatsError, match="share a cell key"):
        summarise(pd.concat([df, df.iloc[:1]], ignore_index=True))
    # ... also when a shared baseline is being expanded alongside.
    shared = _grid([("A", "none")], [0], folds=3)
    with pytest.raises(StatsError, match="share a cell key"):
        summarise(pd.concat([df, df.iloc[-1:], shared], ignore_index=True))


# --------------------------------------------------------------------------- expand_baseline


def test_expand_baseline_copies_shared_rows_to_each_source():
    shared = _grid([("A", "none")], [0], folds=3)
    joint = _grid([("A", "joint")], [4], folds=3)
    maskc = _grid([("A", "mask-conditional")], [4], folds=3)
    own = _grid([("B", "joint")], [0, 4], folds=3, value=lambda p, n, f, s: 0.1 * f)
    df = pd.concat([shared, joint, maskc, own], ignore_index=True)
    out = expand_baseline(df)
    assert "none" not in set(out["source"])
    base = out[out["n"] == 0]
    assert len(base) == 3 * 3  # three folds for each of A/joint, A/mask-conditional, B/joint
    for source in ("joint", "mask-conditional"):
        rows = base[(base.dataset == "A") & (base.source == source)]
        assert sorted(rows["fold"]) == [0, 1, 2]
    pd.testing.assert_frame_equal(expand_baseline(out), out)  # idempotent
    # A source's own n = 0 row wins over the shared copy.
    own_a = shared.assign(source="joint", dice=0.99).iloc[:1]
    out2 = expand_baseline(pd.concat([df, own_a], ignore_index=True))
    a_joint = out2[(out2.dataset == "A") & (out2.source == "joint") & (out2.n == 0)]
    assert len(a_joint) == 3
    assert a_joint.set_index("fold").loc[0, "dice"] == pytest.approx(0.99)
    # Summaries then see n = 0 in every problem.
    s = summarise(df)
    assert set(s.loc[s.n == 0, "source"]) == {"joint", "mask-conditional"}


def test_expand_baseline_rejects_sourceless_augmented_rows():
    with pytest.raises(StatsError, match="n != 0"):
        expand_baseline(_grid([("A", "none")], [0, 4]))


# --------------------------------------------------------------------------- Wilcoxon vs n = 0


def _paired_problem(dataset, source, diff_by_n, pairs=10, seed=0):
    """Baseline Dice varies strongly over (fold, seed); each n adds diff_by_n[n](i)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.4, 0.95, size=pairs)
    rows = []
    for i in range(pairs):
        fold, s = i % 5, i // 5
        rows.append((dataset, source, 0, fold, s, base[i]))
        for n, diff in diff_by_n.items():
            rows.append((dataset, source, n, fold, s, base[i] + diff(i)))
    return rows


def _frame(rows):
    df = pd.DataFrame(rows, columns=["dataset", "source", "n", "fold", "seed", "dice"])
    return df.assign(class_name="mean")


def test_wilcoxon_gain_harm_and_noise():
    noise = [0.02, -0.03, 0.01, -0.01, 0.025, -0.02, 0.015, -0.005, -0.012, 0.018]
    rows = _paired_problem("A", "joint", {4: lambda i: 0.05, 8: lambda i: noise[i]})
    rows += _paired_problem("B", "joint", {4: lambda i: -0.05}, seed=1)
    df = _frame(rows).sample(frac=1.0, random_state=3)  # pairing must not rely on row order
    out = wilcoxon_vs_baseline(df).set_index(["dataset", "n"])
    gain, harm, flat = out.loc[("A", 4)], out.loc[("B", 4)], out.loc[("A", 8)]
    assert gain["n_pairs"] == 10
    assert gain["mean_diff"] == pytest.approx(0.05) and gain["median_diff"] == pytest.approx(0.05)
    assert gain["p_value"] == pytest.approx(2 / 2**10)  # exact: all 10 signs positive
    assert gain["p_holm"] == pytest.approx(2 * 2 / 2**10)  # Holm over 2 levels in problem A
    assert gain["significant"] and gain["direction"] == "gain"
    assert harm["significant"] and harm["direction"] == "harm"
    assert harm["p_holm"] == pytest.approx(harm["p_value"])  # only one level in problem B
    assert flat["p_value"] > 0.5 and not flat["significant"] and flat["direction"] == "none"
    assert flat["p_value"] == pytest.approx(ss.wilcoxon(noise).pvalue)


def test_wilcoxon_degenerate_cases_never_crash():
    rows = _paired_problem("A", "joint", {2: lambda i: 0.0, 4: lambda i: 0.05})
    rows += [("A", "joint", 6, 0, 0, 0.7)]  # one pair only
    rows += [("A", "joint", 8, 4, 9, 0.7), ("A", "joint", 8, 3, 9, 0.7)]  # no partner
    out = wilcoxon_vs_baseline(_frame(rows)).set_index("n")
    assert out.loc[2, "p_value"] == 1.0 and "zero" in out.loc[2, "note"]
    assert out.loc[2, "direction"] == "none"
    assert math.isnan(out.loc[6, "p_value"]) and out.loc[6, "n_pairs"] == 1
    assert math.isnan(out.loc[6, "p_holm"]) and not out.loc[6, "significant"]
    assert out.loc[8, "n_pairs"] == 0 and "unpaired" in out.loc[8, "note"]
    # Holm counts the two real tests (n = 2 with p = 1, n = 4), not the NaNs.
    assert out.loc[4, "p_holm"] == pytest.approx(2 * 2 / 2**10)
    few = wilcoxon_vs_baseline(_frame(_paired_problem("A", "j", {4: lambda i: 0.05}, pairs=5)))
    assert "cannot fall below" in few.loc[0, "note"] and not few.loc[0, "significant"]


def test_wilcoxon_uses_shared_baseline_and_keeps_column_contract():
    rows = _paired_problem("A", "joint", {4: lambda i: 0.05 + 0.001 * i})  # untied: fast exact p
    df = _frame(rows)
    shared = df[df.n == 0].assign(source="none")
    other = df[df.n == 4].assign(source="mask-conditional", dice=lambda d: d.dice - 0.1)
    out = wilcoxon_vs_baseline(pd.concat([shared, df[df.n == 4], other], ignore_index=True))
    assert list(out.columns) == [
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
    assert dict(zip(out.source, out.direction, strict=True)) == {
        "joint": "gain",
        "mask-conditional": "harm",
    }
    empty = wilcoxon_vs_baseline(df[df.n == 0])
    assert empty.empty and list(empty.columns) == list(out.columns)


def test_holm_by_hand_and_monotone():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.04·1, 0.06) = 0.06
    assert holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # NaNs are not counted: m = 2
    assert holm_adjust([0.01, math.nan, 0.04]) == pytest.approx([0.02, math.nan, 0.04], nan_ok=True)
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 0.2, size=25)
    adj = holm_adjust(raw)
    assert (adj >= raw).all() and (adj <= 1).all()
    order = np.argsort(raw)
    assert (np.diff(adj[order]) >= 0).all()
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    assert adj == pytest.approx(multitest.multipletests(raw, method="holm")[1])


def test_wilcoxon_holm_is_within_a_problem():
    # Level n flips the sign of its n − 1 smallest differences: W = 0, 1, 3, 6 of 10 pairs.
    diffs = {
        n: (lambda i, n=n: 0.01 * (1 + 0.1 * i) * (-1 if i < n - 1 else 1)) for n in (1, 2, 3, 4)
    }
    one = _paired_problem("A", "joint", diffs)
    other = _paired_problem("B", "joint", {4: lambda i: 0.05 + 0.001 * i}, seed=2)
    out = wilcoxon_vs_baseline(_frame(one + other))
    a = out[out.dataset == "A"].set_index("n")
    assert list(a["statistic"]) == [0.0, 1.0, 3.0, 6.0]
    p = a["p_value"].to_numpy()
    assert p[0] < p[1] < p[2] < p[3]
    # Holm by hand over the four levels of problem A only (problem B is its own family).
    expected = np.maximum.accumulate([4 * p[0], 3 * p[1], 2 * p[2], 1 * p[3]])
    assert a["p_holm"].to_numpy() == pytest.approx(expected)
    assert (out["p_holm"] >= out["p_value"]).all()
    for _, family in out.groupby("dataset"):
        assert family.sort_values("p_value")["p_holm"].is_monotonic_increasing
    b = out[out.dataset == "B"].iloc[0]
    assert b["p_holm"] == pytest.approx(b["p_value"])


# --------------------------------------------------------------------------- CD diagram


def test_cd_diagram_writes_png_and_svg(tmp_path):
    res = friedman_nemenyi(_demsar_frame(_demsar_as_ranked()), alpha=0.10)
    ranks = {f"n={n}": r for n, r in res.avg_ranks.items()}
    written = plot_cd_diagram(ranks, res.cd, tmp_path / "cd.png", title="Demšar", svg=True)
    assert written == [tmp_path / "cd.png", tmp_path / "cd.svg"]
    assert (tmp_path / "cd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cd.svg").stat().st_size > 0
    big = {f"n={n}": 1 + 25 * (n / 25) ** 0.7 for n in range(26)}
    plot_cd_diagram(big, 8.0, tmp_path / "cd26.png", title=None)
    assert (tmp_path / "cd26.png").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cd.png", "cd.svg", "cd26.png"]
