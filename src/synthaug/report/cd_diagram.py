"""Demšar-style critical-difference diagram of average ranks (matplotlib, Agg, no pyplot).

Rank 1 (best) is at the left of the axis. Each treatment is labelled at its average rank by
a line down and out to the left (better half) or right (worse half) margin; the CD bar sits
above the axis; thick bars under the axis join groups whose rank span is below the CD.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from synthaug.atomic import atomic_file
from synthaug.stats.core import nemenyi_cliques

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


@dataclass(frozen=True)
class _Geometry:
    """Where everything of a CD diagram goes (inches; y grows downwards)."""

    hi_rank: int
    text_w: float
    scale_w: float
    y_title: float
    y_cd: float
    y_axis: float
    y_clique0: float
    y_label0: float
    height: float

    @property
    def width(self) -> float:
        return self.scale_w + 2 * self.text_w

    def x(self, rank: float) -> float:
        return self.text_w + self.scale_w * (rank - 1.0) / (self.hi_rank - 1.0)


def _geometry(
    avg_ranks: Mapping[Hashable, float], labels: dict, title: bool, n_clique_rows: int
) -> _Geometry:
    k = len(avg_ranks)
    hi_rank = max(k, math.ceil(max(avg_ranks.values())))
    text_w = 0.35 + _CHAR_WIDTH * max(len(s) for s in labels.values())
    y = 0.2
    y_title = y + 0.1
    if title:
        y += 0.4
    y_cd = y + 0.3
    y_axis = y_cd + 0.55
    y_clique0 = y_axis + 0.2
    y_label0 = y_clique0 + n_clique_rows * _CLIQUE_STEP + 0.15
    height = y_label0 + math.ceil(k / 2) * _LABEL_STEP + 0.15
    scale_w = max(4.0, 0.4 * (hi_rank - 1))
    return _Geometry(hi_rank, text_w, scale_w, y_title, y_cd, y_axis, y_clique0, y_label0, height)


def _draw_scale(ax, g: _Geometry, cd: float, line: dict) -> None:
    """The CD bar (starting at rank 1) and the rank axis with ticks above it."""
    x = g.x
    cd_end = x(min(1.0 + cd, g.hi_rank))
    ax.plot([x(1.0), cd_end], [g.y_cd, g.y_cd], color="black", linewidth=1.6)
    for xe in (x(1.0), cd_end):
        ax.plot([xe, xe], [g.y_cd - 0.06, g.y_cd + 0.06], **line)
    ax.text((x(1.0) + cd_end) / 2, g.y_cd - 0.1, f"CD = {cd:.2f}", ha="center", va="bottom")
    ax.plot([x(1.0), x(g.hi_rank)], [g.y_axis, g.y_axis], **line)
    tick_font = 9 if g.hi_rank <= 12 else 7
    for r in range(1, g.hi_rank + 1):
        ax.plot([x(r), x(r)], [g.y_axis, g.y_axis - 0.1], **line)
        ax.text(x(r), g.y_axis - 0.13, str(r), ha="center", va="bottom", fontsize=tick_font)
    for r in range(1, g.hi_rank):
        ax.plot([x(r + 0.5), x(r + 0.5)], [g.y_axis, g.y_axis - 0.05], **line)


def _draw_treatments(ax, g: _Geometry, avg_ranks, order: list, labels: dict, line: dict) -> None:
    """Each treatment: down from the axis, then out to its margin (best half left)."""
    n_left = math.ceil(len(order) / 2)
    left = order[:n_left]  # best half: leftmost treatment gets the top row
    right = order[n_left:][::-1]  # worst half: rightmost treatment gets the top row
    for side, treatments in (("left", left), ("right", right)):
        edge = g.text_w - 0.1 if side == "left" else g.width - g.text_w + 0.1
        text_x = g.text_w - 0.15 if side == "left" else g.width - g.text_w + 0.15
        for i, t in enumerate(treatments):
            yl = g.y_label0 + i * _LABEL_STEP
            xr = g.x(avg_ranks[t])
            ax.plot([xr, xr, edge], [g.y_axis, yl, yl], **line)
            ha = "right" if side == "left" else "left"
            ax.text(text_x, yl, labels[t], ha=ha, va="center", fontsize=9)


def _save(fig: Figure, path: Path, svg: bool, dpi: int) -> list[Path]:
    written = [path]
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    if svg:
        svg_path = path.with_suffix(".svg")
        with atomic_file(svg_path, "wb") as handle:
            fig.savefig(handle, format="svg")
        written.append(svg_path)
    return written


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
    order = sorted(avg_ranks, key=lambda t: avg_ranks[t])  # best first
    labels = {t: f"{t} ({avg_ranks[t]:.2f})" if show_ranks else str(t) for t in order}
    cliques = nemenyi_cliques(avg_ranks, cd)
    spans = [(avg_ranks[c[0]], avg_ranks[c[-1]]) for c in cliques]
    clique_rows = _pack(spans)
    g = _geometry(avg_ranks, labels, bool(title), max(clique_rows, default=-1) + 1)

    fig = Figure(figsize=(g.width, g.height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, g.width)
    ax.set_ylim(g.height, 0)
    ax.set_axis_off()
    line = {"color": "black", "linewidth": 0.9}
    if title:
        ax.text(g.width / 2, g.y_title, title, ha="center", va="center", fontsize=11)
    _draw_scale(ax, g, cd, line)
    _draw_treatments(ax, g, avg_ranks, order, labels, line)
    # Groups not significantly different: thick bars between the axis and the labels.
    for (lo, hi), row in zip(spans, clique_rows, strict=True):
        yc = g.y_clique0 + row * _CLIQUE_STEP
        ax.plot(
            [g.x(lo) - 0.05, g.x(hi) + 0.05],
            [yc, yc],
            color="black",
            linewidth=3.5,
            solid_capstyle="butt",
        )
    return _save(fig, Path(path), svg, dpi)
