"""The report's real-patients sections (studies with ``real_patients: [r1, r2, …]``): where a
source helps, as a heatmap of the Dice shift per (real patients, n) with its significance,
the learning curves, and what a synthetic patient is worth in real patients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from synthaug.report.statistics import Section
from synthaug.stats.analysis import StudyStatistics, level_of
from synthaug.stats.core import BASELINE_SOURCE
from synthaug.stats.worth import COUNT, LEVEL
from synthaug.viz import save_figure


def _comparisons(stats: StudyStatistics) -> pd.DataFrame:
    """The comparisons with their dataset split into (dataset, level)."""
    comps = stats.comparisons.copy()
    if comps.empty:
        return comps
    split = comps["dataset"].map(level_of)
    comps["base"] = [b for b, _ in split]
    comps["level"] = [lvl for _, lvl in split]
    return comps[comps["level"].notna()]


def _level_order(df: pd.DataFrame, dataset: str) -> list[str]:
    """A dataset's levels from the fewest real patients to the most."""
    rows = df[df["dataset"] == dataset]
    counts = rows.groupby(rows[LEVEL].astype(str))[COUNT].mean()
    return list(counts.sort_values().index)


def plot_heatmaps(comps: pd.DataFrame, df: pd.DataFrame, path: Path) -> None:
    """One panel per (dataset, source): rows real-patients levels, columns n; the colour is
    the mean Dice shift against the level's real-only cells, * marks a significant one
    (Holm), ° a U-Net stopped by its step cap."""
    keys = sorted({(b, s) for b, s in zip(comps["base"], comps["source"], strict=True)})
    fig = Figure(figsize=(3.4 * min(len(keys), 3), 2.6 * int(np.ceil(len(keys) / 3))))
    axes = fig.subplots(int(np.ceil(len(keys) / 3)), min(len(keys), 3), squeeze=False)
    limit = max(float(np.nanmax(np.abs(comps["mean_diff"]))), 0.01)
    for ax, (base, source) in zip(axes.flat, keys, strict=False):
        rows = comps[(comps["base"] == base) & (comps["source"] == source)]
        levels = [lvl for lvl in _level_order(df, base) if lvl in set(rows["level"])]
        ns = sorted(rows["n"].unique())
        grid = np.full((len(levels), len(ns)), np.nan)
        for r in rows.itertuples():
            i, j = levels.index(r.level), ns.index(r.n)
            grid[i, j] = r.mean_diff
            mark = "*" if r.significant else ("°" if r.capped else "")
            dark = abs(r.mean_diff) > 0.6 * limit  # white on the deepest colours
            ax.text(j, i, f"{r.mean_diff:+.3f}{mark}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")  # fmt: skip
        ax.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        ax.set_xticks(range(len(ns)), [str(n) for n in ns], fontsize=7)
        ax.set_yticks(range(len(levels)), levels, fontsize=7)
        ax.set_xlabel("added synthetic patients n", fontsize=7)
        ax.set_ylabel("real patients", fontsize=7)
        ax.set_title(f"{base} · {source}", fontsize=8)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    fig.tight_layout()
    save_figure(fig, path)


def plot_learning_curves(df: pd.DataFrame, metric: str, class_name: str, path: Path) -> None:
    """Per dataset and source: Dice against real training patients (log axis) — real only
    (black, the folds' range shaded) and real + n synthetic for each n."""
    rows = df[df["class_name"] == class_name]
    units = rows.groupby(["dataset", "source", "n", LEVEL, "fold"], sort=False).agg(
        value=(metric, "mean"), count=(COUNT, "mean")).reset_index()  # fmt: skip
    datasets = sorted(units["dataset"].unique())
    sources = sorted(set(units["source"]) - {BASELINE_SOURCE})
    fig = Figure(figsize=(3.2 * max(len(sources), 1), 2.6 * len(datasets)))
    axes = fig.subplots(len(datasets), max(len(sources), 1), squeeze=False, sharey="row")
    for i, dataset in enumerate(datasets):
        data = units[units["dataset"] == dataset]
        base = data[data["source"] == BASELINE_SOURCE].groupby(LEVEL).agg(
            x=("count", "mean"), y=("value", "mean"), lo=("value", "min"), hi=("value", "max")
        ).sort_values("x")  # fmt: skip
        for j, source in enumerate(sources):
            ax = axes[i][j]
            ax.fill_between(base["x"], base["lo"], base["hi"], color="grey", alpha=0.2, lw=0)
            ax.plot(base["x"], base["y"], "o-", color="black", ms=3, lw=1.2, label="real only")
            cells = data[data["source"] == source]
            for n, curve in cells.groupby("n"):
                c = curve.groupby(LEVEL).agg(x=("count", "mean"), y=("value", "mean"))
                c = c.sort_values("x")
                ax.plot(c["x"], c["y"], "o-", ms=3, lw=1, label=f"+{n} synthetic")
            ax.set_xscale("log")
            ax.set_xticks(base["x"], [f"{x:g}" for x in base["x"]], fontsize=7)
            ax.minorticks_off()
            ax.tick_params(labelsize=7)
            ax.set_title(f"{dataset} · {source}", fontsize=8)
            ax.set_xlabel("real training patients", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{metric} ({class_name})", fontsize=7)
            ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)


def regime_lines(comps: pd.DataFrame, worth: list[dict]) -> list[str]:
    """Per (dataset, source): the levels where it helped (significant gain), with its largest
    shift there and what it was worth; or that it helped at no level."""
    worth_at = {(w["dataset"], w["source"], w["n"], w["real_patients"]): w for w in worth}
    lines = []
    for (base, source), rows in comps.groupby(["base", "source"], sort=True):
        gains = rows[rows["significant"] & (rows["direction"] == "gain")]
        harms = rows[rows["significant"] & (rows["direction"] == "harm")]
        if gains.empty:
            what = "hurts" if not harms.empty else "helps at no real-patients level"
            where = (
                f" at {', '.join(sorted(set(harms['level'])))} real patients"
                if not harms.empty
                else ""
            )
            count = f"{len(rows)} comparison{'s' if len(rows) != 1 else ''}"
            lines.append(f"{base} · {source}: {what}{where} (Holm, {count})")
            continue
        best = gains.loc[gains["mean_diff"].idxmax()]
        w = worth_at.get((base, source, int(best["n"]), best["level"]))
        worth_text = ""
        if w is not None:
            value = w["equivalent_real_patients"]
            worth_text = (
                f", {best['level']} real + {int(best['n'])} synthetic ≈ {value:.1f} real patients"
                if value is not None
                else f", worth {w['note']}"
            )
        levels = ", ".join(sorted(set(gains["level"]), key=lambda s: (s == "all", s)))
        lines.append(
            f"{base} · {source}: helps at {levels} real patients: {best['mean_diff']:+.3f} "
            f"at n = {int(best['n'])}{worth_text}"
        )
    return lines


def _worth_table(worth: list[dict]) -> pd.DataFrame:
    def shown(w):
        if w["equivalent_real_patients"] is None:
            return w["note"]
        ci = w["ci"]
        rng = f" (folds {ci[0]:.1f}–{ci[1]:.1f})" if ci else ""
        return f"{w['equivalent_real_patients']:.1f}{rng}"

    return pd.DataFrame(
        {
            "dataset": [w["dataset"] for w in worth],
            "source": [w["source"] for w in worth],
            "real patients": [w["real_patients"] for w in worth],
            "+ n synthetic": [w["n"] for w in worth],
            "worth (real patients)": [shown(w) for w in worth],
        }
    )


def levels_sections(stats: StudyStatistics, df: pd.DataFrame, out: Path) -> list[Section]:
    """The real-patients sections; none for a study with one level."""
    comps = _comparisons(stats)
    if comps.empty or LEVEL not in df:
        return []
    plot_heatmaps(comps, df, out / "levels_heatmap.png")
    plot_learning_curves(df, stats.metric, stats.class_name, out / "learning_curves.png")
    lines = regime_lines(comps, stats.worth)
    figures = [
        ("Dice shift against the real-only cells of the same real-patients level (rows) for "
         "each n (columns); * significant after Holm over every comparison of the study, "
         "° a U-Net stopped by its step cap (no conclusion drawn).", "levels_heatmap.png"),
        ("Learning curves: Dice against real training patients (log axis); black: real only, "
         "grey: the folds' range; coloured: real + n synthetic.", "learning_curves.png"),
    ]  # fmt: skip
    worth_note = (
        "What a synthetic set is worth: the real patients at which the real-only curve reaches "
        "the same Dice (monotone, interpolated in log r, never extrapolated); the bracket is "
        "the range of the folds' own estimates, not a confidence interval."
    )
    return [
        ("Where synthetic data helps: real patients × n", lines, figures),
        ("Worth in real patients", _worth_table(stats.worth) if stats.worth else worth_note, None),
    ]
