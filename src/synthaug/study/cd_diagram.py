"""Demšar-style critical-difference diagram of average ranks (matplotlib, Agg, no pyplot).

Rank 1 (best) is at the left of the axis. Each treatment is labelled at its average rank by
a line down and out to the left (better half) or right (worse half) margin; the CD bar sits
above the axis; thick bars under the axis join groups whose rank span is below the CD.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from synthaug.atomic import atomic_file
from synthaug.study.stats import nemenyi_cliques

_LABEL_STEP = 0.22  # inches between label rows
_CLIQUE_STEP = 0.12  # inches between clique-bar rows
_CHAR_WIDTH = 0.075  # inches per label character at the label font size


def _pack(intervals: list[tuple[float, float]]) -> list[int]:
    """Row index for each interval so that intervals in the same row do not overlap."""
    ends: list[float] = []
    rows = []
    for lo, hi in intervals:
        for row, end in enumerate(ends):
            if lo > end:
                ends[row] = hi
                rows.append(row)
                break
        else:
            ends.append(hi)
            rows.append(len(ends) - 1)
    return rows


def plot_cd_diagram(
    avg_ranks: Mapping[Hashable, float],
    cd: float,
    path: str | Path,
    title: str | None = "Critical difference diagram",
    *,
    svg: bool = False,
    show_ranks: bool = True,
    dpi: int = 150,
) -> list[Path]:
    """Draw the CD diagram of ``avg_ranks`` (rank 1 = best) and write it atomically as PNG.

    ``path`` names the PNG; with ``svg=True`` an SVG with the same stem is written too.
    Labels are ``str(key)``, followed by the rank when ``show_ranks``. Returns the paths written.
    """
    if len(avg_ranks) < 2:
        raise ValueError(f"a CD diagram needs at least 2 treatments, got {len(avg_ranks)}")
    if not (cd > 0 and math.isfinite(cd)):
        raise ValueError(f"cd must be a positive finite number, got {cd}")
    k = len(avg_ranks)
    order = sorted(avg_ranks, key=lambda t: avg_ranks[t])  # best first
    hi_rank = max(k, math.ceil(max(avg_ranks.values())))
    labels = {t: f"{t} ({avg_ranks[t]:.2f})" if show_ranks else str(t) for t in order}

    text_w = 0.35 + _CHAR_WIDTH * max(len(s) for s in labels.values())
    scale_w = max(4.0, 0.4 * (hi_rank - 1))
    width = scale_w + 2 * text_w

    def x(rank: float) -> float:
        return text_w + scale_w * (rank - 1.0) / (hi_rank - 1.0)

    cliques = nemenyi_cliques(avg_ranks, cd)
    spans = [(avg_ranks[c[0]], avg_ranks[c[-1]]) for c in cliques]
    clique_rows = _pack(spans)
    n_clique_rows = max(clique_rows, default=-1) + 1

    n_left = math.ceil(k / 2)
    left = order[:n_left]  # best half: leftmost treatment gets the top row
    right = order[n_left:][::-1]  # worst half: rightmost treatment gets the top row

    y = 0.2
    if title:
        y_title = y + 0.1
        y += 0.4
    y_cd = y + 0.3
    y_axis = y_cd + 0.55
    y_clique0 = y_axis + 0.2
    y_label0 = y_clique0 + n_clique_rows * _CLIQUE_STEP + 0.15
    height = y_label0 + max(len(left), len(right)) * _LABEL_STEP + 0.15

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    line = {"color": "black", "linewidth": 0.9}

    if title:
        ax.text(width / 2, y_title, title, ha="center", va="center", fontsize=11)

    # CD bar, starting at rank 1.
    cd_end = x(min(1.0 + cd, hi_rank))
    ax.plot([x(1.0), cd_end], [y_cd, y_cd], color="black", linewidth=1.6)
    for xe in (x(1.0), cd_end):
        ax.plot([xe, xe], [y_cd - 0.06, y_cd + 0.06], **line)
    ax.text((x(1.0) + cd_end) / 2, y_cd - 0.1, f"CD = {cd:.2f}", ha="center", va="bottom")

    # Rank axis with ticks above it.
    ax.plot([x(1.0), x(hi_rank)], [y_axis, y_axis], **line)
    tick_font = 9 if hi_rank <= 12 else 7
    for r in range(1, hi_rank + 1):
        ax.plot([x(r), x(r)], [y_axis, y_axis - 0.1], **line)
        ax.text(x(r), y_axis - 0.13, str(r), ha="center", va="bottom", fontsize=tick_font)
    for r in range(1, hi_rank):
        ax.plot([x(r + 0.5), x(r + 0.5)], [y_axis, y_axis - 0.05], **line)

    # Treatments: down from the axis, then out to the margin.
    for i, t in enumerate(left):
        yl = y_label0 + i * _LABEL_STEP
        xr = x(avg_ranks[t])
        ax.plot([xr, xr, text_w - 0.1], [y_axis, yl, yl], **line)
        ax.text(text_w - 0.15, yl, labels[t], ha="right", va="center", fontsize=9)
    for i, t in enumerate(right):
        yl = y_label0 + i * _LABEL_STEP
        xr = x(avg_ranks[t])
        ax.plot([xr, xr, width - text_w + 0.1], [y_axis, yl, yl], **line)
        ax.text(width - text_w + 0.15, yl, labels[t], ha="left", va="center", fontsize=9)

    # Groups not significantly different: thick bars between the axis and the labels.
    for (lo, hi), row in zip(spans, clique_rows, strict=True):
        yc = y_clique0 + row * _CLIQUE_STEP
        ax.plot(
            [x(lo) - 0.05, x(hi) + 0.05],
            [yc, yc],
            color="black",
            linewidth=3.5,
            solid_capstyle="butt",
        )

    out = Path(path)
    written = [out]
    with atomic_file(out, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    if svg:
        svg_path = out.with_suffix(".svg")
        with atomic_file(svg_path, "wb") as handle:
            fig.savefig(handle, format="svg")
        written.append(svg_path)
    return written
