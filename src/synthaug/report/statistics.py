"""The report's statistics sections: the verdict, Dice against n, CD diagrams of the tests
that rejected, the comparison and power tables (from ``analysis.StudyStatistics``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from synthaug.report.cd_diagram import plot_cd_diagram
from synthaug.report.glance import fmt3
from synthaug.report.verdict import verdict
from synthaug.stats.analysis import DESIGN_NOTE, StudyStatistics
from synthaug.viz import save_figure

Section = tuple[str, "pd.DataFrame | str | list[str] | None", "list[tuple[str, str]] | None"]


def _panel(ax, g: pd.DataFrame, rope: float) -> None:
    """Mean Dice ± s.e. over folds against n; the n = 0 mean dashed with its ROPE band;
    red rings: cells built on a generator flagged unusable."""
    ax.errorbar(g["n"], g["mean"], yerr=g["se"].fillna(0.0), marker="o", ms=3, capsize=2, lw=1)
    bad = g[g["flagged"]] if "flagged" in g else g.iloc[:0]
    if len(bad):
        ax.plot(bad["n"], bad["mean"], "o", ms=9, mfc="none", mec="red", mew=1.2)
    base = g[g["n"] == 0]
    if not base.empty:
        b = float(base["mean"].iloc[0])
        ax.axhline(b, color="grey", ls="--", lw=0.8)
        ax.axhspan(b - rope, b + rope, color="tab:green", alpha=0.12, lw=0)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_dice_vs_n(
    summary: pd.DataFrame, rope: float, path: Path, label: str = "mean fg Dice"
) -> None:
    """One panel per (dataset, source); the panels of a dataset share their y-axis, so a
    difference of 0.004 Dice looks as small as it is next to the ± ``rope`` band."""
    datasets = sorted(summary["dataset"].unique())
    sources = sorted(summary["source"].unique())
    fig = Figure(figsize=(3.2 * len(sources), 2.6 * len(datasets)))
    axes = fig.subplots(len(datasets), len(sources), squeeze=False, sharex=True, sharey="row")
    for i, dataset in enumerate(datasets):
        for j, source in enumerate(sources):
            ax = axes[i][j]
            g = summary[(summary["dataset"] == dataset) & (summary["source"] == source)]
            if g.empty:
                ax.set_visible(False)
                continue
            _panel(ax, g.sort_values("n"), rope)
            ax.set_title(f"{dataset} · {source}", fontsize=8)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == len(datasets) - 1:
                ax.set_xlabel("added synthetic patients n", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def result_figures(stats: StudyStatistics, out: Path) -> list[tuple[str, str]]:
    label = (
        "mean fg Dice"
        if stats.metric == "dice" and stats.class_name == "mean"
        else (f"{stats.metric} ({stats.class_name})")
    )
    plot_dice_vs_n(stats.summary, stats.rope, out / "dice_vs_n.png", label)
    figures = [
        (
            "Mean foreground Dice ± s.e. over folds against added synthetic patients. Dashed: "
            f"n = 0; green band: ±{stats.rope:g} Dice around it (practical equivalence). Panels "
            "of one dataset share their y-axis. Red rings: cells built on a generator flagged "
            "unusable.",
            "dice_vs_n.png",
        )
    ]
    for i, test in enumerate(t for t in stats.omnibus if t.significant and t.cd):
        name = f"cd_diagram_{i}.png"
        plot_cd_diagram(
            {f"n={n}": r for n, r in test.avg_ranks.items()},
            test.cd,
            out / name,
            title=f"Nemenyi critical difference, {test.label} (CD = {test.cd:.2f})",
        )
        figures.append(
            (f"Critical-difference diagram over n levels, {test.label} (Demšar 2006)", name)
        )
    return figures


def _comparison_table(stats: StudyStatistics) -> pd.DataFrame:
    c = stats.comparisons
    if c.empty:
        return pd.DataFrame()
    level = 1 - stats.alpha
    return pd.DataFrame(
        {
            "dataset": c["dataset"],
            "source": c["source"],
            "n": c["n"],
            "folds": c["n_pairs"],
            "mean shift": c["mean_diff"],
            f"{level:.0%} interval": [
                f"[{fmt3(lo)}, {fmt3(hi)}]"
                for lo, hi in zip(c["ci_low"], c["ci_high"], strict=True)
            ],
            "p (Holm)": c["p_holm"],
            "P(gain)": c["p_gain"],
            "P(equiv.)": c["p_equivalent"],
            "P(harm)": c["p_harm"],
            "MDE": c["mde"],
            "decision": c["direction"],
            "capped": np.where(c["capped"], "yes", ""),
            "unusable generator": np.where(c["flagged"], "yes", ""),
        }
    )


def _sensitivity_table(stats: StudyStatistics) -> pd.DataFrame:
    c = stats.comparisons
    if c.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "dataset": c["dataset"],
            "source": c["source"],
            "n": c["n"],
            "HL shift": c["hl_shift"],
            "HL interval": [
                f"[{fmt3(lo)}, {fmt3(hi)}] ({lvl:.0%})" if np.isfinite(lvl) else "—"
                for lo, hi, lvl in zip(c["hl_low"], c["hl_high"], c["hl_level"], strict=True)
            ],
            "W+": c["w_plus"],
            "W−": c["w_minus"],
            "Wilcoxon p (Holm)": c["wilcoxon_p_holm"],
            "smallest possible p": c["min_p"],
        }
    )


def _omnibus_table(stats: StudyStatistics) -> pd.DataFrame:
    rows = [
        {
            "test": t.label,
            "blocks": t.num_blocks,
            "levels": t.k,
            "p": t.p_value,
            "p from": "exact" if t.exact_p is not None else "Iman–Davenport F",
            "χ² p": t.chi2_p,
            "smallest possible p": t.floor,
            "rejects": "yes" if t.significant else "no",
        }
        for t in stats.omnibus
    ]
    return pd.DataFrame(rows)


def _power_table(stats: StudyStatistics) -> pd.DataFrame:
    table = pd.DataFrame(stats.power).drop(columns=["mde_note"], errors="ignore")
    return table.rename(
        columns={
            "mde": "MDE (80% power, at the α used)",
            "min_p": "smallest possible p",
            "independent_pairs": "pairs / blocks",
            "alpha_used": "α used",
            "min_p_after_correction": "smallest p after correction",
            "can_reach_alpha": "can reach α",
        }
    )


def _pairs_table(stats: StudyStatistics) -> pd.DataFrame:
    return stats.source_pairs.rename(
        columns={
            "source_a": "source A",
            "source_b": "source B",
            "mean_diff": "mean shift (B − A)",
            "p_value": "p",
            "p_holm": "p (Holm)",
        }
    )


def statistics_sections(stats: StudyStatistics, out: Path) -> list[Section]:
    significant = _comparison_table(stats)
    if not significant.empty:
        significant = significant[stats.comparisons["significant"].to_numpy()]
    return [
        ("Verdict", verdict(stats), None),
        ("Dice against added synthetic patients", None, result_figures(stats, out)),
        (
            f"Significant gains and harms ({stats.primary_test}; "
            f"{len(stats.comparisons)} comparisons in the family)",
            significant,
            None,
        ),
        (
            f"Each n against real-only, per dataset ({stats.primary_test})",
            _comparison_table(stats),
            None,
        ),
        (
            "Sensitivity analysis: Wilcoxon signed-rank and Hodges-Lehmann (assume independent "
            "folds, which cross-validation folds are not; Holm over the same family)",
            _sensitivity_table(stats),
            None,
        ),
        (f"Friedman over n levels (design {stats.design})", _omnibus_table(stats), None),
        (
            "About the design",
            [DESIGN_NOTE[stats.design], *stats.omnibus_notes, *stats.across_notes],
            None,
        ),
        ("Sources against each other at each n (datasets as blocks)", stats.sources, None),
        (
            "Sources against each other per dataset (corrected t over folds, Holm over pairs)",
            _pairs_table(stats),
            None,
        ),
        ("Power of each test family", _power_table(stats), None),
        (
            "Mean ± s.e. per cell (over folds)",
            stats.summary[["dataset", "source", "n", "mean", "se", "count", "seeds", "flagged"]],
            None,
        ),
    ]
