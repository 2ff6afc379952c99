"""The verdict at a glance: one figure, at most five sentences and a terminal table.

Every number comes from ``analysis.StudyStatistics.comparisons`` (one row per dataset, source
and n > 0 against real-only); nothing here computes a statistic. A comparison with a capped
U-Net is drawn hatched and grey and is never described as a gain or a harm (the analysis
draws none from it); one built on a generator flagged unusable is decided like the others and
carries a caution.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from synthaug.stats.analysis import METRICS, StudyStatistics
from synthaug.viz import save_figure

GlanceSection = tuple[str, "pd.DataFrame | str | list[str] | None", "list[tuple[str, str]] | None"]

MAX_SENTENCES = 5
MAX_ROWS_PER_FIGURE = 60
"""Above this many comparisons the glance figure is split (by dataset) into several files."""
FIGURE_NAME = "glance.png"

HARM, EQUIVALENT, GAIN = "#d62728", "#b0b0b0", "#2ca02c"
NEUTRAL = "#555555"
FONT = 9  # pt; nothing in the figure is smaller than 8 pt
WIDTH_IN = 11.5  # inches: ~1270 px at save_figure's 110 dpi, inside a 1400-px window
ROW_IN = 0.27
MAX_LABEL_CHARS = 50

# --------------------------------------------------------------------------- numbers


def fmt3(x: Any, signed: bool = False) -> str:
    """``x`` with 3 significant digits and no scientific notation down to 1e-4 ("—" for
    NaN/None); integers as they are, floats of 1000 or more rounded to a whole number.
    ``signed`` puts a "+" before positive numbers."""
    if x is None or x is pd.NA:
        return "—"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):+d}" if signed else str(int(x))
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(value):
        return "—" if math.isnan(value) else ("-∞" if value < 0 else ("+∞" if signed else "∞"))
    plus = "+" if signed else ""
    if value == 0:
        return "0"
    rounded = float(f"{value:.3g}")  # rounding first: 0.9996 -> 1.00, not 1.000
    if abs(rounded) < 1e-4:
        return f"{rounded:{plus}.2e}"
    exponent = math.floor(math.log10(abs(rounded)))
    decimals = max(0, 2 - exponent)
    return f"{(value if exponent >= 3 else rounded):{plus}.{decimals}f}"


def fmt_p(p: Any) -> str:
    """A p-value (or probability) with 3 significant digits; below 0.001 as "< 0.001"."""
    if p is None or p is pd.NA or (isinstance(p, float | np.floating) and math.isnan(p)):
        return "—"
    return "< 0.001" if float(p) < 0.001 else fmt3(p)


def _minus(text: str) -> str:
    """A typographic minus for prose ("-0.01" -> "−0.01")."""
    return text.replace("-", "−") if text[:1] == "-" else text


def _signed(x: Any) -> str:
    return _minus(fmt3(x, signed=True))


def _is_nan(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and math.isnan(x))


# --------------------------------------------------------------------------- rows


def metric_words(stats: StudyStatistics) -> str:
    """The metric as a reader says it: "mean foreground Dice", "HD95 of tumour"."""
    name = {"dice": "Dice", "slice_dice": "per-slice Dice", "nsd": "NSD", "hd95": "HD95"}.get(
        stats.metric, stats.metric
    )
    return (
        f"mean foreground {name}" if stats.class_name == "mean" else f"{name} of {stats.class_name}"
    )


def _keys(comps: pd.DataFrame) -> list[str]:
    real = ["real_patients"] if "real_patients" in comps.columns else []
    return ["dataset", "source", *real, "n"]


def glance_rows(stats: StudyStatistics) -> pd.DataFrame:
    """The comparisons in reading order (dataset, source, real patients, n) with a ``label``
    ("lesion · real-mask-diffusion · n=6") and ``claim`` (False when capped: the analysis draws
    no gain or harm from it; a flagged generator's comparison is decided, with a caution)."""
    comps = stats.comparisons
    if comps.empty:
        return comps.assign(
            label=pd.Series(dtype=str), claim=pd.Series(dtype=bool), bayes=pd.Series(dtype=bool)
        )
    rows = comps.sort_values(_keys(comps), kind="stable").reset_index(drop=True)
    has_real = "real_patients" in rows.columns
    labels = []
    for r in rows.itertuples(index=False):
        parts = [str(r.dataset), str(r.source)]
        if has_real and not _is_nan(r.real_patients):
            parts.append(f"r={int(r.real_patients)} real")
        parts.append(f"n={int(r.n)}")
        labels.append(" · ".join(parts))
    capped = rows["capped"].astype(bool)
    # The Bayesian primary decides by P(gain)/P(harm); Holm's p is then no decision.
    bayes = rows["p_holm"].isna() | (getattr(stats, "primary", "") == "bayes")
    # A flagged generator's comparison is decided like any other; its row carries a caution.
    return rows.assign(label=labels, claim=~capped, bayes=bayes)


def _level(stats: StudyStatistics) -> str:
    return f"{1 - stats.alpha:.0%}"


def _uses_holm(row: Any) -> bool:
    return not bool(row.bayes)


def _is(name: str, p: Any) -> str:
    """ "p = 0.031", "p < 0.001", "P(gain) = 0.97"."""
    text = fmt_p(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def _p_text(row: Any) -> str:
    """The primary test's decision number: adjusted p, or P(gain) for the Bayesian test."""
    if _uses_holm(row):
        return _is("p", row.p_holm)
    if row.direction == "harm":
        return _is("P(harm)", row.p_harm)
    return _is("P(gain)", row.p_gain)


def _edge_text(row: Any) -> str:
    """What the figure writes right of a row: the decision number and any flag."""
    flag = _flag_text(row)
    return _p_text(row) + (f"  {flag}" if flag else "")


def _flag_text(row: Any) -> str:
    flags = []
    if bool(row.capped):
        flags.append("capped")
    if bool(row.flagged):
        flags.append("unusable generator")
    return ", ".join(flags)


def _decision(row: Any) -> str:
    if bool(row.capped):
        return "none (capped)"
    if bool(row.flagged):
        return f"{row.direction} (unusable generator)"
    return str(row.direction)


# --------------------------------------------------------------------------- the figure


def _chunks(rows: pd.DataFrame, limit: int) -> list[pd.DataFrame]:
    """Whole datasets packed into figures of at most ``limit`` rows (a larger dataset is cut)."""
    if len(rows) <= limit:
        return [rows]
    chunks: list[pd.DataFrame] = []
    current: list[pd.DataFrame] = []
    size = 0
    for _, group in rows.groupby("dataset", sort=False):
        for start in range(0, len(group), limit):
            part = group.iloc[start : start + limit]
            if size + len(part) > limit and current:
                chunks.append(pd.concat(current))
                current, size = [], 0
            current.append(part)
            size += len(part)
    if current:
        chunks.append(pd.concat(current))
    return chunks


def _middle(text: str, size: int) -> str:
    """``text`` cut to ``size`` characters in the middle ("real-mas…fusion")."""
    if len(text) <= size:
        return text
    keep = max(size - 1, 2)
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2) :]


def _short(label: str) -> str:
    """A long label shortened in its longest part (the source, usually), so that its dataset,
    real patients and n stay readable."""
    if len(label) <= MAX_LABEL_CHARS:
        return label
    parts = label.split(" · ")
    longest = max(range(len(parts)), key=lambda k: len(parts[k]))
    parts[longest] = _middle(parts[longest], len(parts[longest]) - (len(label) - MAX_LABEL_CHARS))
    return _middle(" · ".join(parts), MAX_LABEL_CHARS)


def _draw(stats: StudyStatistics, rows: pd.DataFrame, path: Path, title: str) -> None:
    count = len(rows)
    top_in, bottom_in = 1.0, 0.75  # title + legend; x labels
    height = top_in + bottom_in + ROW_IN * max(count, 1)
    labels = [_short(s) for s in rows["label"]]
    edge_texts = [_edge_text(r) for r in rows.itertuples(index=False)]
    label_in = min(3.6, max(1.2, 0.068 * max(len(s) for s in labels)))
    text_in = 0.25 + 0.062 * max(len(s) for s in edge_texts)  # 8 pt, past the panel's edge
    bars_in, gap_in = 2.2, 0.35
    shift_in = max(2.6, WIDTH_IN - label_in - bars_in - gap_in - text_in)
    fig = Figure(figsize=(WIDTH_IN, height))
    bottom, axes_h = bottom_in / height, ROW_IN * max(count, 1) / height
    ax_bar = fig.add_axes((label_in / WIDTH_IN, bottom, bars_in / WIDTH_IN, axes_h))
    ax_shift = fig.add_axes(
        ((label_in + bars_in + gap_in) / WIDTH_IN, bottom, shift_in / WIDTH_IN, axes_h),
        sharey=ax_bar,
    )
    claim = rows["claim"].to_numpy(dtype=bool)
    _draw_probabilities(ax_bar, stats, rows, claim, labels)
    _draw_shifts(ax_shift, stats, rows, claim, shift_in)
    _draw_edge_texts(ax_shift, rows, claim, edge_texts)
    _finish(fig, (ax_bar, ax_shift), stats, rows, title, label_in / WIDTH_IN, height)
    save_figure(fig, path)


def _draw_probabilities(
    ax, stats: StudyStatistics, rows: pd.DataFrame, claim: np.ndarray, labels: list[str]
) -> None:
    """The left panel: P(harm) / P(equivalent) / P(gain) as one stacked bar per row."""
    count = len(rows)
    y = np.arange(count)
    harm = rows["p_harm"].to_numpy(dtype=float)
    equiv = rows["p_equivalent"].to_numpy(dtype=float)
    gain = rows["p_gain"].to_numpy(dtype=float)
    known = np.isfinite(harm) & np.isfinite(equiv) & np.isfinite(gain)
    h, e, g = (np.where(known, v, 0.0) for v in (harm, equiv, gain))
    for values, left, colour in ((h, 0, HARM), (e, h, EQUIVALENT), (g, h + e, GAIN)):
        for mask, alpha, hatch in ((claim, 1.0, None), (~claim, 0.35, "///")):
            if mask.any():
                ax.barh(y[mask], values[mask], left=np.broadcast_to(left, y.shape)[mask],
                        height=0.72, color=colour, alpha=alpha, hatch=hatch,
                        edgecolor="white" if hatch is None else NEUTRAL, lw=0.4)  # fmt: skip
    for i in np.flatnonzero(~known):
        ax.text(0.5, i, "— (too few folds)", ha="center", va="center", fontsize=8)
    for i in np.flatnonzero(known):  # the probabilities written where a segment is wide enough
        for value, start in ((h[i], 0.0), (e[i], h[i]), (g[i], h[i] + e[i])):
            if value >= 0.16:
                ax.text(start + value / 2, i, f"{value:.2f}", ha="center", va="center",
                        fontsize=8, color="black" if claim[i] else NEUTRAL)  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "", "0.5", "", "1"])
    ax.set_yticks(y, labels)
    ax.set_ylim(count - 0.5, -0.5)
    ax.set_xlabel("posterior probability", fontsize=FONT)
    ax.set_title(
        "P(harm) / P(equivalent) / P(gain)" if stats.rope > 0 else "P(harm) / P(gain)",
        fontsize=FONT, loc="left",
    )  # fmt: skip


def _draw_shifts(
    ax, stats: StudyStatistics, rows: pd.DataFrame, claim: np.ndarray, shift_in: float
) -> None:
    """The right panel: each row's mean shift with its interval, 0 and the ROPE band."""
    low = rows["ci_low"].to_numpy(dtype=float)
    high = rows["ci_high"].to_numpy(dtype=float)
    mean = rows["mean_diff"].to_numpy(dtype=float)
    direction = rows["direction"].to_numpy()
    if stats.rope > 0:
        ax.axvspan(-stats.rope, stats.rope, color=EQUIVALENT, alpha=0.3, lw=0)
    ax.axvline(0, color="black", lw=0.8)
    for i in range(len(rows)):
        colour = {"gain": GAIN, "harm": HARM}.get(direction[i], "black") if claim[i] else NEUTRAL
        if np.isfinite(low[i]) and np.isfinite(high[i]):
            ax.plot([low[i], high[i]], [i, i], color=colour, lw=1.6,
                    ls="-" if claim[i] else ":", solid_capstyle="butt")  # fmt: skip
        if np.isfinite(mean[i]):
            ax.plot(mean[i], i, "o", ms=5, color=colour,
                    mfc=colour if claim[i] else "white")  # fmt: skip
    finite = np.concatenate([v[np.isfinite(v)] for v in (low, high, mean)] + [np.zeros(1)])
    span = max(float(np.max(np.abs(finite))), 2 * stats.rope, 1e-3) * 1.08
    ax.set_xlim(-span, span)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=max(3, int(shift_in * 1.6)), symmetric=True))
    better = "higher is better" if METRICS.get(stats.metric, True) else "lower is better"
    ax.set_xlabel(f"change in {metric_words(stats)}, n − real-only ({better})",
                  fontsize=FONT)  # fmt: skip
    ax.set_title(
        f"mean shift, {_level(stats)} interval"
        + (f" (grey: ±{stats.rope:g})" if stats.rope > 0 else ""),
        fontsize=FONT, loc="left",
    )  # fmt: skip
    ax.tick_params(axis="y", left=False, labelleft=False)


def _draw_edge_texts(ax, rows: pd.DataFrame, claim: np.ndarray, edge_texts: list[str]) -> None:
    """Past the right panel's edge: each row's adjusted p (or P(gain)), bold when decided."""
    edge = blended_transform_factory(ax.transAxes, ax.transData)
    for i, r in enumerate(rows.itertuples(index=False)):
        weight = "bold" if bool(r.significant) and claim[i] else "normal"
        ax.text(1.02, i, edge_texts[i], transform=edge, ha="left", va="center", fontsize=8,
                color="black" if claim[i] else NEUTRAL, fontweight=weight,
                clip_on=False)  # fmt: skip
    ax.text(1.02, -0.7, "p (Holm)" if not rows["bayes"].all() else "Bayesian",
            transform=edge, ha="left", va="bottom", fontsize=8)  # fmt: skip


def _finish(
    fig, axes: tuple, stats: StudyStatistics, rows: pd.DataFrame, title: str, legend_x: float,
    height: float,
) -> None:  # fmt: skip
    """Rules between datasets, spines, the legend and the title."""
    datasets = rows["dataset"].to_numpy()
    for start in np.flatnonzero(datasets[1:] != datasets[:-1]) + 1:
        for ax in axes:
            ax.axhline(start - 0.5, color="black", lw=0.8)
    for ax in axes:
        ax.tick_params(labelsize=FONT)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    legend = [Patch(color=HARM, label="harm"), Patch(color=EQUIVALENT, label="equivalent"),
              Patch(color=GAIN, label="gain"),
              Patch(facecolor="white", edgecolor=NEUTRAL, hatch="///",
                    label="no claim (capped U-Net)")]  # fmt: skip
    if stats.rope <= 0:
        legend.pop(1)
    fig.legend(handles=legend, loc="upper left", ncol=len(legend), fontsize=8, frameon=False,
               bbox_to_anchor=(legend_x, 1 - 0.42 / height))  # fmt: skip
    fig.suptitle(title, x=0.01, y=1 - 0.08 / height, ha="left", va="top", fontsize=10)


def plot_glance(stats: StudyStatistics, path: Path | str) -> list[Path]:
    """Draw the glance figure at ``path``: per comparison (grouped by dataset) the Bayesian
    probabilities as a stacked bar, the mean shift with its interval, and the primary test's
    adjusted p (or P(gain)). Above ``MAX_ROWS_PER_FIGURE`` rows it is split by dataset into
    ``path``, ``<stem>-2.png``, …; returns the files written (none without comparisons)."""
    path = Path(path)
    rows = glance_rows(stats)
    if rows.empty:
        return []
    chunks = _chunks(rows, MAX_ROWS_PER_FIGURE)
    written = []
    title = f"Each n synthetic patients against real-only: {metric_words(stats)}"
    for k, chunk in enumerate(chunks):
        target = path if k == 0 else path.with_name(f"{path.stem}-{k + 1}{path.suffix}")
        part = f" (part {k + 1} of {len(chunks)})" if len(chunks) > 1 else ""
        _draw(stats, chunk.reset_index(drop=True), target, title + part)
        written.append(target)
    return written


# --------------------------------------------------------------------------- sentences


def _family(stats: StudyStatistics) -> str:
    m = len(stats.comparisons)
    return "" if m == 1 else f" after correcting for {m} comparisons"


def _finding(stats: StudyStatistics, r: Any) -> str:
    """One comparison in words: its shift, interval and what the primary test decided."""
    real = ""
    if "real_patients" in r._fields and not _is_nan(r.real_patients):
        real = f" to {int(r.real_patients)} real ones"
    patients = "patient" if int(r.n) == 1 else "patients"
    head = (
        f"On {r.dataset}, adding {int(r.n)} {r.source} {patients}{real} changed "
        f"{metric_words(stats)} by {_signed(r.mean_diff)} ({_level(stats)} interval "
        f"{_signed(r.ci_low)} to {_signed(r.ci_high)})"
    )
    if bool(r.capped):
        return (
            f"{head}; no gain or harm is claimed, because a U-Net stopped at its step cap "
            f"({_p_text(r)})."
        )
    flagged = " — but it was built on a generator flagged unusable" if bool(r.flagged) else ""
    if _uses_holm(r):
        what = f"a significant {r.direction}" if bool(r.significant) else "not significant"
        return f"{head}; {what}{_family(stats)} ({_p_text(r)}){flagged}."
    probabilities = f"{_is('P(gain)', r.p_gain)}, {_is('P(harm)', r.p_harm)}"
    if bool(r.significant):
        return f"{head}; the Bayesian test calls it a {r.direction} ({probabilities}){flagged}."
    return f"{head}; the Bayesian test decides neither way ({probabilities}){flagged}."


def _count(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _overview(stats: StudyStatistics, rows: pd.DataFrame) -> str:
    m = len(rows)
    claimed = rows[rows["significant"].astype(bool) & rows["claim"]]
    gains = int((claimed["direction"] == "gain").sum())
    harms = int((claimed["direction"] == "harm").sum())
    scope = (
        f"{_count(m, 'comparison') if m > 1 else 'single comparison'} of n synthetic patients against real-only "
        f"({_count(rows['dataset'].nunique(), 'dataset')}, "
        f"{_count(rows['source'].nunique(), 'source')})"
    )
    test = "Bayesian correlated t-test" if rows["bayes"].all() else "corrected t-test"
    how = f"({test}, α = {stats.alpha:g})" if test == "corrected t-test" else f"({test})"
    metric = metric_words(stats)
    if not gains and not harms:
        if m == 1:
            return f"The {scope} showed no significant gain or harm in {metric} {how}."
        lead = "Neither" if m == 2 else "None"
        return f"{lead} of the {scope} showed a significant gain or harm in {metric} {how}."
    found = [f"{k} a significant {w}" for k, w in ((gains, "gain"), (harms, "harm")) if k]
    return (
        f"Of the {scope}, {' and '.join(found).replace(' a ', ' showed a ', 1)} in {metric} {how}."
    )


BOUNDED = {"dice", "slice_dice", "nsd"}
"""Metrics between 0 and 1: no change can exceed 1."""


def _power(stats: StudyStatistics, rows: pd.DataFrame) -> str:
    """What the design can detect: the median of the primary test's MDE over comparisons."""
    mde = float(rows["mde"].median()) if rows["mde"].notna().any() else math.nan
    folds = _count(int(rows["n_pairs"].min()), "fold")
    if not math.isfinite(mde):
        return (
            f"With {folds} per comparison the design cannot estimate which effects it would "
            "detect; add folds or repeats."
        )
    alpha = float(rows["mde_alpha"].min())
    at = f"80% power at α = {alpha:.3g}, median over comparisons"
    if stats.metric in BOUNDED and mde >= 1:
        return (
            f"With {folds} per comparison the design cannot detect any possible change in "
            f"{metric_words(stats)}: it would need one of about {fmt3(mde)} ({at}), more than "
            "the metric's whole range; add folds or repeats."
        )
    return (
        f"With {folds} per comparison, the design detects only changes of about {fmt3(mde)} "
        f"or more in {metric_words(stats)} ({at}); smaller real effects would likely go "
        "unnoticed."
    )


def _no_claim(capped: int, flagged: int, m: int) -> str:
    """One sentence on the comparisons no gain or harm is claimed for ("" when none)."""
    of = f"of {_count(m, 'comparison')}"
    cap = "had a U-Net stopped by its step cap (the budget, not the data, decided it)"
    bad = f"{'was' if flagged == 1 else 'were'} built on a generator flagged unusable"
    caution = (
        f"{flagged} {of} {bad} (collapsed, copying or off the data): read them as findings "
        "about that generator, not about synthetic data"
    )
    if capped and flagged:
        return (
            f"{capped} {of} {cap}, so no gain or harm is claimed for them; raise the step cap. "
            f"{caution[0].upper()}{caution[1:]}."
        )
    if capped:
        return f"{capped} {of} {cap}, so no gain or harm is claimed for them; raise the step cap."
    if flagged:
        return f"{caution}."
    return ""


def glance_sentences(stats: StudyStatistics) -> list[str]:
    """At most five plain sentences: the count of findings, the significant (then the
    largest) shifts, what the design can detect and the capped or unusable cells."""
    rows = glance_rows(stats)
    if rows.empty:
        return [
            "No comparison to report: the results table has no cell with synthetic patients "
            "and a real-only baseline."
        ]
    tail = [_power(stats, rows)]
    note = _no_claim(int(stats.capped_cells), int(rows["flagged"].astype(bool).sum()), len(rows))
    if note:
        tail.append(note)
    room = max(1, MAX_SENTENCES - 1 - len(tail))
    # Significant (claimed) findings first, then the largest shifts, capped ones included:
    # their sentence says that no gain or harm is claimed.
    order = rows.assign(
        _sig=~(rows["significant"].astype(bool) & rows["claim"]),
        _size=-rows["mean_diff"].abs().fillna(-1.0),
    ).sort_values(["_sig", "_size"], kind="stable")
    findings = [_finding(stats, r) for r in order.head(room).itertuples(index=False)]
    return [_overview(stats, rows), *findings, *tail][:MAX_SENTENCES]


# --------------------------------------------------------------------------- terminal


def glance_table(stats: StudyStatistics) -> str:
    """The glance rows as an aligned plain-text table (a header, then one line per
    comparison): comparison, shift [interval], p (adj.), P(harm/equiv/gain), decision."""
    rows = glance_rows(stats)
    header = ["comparison", f"shift [{_level(stats)} interval]", "p (adj.)",
              "P(harm/equiv/gain)", "decision"]  # fmt: skip
    if rows.empty:
        return "  ".join(header) + "\n(no comparisons)"
    table = []
    for r in rows.itertuples(index=False):
        probabilities = "/".join(
            "—" if _is_nan(v) else f"{v:.2f}" for v in (r.p_harm, r.p_equivalent, r.p_gain)
        )
        p = fmt_p(r.p_holm) if _uses_holm(r) else f"P(gain) {fmt_p(r.p_gain)}"
        shift = f"{fmt3(r.mean_diff, signed=True)} [{fmt3(r.ci_low)}, {fmt3(r.ci_high)}]"
        table.append([r.label, shift, p, probabilities, _decision(r)])
    widths = [max(len(line[k]) for line in [header, *table]) for k in range(len(header))]
    align = ["<", ">", ">", ">", "<"]

    def render(cells: list[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True))

    return "\n".join(render(line).rstrip() for line in [header, *table])


# --------------------------------------------------------------------------- the report


def glance_section(stats: StudyStatistics, out: Path | str) -> GlanceSection:
    """The report's first section: the sentences and the figure(s), written into ``out``."""
    out = Path(out)
    names = [p.name for p in plot_glance(stats, out / FIGURE_NAME)]
    rope = f"grey: P(practically equivalent, within ±{stats.rope:g}); " if stats.rope > 0 else ""
    caption = (
        "Left: the probability that adding the synthetic patients harms (red) or improves "
        f"(green) {metric_words(stats)} — {rope}Bayesian correlated t-test over folds. Right: "
        f"the mean change over folds (dot) with its {_level(stats)} interval (line; coloured "
        "when the primary test decides a gain or harm), 0 and the equivalence band; at the "
        f"right edge the primary test's p ({stats.primary_test}), or P(gain) for the Bayesian "
        'test. Hatched grey rows (capped U-Net): no gain or harm is claimed. "unusable generator": '
        "built on a generator flagged unusable (read as a finding about that generator)."
    )
    figures = [
        (caption if k == 0 else f"{caption} (part {k + 1})", name) for k, name in enumerate(names)
    ]
    return ("The verdict at a glance", glance_sentences(stats), figures)
