"""The analysis in words: one honest paragraph per source, and the terminal rendering.

Nothing here computes a statistic; every number comes from ``analysis.StudyStatistics``.
A paragraph never reads as a finding when its design had no power to find anything.
"""

from __future__ import annotations

import math

import pandas as pd

from synthaug.report.glance import glance_table
from synthaug.stats.analysis import DESIGN_NOTE, StudyStatistics


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _bayes_line(rows: pd.DataFrame, rope: float) -> str:
    parts = []
    for r in rows.sort_values(["n", "dataset"]).itertuples():
        if math.isfinite(r.p_gain):
            parts.append(
                f"n={r.n} on {r.dataset}: gain {r.p_gain:.2f}, equivalent "
                f"{r.p_equivalent:.2f}, harm {r.p_harm:.2f}"
            )
    if not parts:
        return "No Bayesian comparison: fewer than 2 folds per comparison."
    return (
        f"Probabilities (Bayesian correlated t-test over folds, practical equivalence = "
        f"within ±{rope:g}): " + "; ".join(parts) + "."
    )


def _primary_line(stats: StudyStatistics, rows: pd.DataFrame) -> str:
    family = f"{stats.primary_test}, {len(stats.comparisons)} comparisons in the family"
    significant = rows[rows["significant"]]
    if significant.empty:
        return f"Primary test ({family}): no significant gain or harm at α = {stats.alpha:g}."
    found = "; ".join(
        f"{r.direction} at n={r.n} on {r.dataset}: mean shift {_fmt(r.mean_diff)} "
        f"({1 - stats.alpha:.0%} interval {_fmt(r.ci_low)} to {_fmt(r.ci_high)}), "
        + (f"p_holm {_fmt(r.p_holm)}" if math.isfinite(r.p_holm) else f"P(gain) {r.p_gain:.2f}")
        for r in significant.itertuples()
    )
    return f"Primary test ({family}): {found}."


def _power_line(rows: pd.DataFrame, stats: StudyStatistics) -> str:
    pairs = int(rows["n_pairs"].min()) if len(rows) else 0
    mde = float(rows["mde"].median()) if len(rows) else math.nan
    alpha = float(rows["mde_alpha"].min()) if len(rows) else math.nan
    at = f"primary test at α = {_fmt(alpha)}, 80% power, observed fold-to-fold spread"
    if pairs < 2:
        return (
            f"Power: {pairs} fold per comparison; the corrected t-test needs at least 2, so "
            "this design cannot show a significant difference whatever the data."
        )
    if stats.metric in ("dice", "slice_dice", "nsd") and not mde < 1:
        return (
            f"Power: {pairs} folds per comparison cannot detect any change a Dice score can "
            f"make (it would take a mean difference of {_fmt(mde, 2)}; {at}): more folds or "
            "repeats, or fewer comparisons, are needed for a decision."
        )
    return (
        f"Power: {pairs} folds per comparison; a mean difference below about {_fmt(mde, 2)} "
        f"would likely go undetected ({at})."
    )


def source_paragraph(stats: StudyStatistics, source: str) -> str:
    rows = stats.comparisons[stats.comparisons["source"] == source]
    datasets = sorted(rows["dataset"].unique())
    head = f"{source} ({len(datasets)} dataset(s): {', '.join(datasets)})."
    omnibus = [t for t in stats.omnibus if t.label == f"source {source}"]
    lines = [head, _primary_line(stats, rows), _bayes_line(rows, stats.rope)]
    for test in omnibus:
        if test.significant:
            best = min(test.avg_ranks, key=test.avg_ranks.get)
            lines.append(
                f"Over datasets (Friedman, p {_fmt(test.p_value)}): the "
                f"n levels differ; best average rank at n={best} (see the CD diagram)."
            )
        else:
            lines.append(
                f"Over datasets (Friedman, p {_fmt(test.p_value)}, smallest possible "
                f"{_fmt(test.floor)}): no evidence of any difference between n levels."
            )
    lines.append(_power_line(rows, stats))
    if where := _where(rows, "capped"):
        lines.append(
            f"Not decided: a U-Net of these comparisons stopped at its step cap with validation "
            f"Dice possibly still rising, so no gain or harm is drawn: {where}."
        )
    if where := _where(rows, "flagged"):
        lines.append(
            f"Caution: these cells use generators flagged unusable (collapsed, copying or off "
            f"the data) and the study ran with allow_unusable: {where}."
        )
    return " ".join(lines)


def _where(rows: pd.DataFrame, flag: str) -> str:
    """ "DATASET n=N, …" of the comparisons with ``flag`` set ("" when none)."""
    return ", ".join(sorted({f"{r.dataset} n={r.n}" for r in rows[rows[flag]].itertuples()}))


def verdict(stats: StudyStatistics) -> list[str]:
    """One paragraph per source, then the design (and the pooled test under design paper)."""
    paragraphs = [source_paragraph(stats, s) for s in sorted(stats.comparisons["source"].unique())]
    if stats.design == "paper":
        for test in stats.omnibus:
            state = "reject" if test.significant else "do not reject"
            paragraphs.append(
                f"Pooled Friedman over {test.num_blocks} (dataset, source) blocks: "
                f"p {_fmt(test.p_value)} — we {state} equal n levels. " + DESIGN_NOTE["paper"]
            )
    else:
        paragraphs.append(DESIGN_NOTE["per-source"])
    for u in stats.unlearned:
        paragraphs.append(
            f"Class {u['class_name']} of {u['dataset']}: no U-Net learned it (Dice at most "
            f"{_fmt(u['best_dice'])} in all {u['cells']} cells); the mean over foreground "
            f"classes hides this — analyse it with --class {u['class_name']} or fix its data."
        )
    if stats.imbalance:
        paragraphs.append("Unbalanced cells (left out of the Friedman tests): " + "; ".join(
            stats.imbalance))  # fmt: skip
    return paragraphs


def format_statistics(stats: StudyStatistics) -> str:
    """A plain-text rendering for the terminal: the verdict table first."""
    what = f"{stats.metric} ({stats.class_name})"
    lines = [f"Verdict at a glance ({what}; {stats.primary_test}):", glance_table(stats), ""]
    lines += [f"{what} on real test patients (mean ± s.e. over folds; seeds averaged within a "
              "fold):"]  # fmt: skip
    for (dataset, source), group in stats.summary.groupby(["dataset", "source"], sort=True):
        cells = ", ".join(
            f"n={int(r.n)}: {_fmt(r.mean)}" + (f"±{_fmt(r.se, 2)}" if math.isfinite(r.se) else "")
            for r in group.sort_values("n").itertuples()
        )
        lines.append(f"  {dataset} / {source}: {cells}")
    lines += ["", "Sensitivity (Wilcoxon signed-rank and Hodges-Lehmann; they assume "
              "independent folds):"]  # fmt: skip
    for r in stats.comparisons.itertuples():
        lines.append(
            f"  {r.dataset} / {r.source} n={r.n}: HL shift {_fmt(r.hl_shift)} "
            f"[{_fmt(r.hl_low)}, {_fmt(r.hl_high)}], W+ {r.w_plus:g} W- {r.w_minus:g}, "
            f"p_holm {_fmt(r.wilcoxon_p_holm)}"
        )
    lines += ["", f"Omnibus over n levels, design {stats.design}:"]
    for t in stats.omnibus:
        decision = "significant" if t.significant else "not significant"
        lines.append(
            f"  {t.label}: {t.num_blocks} blocks × {t.k} levels, p {_fmt(t.p_value)} "
            f"({'exact' if t.exact_p is not None else 'Iman–Davenport F'}; χ² p "
            f"{_fmt(t.chi2_p)}, smallest possible {_fmt(t.floor)}) → "
            f"{decision}" + (f"; CD {t.cd:.2f}" if t.cd else "")
        )
    lines += [f"  {note}" for note in [*stats.omnibus_notes, *stats.across_notes]]
    lines += ["", "Verdict:"] + [f"  {p}" for p in verdict(stats)]
    return "\n".join(lines)
