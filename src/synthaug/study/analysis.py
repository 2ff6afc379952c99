"""All the study's statistics in one place: what ``synthaug stats`` prints and the report shows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from synthaug.study.stats import (
    FriedmanResult,
    StatsError,
    expand_baseline,
    friedman_nemenyi,
    summarise,
    wilcoxon_vs_baseline,
)


@dataclass
class StudyStatistics:
    summary: pd.DataFrame  # dataset, source, n, mean, se, std, count (mean foreground Dice)
    friedman: FriedmanResult | None
    friedman_note: str | None
    wilcoxon: pd.DataFrame  # per problem and n > 0, vs n = 0, Holm-corrected

    def as_dict(self) -> dict:
        return {
            "summary": self.summary.to_dict(orient="records"),
            "friedman": self.friedman.as_dict() if self.friedman else None,
            "friedman_note": self.friedman_note,
            "wilcoxon": self.wilcoxon.to_dict(orient="records"),
        }


def analyse(df: pd.DataFrame, alpha: float = 0.05) -> StudyStatistics:
    """Mean ± s.e., Friedman + Nemenyi over n levels, Wilcoxon–Holm of each n against n = 0."""
    expanded = expand_baseline(df)
    summary = summarise(expanded, class_name="mean")
    friedman, note = None, None
    try:
        friedman = friedman_nemenyi(expanded, class_name="mean", alpha=alpha)
    except StatsError as exc:
        note = str(exc)
    wilcoxon = wilcoxon_vs_baseline(expanded, class_name="mean", alpha=alpha)
    return StudyStatistics(summary, friedman, note, wilcoxon)


def format_statistics(stats: StudyStatistics) -> str:
    """A plain-text rendering for the terminal."""
    lines = ["Mean foreground Dice on real test patients (mean ± s.e. over folds × seeds):"]
    for (dataset, source), group in stats.summary.groupby(["dataset", "source"], sort=True):
        cells = ", ".join(
            f"n={int(r.n)}: {r.mean:.3f}" + (f"±{r.se:.3f}" if not math.isnan(r.se) else "")
            for r in group.sort_values("n").itertuples()
        )
        lines.append(f"  {dataset} / {source}: {cells}")
    lines.append("")
    if stats.friedman is None:
        lines.append(f"Friedman/Nemenyi: not computed ({stats.friedman_note})")
    else:
        f = stats.friedman
        ranks = ", ".join(
            f"n={n}: {r:.2f}" for n, r in sorted(f.avg_ranks.items(), key=lambda kv: kv[1])
        )
        lines.append(
            f"Friedman over {f.k} n levels × {f.num_problems} problems: chi2 = {f.chi2:.3f}, "
            f"p = {f.p_value:.4g} ({'significant' if f.significant else 'not significant'} at {f.alpha})"
        )
        lines.append(f"Nemenyi average ranks (1 = best): {ranks}; critical difference = {f.cd:.3f}")
        lines.extend(f"  note: {n}" for n in f.notes)
    lines.append("")
    sig = stats.wilcoxon[stats.wilcoxon["significant"]]
    if sig.empty:
        lines.append("Wilcoxon vs n = 0 (Holm): no significant gain or harm.")
    else:
        lines.append("Wilcoxon vs n = 0 (Holm), significant:")
        for r in sig.itertuples():
            lines.append(
                f"  {r.dataset} / {r.source} n={int(r.n)}: {r.direction} {r.mean_diff:+.3f} (p_holm = {r.p_holm:.3g})"
            )
    return "\n".join(lines)
