"""Statistical building blocks, checked against Demšar (2006), hand computations and tiny
tables."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from synthaug.report.cd_diagram import plot_cd_diagram
from synthaug.stats.core import (
    StatsError,
    critical_difference,
    expand_baseline,
    fold_units,
    friedman_exact_p,
    friedman_floor,
    friedman_test,
    hodges_lehmann,
    holm_adjust,
    nadeau_bengio,
    nemenyi_cliques,
    nemenyi_q_alpha,
    signed_rank,
    summarise,
    wilcoxon_floor,
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


def _demsar_scores(auc: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    """Data sets as blocks, classifier j as treatment j."""
    return pd.DataFrame.from_dict(auc, orient="index", columns=[0, 1, 2, 3])


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


def test_friedman_reproduces_demsars_iman_davenport_decision():
    res = friedman_test(_demsar_scores(_demsar_as_ranked()))
    hand = _hand_avg_ranks()
    assert res.treatments == [0, 1, 2, 3]
    assert res.num_blocks == N_DEMSAR and res.k == K_DEMSAR
    assert [res.avg_ranks[n] for n in range(4)] == pytest.approx(hand, abs=1e-12)

    chi2 = _chi2_f(hand, N_DEMSAR, K_DEMSAR)
    f_f = _f_f(chi2, N_DEMSAR, K_DEMSAR)
    assert res.iman_davenport_f == pytest.approx(f_f, rel=1e-12)
    assert res.iman_davenport_f == pytest.approx(3.69, abs=5e-3)
    assert res.iman_davenport_p == pytest.approx(ss.f.sf(f_f, 3, 39), rel=1e-9)
    # 14 blocks of 4: too many rankings to enumerate, so F decides — and, as in Demšar
    # ("F(3, 39) = 2.85 < 3.69, we reject"), it rejects.
    assert res.exact_p is None and res.p_value == res.iman_davenport_p
    assert res.p_value < 0.05 and res.significant

    # scipy corrects χ² for ties: groups of sizes t give C = 1 − Σ(t³ − t) / (N k (k² − 1)).
    # Ties here: mushroom (4 tied), iris, lung cancer, primary tumor (2 tied each).
    c = 1 - (60 + 6 + 6 + 6) / (N_DEMSAR * K_DEMSAR * (K_DEMSAR**2 - 1))
    assert res.chi2 == pytest.approx(chi2 / c, rel=1e-9)
    assert res.chi2_p == pytest.approx(ss.chi2.sf(chi2 / c, 3), rel=1e-9)

    assert res.q_alpha == pytest.approx(Q_005_K4, abs=1e-3)
    assert res.cd == pytest.approx(_cd(Q_005_K4, N_DEMSAR, K_DEMSAR), abs=2e-3)
    # At 0.05 even best vs worst (3.143 − 1.964 = 1.18) is below CD = 1.25: one group.
    assert res.cliques == [[3, 1, 2, 0]]
    assert (res.nemenyi_p.to_numpy() >= 0.05).all()


def test_nemenyi_at_alpha_010_separates_c45_as_in_demsar():
    res = friedman_test(_demsar_scores(_demsar_as_ranked()), alpha=0.10)
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
    res = friedman_test(_demsar_scores(DEMSAR_AUC))
    hand = [44 / 14, 28 / 14, 41 / 14, 27 / 14]
    assert [res.avg_ranks[n] for n in range(4)] == pytest.approx(hand, abs=1e-12)
    assert round(_chi2_f(hand, 14, 4), 2) == 9.86
    assert res.iman_davenport_f == pytest.approx(_f_f(_chi2_f(hand, 14, 4), 14, 4), rel=1e-12)


# --------------------------------------------------------------------------- Friedman: exact, floor


def test_exact_friedman_by_hand_and_the_floor():
    # k = 3, N = 2: 36 equally likely pairs of rankings; both blocks agreeing on any one of
    # the 6 orders is the most extreme outcome: p = 6/36.
    assert friedman_exact_p(np.array([1.0, 2.0, 3.0]), 2) == pytest.approx(1 / 6)
    assert friedman_floor(3, 2) == pytest.approx(1 / 6)
    assert friedman_exact_p(np.array([2.0, 2.0, 2.0]), 2) == pytest.approx(1.0)
    # k = 3, N = 3: agreement 6/216; ranks (1, 2.33, 2.67) i.e. sums (3, 7, 8) by enumeration.
    assert friedman_exact_p(np.array([1.0, 2.0, 3.0]), 3) == pytest.approx(6 / 216)
    sums = [3, 7, 8]
    perms = list(itertools.permutations([1, 2, 3]))
    stat = sum(v * v for v in sums)
    count = sum(
        1
        for a in perms
        for b in perms
        for c in perms
        if sum((a[j] + b[j] + c[j]) ** 2 for j in range(3)) >= stat
    )
    assert friedman_exact_p(np.array(sums) / 3, 3) == pytest.approx(count / 216)


def test_a_test_that_cannot_reject_does_not_whatever_f_says():
    # Two blocks ranking three levels alike: F is infinite (p = 0), yet no data can give an
    # exact p below 1/6. The test does not reject and draws no ranking.
    scores = pd.DataFrame([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]], columns=[0, 2, 6])
    res = friedman_test(scores)
    assert math.isinf(res.iman_davenport_f) and res.iman_davenport_p == 0.0
    assert res.p_value == pytest.approx(1 / 6) and not res.significant
    assert res.cd is None and res.nemenyi_p is None and res.cliques == []
    assert "cannot reject" in " ".join(res.notes)


def test_post_hoc_only_after_the_omnibus_rejects():
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.uniform(size=(8, 4)), columns=[0, 1, 2, 3])
    res = friedman_test(noise)
    assert not res.significant and res.cd is None and res.nemenyi_p is None
    clear = pd.DataFrame([[0.9, 0.8, 0.7, 0.6]] * 8, columns=[0, 1, 2, 3]) + rng.normal(
        0, 1e-3, (8, 4)
    )
    res = friedman_test(clear)
    assert res.significant and res.cd is not None and res.cliques


def test_friedman_needs_three_treatments_and_two_blocks():
    with pytest.raises(StatsError, match=">= 3 treatments"):
        friedman_test(pd.DataFrame([[0.1, 0.2], [0.3, 0.4]]))
    with pytest.raises(StatsError, match=">= 2 blocks"):
        friedman_test(pd.DataFrame([[0.1, 0.2, 0.3]]))


def test_nemenyi_cliques_are_maximal_groups_below_cd():
    ranks = {"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2, "e": 5.0}
    assert nemenyi_cliques(ranks, 1.0) == [["a", "b"], ["c", "d"]]
    assert nemenyi_cliques(ranks, 2.5) == [["a", "b", "c", "d"], ["c", "d", "e"]]
    assert nemenyi_cliques(ranks, 0.1) == []
    assert nemenyi_cliques({"a": 1.0, "b": 2.0}, 1.0) == []  # span must be < CD


# --------------------------------------------------------------------------- units


def _grid(problems, levels, folds=2, seeds=1, value=lambda p, n, f, s: 0.5) -> pd.DataFrame:
    rows = [
        {
            "dataset": d, "source": src, "n": n, "fold": f, "seed": s, "class_name": "mean",
            "dice": value((d, src), n, f, s),
        }
        for d, src in problems
        for n in levels
        for f in range(folds)
        for s in range(seeds)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_seeds_are_averaged_within_a_fold():
    df = _grid([("A", "joint")], [0, 4], folds=5, seeds=4, value=lambda p, n, f, s: f + s / 10)
    units = fold_units(df)
    assert len(units) == 2 * 5 and set(units["seeds"]) == {4}
    assert units.set_index(["n", "fold"]).loc[(4, 2), "value"] == pytest.approx(2 + 0.15)
    summary = summarise(units).set_index("n")
    assert summary.loc[4, "count"] == 5  # folds, not folds × seeds
    assert summary.loc[4, "se"] == pytest.approx(np.std(np.arange(5) + 0.15, ddof=1) / 5**0.5)


def test_duplicate_cells_are_an_error():
    df = _grid([("A", "joint")], [0, 1, 2])
    with pytest.raises(StatsError, match="share a cell key"):
        fold_units(pd.concat([df, df.iloc[:1]], ignore_index=True))
    shared = _grid([("A", "none")], [0], folds=3)
    with pytest.raises(StatsError, match="share a cell key"):
        fold_units(pd.concat([df, df.iloc[-1:], shared], ignore_index=True))


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
    s = summarise(fold_units(df))
    assert set(s.loc[s.n == 0, "source"]) == {"joint", "mask-conditional"}


def test_expand_baseline_keeps_a_baseline_with_nothing_to_attach_to_and_names_missing_columns():
    alone = _grid([("C", "none")], [0], folds=2)
    out = expand_baseline(pd.concat([alone, _grid([("A", "joint")], [0, 4])], ignore_index=True))
    assert len(out[(out.dataset == "C") & (out.source == "none")]) == len(alone)
    with pytest.raises(StatsError, match=r"lacks column\(s\) \['n'\]"):
        expand_baseline(alone.drop(columns=["n"]))


def test_signed_rank_leaves_out_missing_differences():
    diffs = [0.1, 0.2, -0.05, 0.3, 0.15]
    with_nan = signed_rank([*diffs, math.nan])
    assert with_nan == signed_rank(diffs) and with_nan.n_pairs == 5


def test_expand_baseline_rejects_sourceless_augmented_rows():
    with pytest.raises(StatsError, match="n != 0"):
        expand_baseline(_grid([("A", "none")], [0, 4]))


# --------------------------------------------------------------------------- paired tests


def test_signed_rank_takes_its_direction_from_the_ranks_not_the_mean():
    # 14 small gains and one large loss: the mean is negative, the ranks say gain.
    diffs = [0.01 + 0.001 * i for i in range(14)] + [-0.5]
    assert np.mean(diffs) < 0
    test = signed_rank(diffs)
    assert test.w_minus == 15 and test.w_plus == sum(range(1, 15))  # the loss has rank 15
    assert test.direction == "gain"
    assert test.p_value == pytest.approx(ss.wilcoxon(diffs).pvalue)
    assert test.p_value < 0.01
    assert signed_rank([-0.2, -0.1, -0.3]).direction == "harm"
    assert signed_rank([0.0, 0.0]).p_value == 1.0 and signed_rank([0.0, 0.0]).direction == "none"
    assert math.isnan(signed_rank([0.1]).p_value)


def test_wilcoxon_floor():
    assert wilcoxon_floor(5) == pytest.approx(0.0625)  # 5 folds can never reach 0.05
    assert wilcoxon_floor(10) == pytest.approx(2 / 1024)
    assert wilcoxon_floor(0) == 1.0
    assert signed_rank([0.1, 0.2, 0.3, 0.4, 0.5]).p_value == pytest.approx(0.0625)


def test_hodges_lehmann_by_hand():
    d = [0.1, 0.2, -0.05, 0.3, 0.15]
    walsh = sorted((d[i] + d[j]) / 2 for i in range(5) for j in range(i, 5))
    estimate, lo, hi, level = hodges_lehmann(d)
    assert estimate == pytest.approx(np.median(walsh))
    # n = 5: P(W+ <= 0) = 1/32 > 0.025, so the widest interval is all there is: 93.75 %.
    assert (lo, hi) == (pytest.approx(walsh[0]), pytest.approx(walsh[-1]))
    assert level == pytest.approx(1 - 2 / 32)
    # n = 10: P(W+ <= 8) = 0.0244 <= 0.025 < P(W+ <= 9): leave 9 averages out on each side.
    d10 = [0.03, -0.01, 0.05, 0.02, 0.04, 0.06, -0.02, 0.01, 0.07, 0.035]
    w10 = sorted((d10[i] + d10[j]) / 2 for i in range(10) for j in range(i, 10))
    _, lo, hi, level = hodges_lehmann(d10)
    assert (lo, hi) == (pytest.approx(w10[8]), pytest.approx(w10[-9]))
    assert level == pytest.approx(1 - 2 * 25 / 1024)


def test_nadeau_bengio_by_hand():
    d = np.array([0.02, 0.035, 0.01, 0.028, 0.015])
    rho = 20 / 80  # 20 test patients, 80 training patients per fold
    se = math.sqrt((1 / 5 + rho) * d.var(ddof=1))
    t = d.mean() / se
    test = nadeau_bengio(d, rho)
    assert test.se == pytest.approx(se) and test.t == pytest.approx(t) and test.df == 4
    assert test.p_value == pytest.approx(2 * ss.t.sf(t, 4))
    # The correction makes it more cautious than the naive paired t-test.
    assert test.p_value > ss.ttest_1samp(d, 0).pvalue


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


def test_cd_diagram_writes_png_and_svg(tmp_path):
    res = friedman_test(_demsar_scores(_demsar_as_ranked()), alpha=0.10)
    ranks = {f"n={n}": r for n, r in res.avg_ranks.items()}
    written = plot_cd_diagram(ranks, res.cd, tmp_path / "cd.png", title="Demšar", svg=True)
    assert written == [tmp_path / "cd.png", tmp_path / "cd.svg"]
    assert (tmp_path / "cd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cd.svg").stat().st_size > 0
    big = {f"n={n}": 1 + 25 * (n / 25) ** 0.7 for n in range(26)}
    plot_cd_diagram(big, 8.0, tmp_path / "cd26.png", title=None)
    assert (tmp_path / "cd26.png").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cd.png", "cd.svg", "cd26.png"]
