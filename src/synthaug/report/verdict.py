"""The analysis in words: one honest paragraph per source, and the terminal rendering.

Nothing here computes a statistic; every number comes from ``analysis.StudyStatistics``.
A paragraph never reads as a finding when its design had no power to find anything.
"""

from __future__ import annotations

import math

import pandas as pd

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
        f"within ±{rope:g} Dice): " + "; ".join(parts) + "."
    )


def _classical_line(rows: pd.DataFrame, alpha: float) -> str:
    family = f"Wilcoxon signed-rank over folds, Holm over this source's {len(rows)} comparisons"
    significant = rows[rows["significant"]]
    if significant.empty:
        return f"Classical tests ({family}): no significant gain or harm at α = {alpha:g}."
    found = "; ".join(
        f"{r.direction} at n={r.n} on {r.dataset}: shift {r.effect:+.3f} Dice "
        f"({r.ci_level:.0%} CI {r.ci_low:+.3f} to {r.ci_high:+.3f}), p_holm {_fmt(r.p_holm)}"
        for r in significant.itertuples()
    )
    return f"Classical tests ({family}): {found}."


def _power_line(rows: pd.DataFrame, alpha: float) -> str:
    pairs = int(rows["n_pairs"].min()) if len(rows) else 0
    best = float(rows["min_p_holm"].min()) if len(rows) else math.nan
    mde = float(rows["mde"].median()) if len(rows) else math.nan
    if not best < alpha:
        return (
            f"Power: {pairs} independent fold(s) per comparison — the smallest p this design "
            f"can give is {_fmt(best)} after correction, so it cannot show a significant "
            f"difference whatever the data; read the probabilities, and plan more folds "
            f"(README, statistics)."
        )
    return (
        f"Power: {pairs} folds per comparison; smallest possible p after correction "
        f"{_fmt(best)}; a mean difference below about {_fmt(mde, 2)} Dice would likely go "
        "undetected (corrected t-test, 80% power, observed fold-to-fold spread)."
    )


def source_paragraph(stats: StudyStatistics, source: str) -> str:
    rows = stats.comparisons[stats.comparisons["source"] == source]
    datasets = sorted(rows["dataset"].unique())
    head = f"{source} ({len(datasets)} dataset(s): {', '.join(datasets)})."
    omnibus = [t for t in stats.omnibus if t.label == f"source {source}"]
    lines = [
        head,
        _bayes_line(rows, stats.rope),
        _classical_line(rows, stats.alpha),
    ]
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
    lines.append(_power_line(rows, stats.alpha))
    flagged = rows[rows["flagged"]]
    if len(flagged):
        where = ", ".join(sorted({f"{r.dataset} n={r.n}" for r in flagged.itertuples()}))
        lines.append(
            f"Caution: these cells use generators flagged unusable (collapsed, copying or off "
            f"the data) and the study ran with gan.allow_unusable: {where}."
        )
    return " ".join(lines)


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
    if stats.imbalance:
        paragraphs.append("Unbalanced cells (left out of the Friedman tests): " + "; ".join(
            stats.imbalance))  # fmt: skip
    return paragraphs


def format_statistics(stats: StudyStatistics) -> str:
    """A plain-text rendering for the terminal."""
    lines = ["Mean foreground Dice on real test patients (mean ± s.e. over folds; seeds "
             "averaged within a fold):"]  # fmt: skip
    for (dataset, source), group in stats.summary.groupby(["dataset", "source"], sort=True):
        cells = ", ".join(
            f"n={int(r.n)}: {r.mean:.3f}" + (f"±{r.se:.3f}" if math.isfinite(r.se) else "")
            for r in group.sort_values("n").itertuples()
        )
        lines.append(f"  {dataset} / {source}: {cells}")
    lines += ["", "Each n against real-only (folds as pairs):"]
    for r in stats.comparisons.itertuples():
        lines.append(
            f"  {r.dataset} / {r.source} n={r.n}: {r.n_pairs} folds, shift {_fmt(r.effect)} "
            f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], W+ {r.w_plus:g} W- {r.w_minus:g}, "
            f"p_holm {_fmt(r.p_holm)}, corrected-t p {_fmt(r.nb_p)}, P(gain/equiv/harm) "
            f"{_fmt(r.p_gain, 2)}/{_fmt(r.p_equivalent, 2)}/{_fmt(r.p_harm, 2)} → {r.direction}"
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
    lines += [f"  {note}" for note in stats.omnibus_notes]
    lines += ["", "Verdict:"] + [f"  {p}" for p in verdict(stats)]
    return "\n".join(lines)
