"""``synthaug report``: a self-contained HTML report (images beside it) and a Markdown twin."""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from synthaug import __version__  # noqa: E402
from synthaug.atomic import atomic_file, write_json  # noqa: E402
from synthaug.data.store import SliceStore  # noqa: E402
from synthaug.data.synthetic import read_synthetic  # noqa: E402
from synthaug.study.analysis import StudyStatistics, analyse, format_statistics  # noqa: E402
from synthaug.study.cd_diagram import plot_cd_diagram  # noqa: E402
from synthaug.study.config import StudyConfig  # noqa: E402
from synthaug.study.layout import StudyLayout  # noqa: E402
from synthaug.study.quality_report import (  # noqa: E402
    gan_health_table,
    plot_fid_over_training,
    synthetic_quality_table,
)
from synthaug.study.runner import read_results, read_study  # noqa: E402
from synthaug.viz import pair_grid, save_figure, save_png  # noqa: E402

SAMPLE_SLICES = 8
QUALITY_NOTE = "No quality metrics (the study ran with quality: {enabled: false})."
QUALITY_LEGEND = (
    "In-domain features (an encoder trained on the fold's real training slices): numbers are "
    "comparable between sources of one dataset, not with published FIDs. FID held-out: real "
    "validation patients against the same reference, the value a perfect generator reaches. "
    "Consistency: Dice of the real-only U-Net on the synthetic pairs; consistency real test: "
    "the same U-Net on real test slices (the ceiling). Class TV: total variation between real "
    "and synthetic class frequencies."
)


def plot_dice_vs_n(summary: pd.DataFrame, path: Path) -> None:
    """One panel per (dataset, source): mean Dice ± s.e. against n added patients, n = 0 marked."""
    problems = sorted({(d, s) for d, s in zip(summary["dataset"], summary["source"], strict=True)})
    datasets = sorted({d for d, _ in problems})
    sources = sorted({s for _, s in problems})
    fig = Figure(figsize=(3.2 * len(sources), 2.6 * len(datasets)))
    axes = fig.subplots(len(datasets), len(sources), squeeze=False, sharex=True)
    for i, dataset in enumerate(datasets):
        for j, source in enumerate(sources):
            ax = axes[i][j]
            g = summary[
                (summary["dataset"] == dataset) & (summary["source"] == source)
            ].sort_values("n")
            if g.empty:
                ax.set_visible(False)
                continue
            se = g["se"].fillna(0.0)
            ax.errorbar(g["n"], g["mean"], yerr=se, marker="o", ms=3, capsize=2, lw=1)
            base = g[g["n"] == 0]
            if not base.empty:
                b, bse = float(base["mean"].iloc[0]), float(np.nan_to_num(base["se"].iloc[0]))
                ax.axhline(b, color="grey", ls="--", lw=0.8)
                ax.axhspan(b - bse, b + bse, color="grey", alpha=0.15, lw=0)
            ax.set_title(f"{dataset} · {source}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if j == 0:
                ax.set_ylabel("mean fg Dice", fontsize=8)
            if i == len(datasets) - 1:
                ax.set_xlabel("added synthetic patients n", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="t")


def _table_md(df: pd.DataFrame) -> str:
    if df.empty:
        return "_none_"
    cols = list(df.columns)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _evenly(count: int) -> np.ndarray:
    return np.linspace(0, count - 1, SAMPLE_SLICES).round().astype(int)


def sample_grids(layout: StudyLayout, config: StudyConfig, out: Path) -> list[tuple[str, str]]:
    """Uncurated real and synthetic pairs: (caption, file name) per dataset and source —
    every source of the config, filtered ones included."""
    figures = []
    fold = config.folds[0]
    for ds in config.datasets:
        store = SliceStore(ds.store)
        images, labels = store.arrays(store.split(fold).train[:2])
        idx = _evenly(len(images))
        name = f"samples-{ds.name}-real.png"
        save_png(out / name, pair_grid(images[idx], labels[idx], columns=2), scale=2)
        figures.append((f"{ds.name}: real training pairs (fold {fold})", name))
        for spec in config.source_specs():
            syn_dir = layout.synthetic(ds.name, fold, spec)
            if not (syn_dir / "dataset.json").is_file():
                continue
            p = read_synthetic(syn_dir, limit=1)[0]
            idx = _evenly(len(p.images))
            name = f"samples-{ds.name}-{spec.slug}.png"
            save_png(out / name, pair_grid(p.images[idx], p.labels[idx], columns=2), scale=2)
            caption = f"{ds.name}: synthetic pairs from {spec.name} (uncurated, fold {fold})"
            figures.append((caption, name))
    return figures


def _overview(config: StudyConfig) -> pd.DataFrame:
    rows = []
    for ds in config.datasets:
        s = SliceStore(ds.store).summary()
        rows.append(
            {
                "dataset": ds.name,
                "patients": s["patients"],
                "slices": s["slices"],
                "channels": ", ".join(s["modalities"]),
                "resolution": s["resolution"],
                "label frequencies": ", ".join(
                    f"{n} {f:.3f}" for n, f in zip(s["labels"], s["label_frequencies"], strict=True)
                ),
            }
        )
    return pd.DataFrame(rows)


def _verdict(stats: StudyStatistics) -> str:
    w = stats.wilcoxon
    gains = int((w["direction"] == "gain").sum()) if not w.empty else 0
    harms = int((w["direction"] == "harm").sum()) if not w.empty else 0
    total = len(w)
    text = f"{gains} significant gain(s) and {harms} significant harm(s) in {total} comparisons of n > 0 against real-only (Wilcoxon, Holm)."
    if stats.friedman is not None:
        f = stats.friedman
        best = min(f.avg_ranks, key=f.avg_ranks.get)
        text += (
            f" Friedman over {f.k} n levels × {f.num_problems} problems: p = {f.p_value:.3g}; "
            f"best average rank at n = {best}."
        )
    return text


Section = tuple[str, "pd.DataFrame | str | None", "list[tuple[str, str]] | None"]


def _result_figures(stats: StudyStatistics, out: Path) -> list[tuple[str, str]]:
    plot_dice_vs_n(stats.summary, out / "dice_vs_n.png")
    figures = [
        (
            "Mean foreground Dice ± s.e. against added synthetic patients (dashed: n = 0)",
            "dice_vs_n.png",
        )
    ]
    if stats.friedman is not None:
        plot_cd_diagram(
            {f"n={n}": r for n, r in stats.friedman.avg_ranks.items()},
            stats.friedman.cd,
            out / "cd_diagram.png",
            title=f"Nemenyi critical difference (CD = {stats.friedman.cd:.2f})",
        )
        figures.append(
            ("Critical-difference diagram over n levels (Demšar 2006)", "cd_diagram.png")
        )
    return figures


def _timings(layout: StudyLayout, df: pd.DataFrame) -> pd.DataFrame:
    timings = json.loads(layout.timings.read_text()) if layout.timings.is_file() else {}
    cell_time = (
        df.drop_duplicates(["dataset", "source", "n", "fold", "seed"])["train_seconds"]
        if "train_seconds" in df
        else pd.Series(dtype=float)
    )
    rows = [{"stage": k, "wall seconds": v} for k, v in timings.items()]
    if len(cell_time):
        rows.append({"stage": "U-Net per cell (mean)", "wall seconds": float(cell_time.mean())})
    return pd.DataFrame(rows)


def _statistics_sections(stats: StudyStatistics, out: Path) -> list[Section]:
    significant = (
        stats.wilcoxon[stats.wilcoxon["significant"]][
            ["dataset", "source", "n", "mean_diff", "p_holm", "direction"]
        ]
        if not stats.wilcoxon.empty
        else pd.DataFrame()
    )
    return [
        ("Verdict", _verdict(stats), None),
        ("Dice against added synthetic patients", None, _result_figures(stats, out)),
        ("Significant gains and harms", significant, None),
        ("Statistics", format_statistics(stats), None),
        (
            "Mean ± s.e. per cell",
            stats.summary[["dataset", "source", "n", "mean", "se", "count"]],
            None,
        ),
    ]


def _study_sections(layout: StudyLayout, config: StudyConfig | None, out: Path) -> list[Section]:
    """Samples, quality, generator health and datasets: what needs the study's config."""
    if config is None:
        return [("Synthetic data quality", "(no study.json beside the results)", None)]
    fid_figure = out / "fid_over_training.png"
    quality_figures = (
        [
            (
                "In-domain FID of each generator's snapshots against its fold's real training "
                "slices (dashed: held-out real patients; x: collapsed snapshot)",
                fid_figure.name,
            )
        ]
        if plot_fid_over_training(layout, config, fid_figure)
        else []
    )
    quality_table = synthetic_quality_table(layout, config)
    sections: list[Section] = [
        ("Samples: real and synthetic pairs", None, sample_grids(layout, config, out)),
        (
            "Synthetic data quality",
            quality_table if not quality_table.empty else QUALITY_NOTE,
            None,
        ),
    ]
    if not quality_table.empty:
        sections.append(("Reading the quality numbers", QUALITY_LEGEND, None))
    sections += [
        ("Generators over training", gan_health_table(layout, config), quality_figures),
        ("Datasets", _overview(config), None),
    ]
    return sections


def make_report(results: Path | str, out: Path | str) -> Path:
    """Write ``index.html`` and ``report.md`` with their figures into ``out``; returns the HTML path."""
    results = Path(results)
    layout = StudyLayout(results if results.is_dir() else results.parent)
    df = read_results(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = analyse(df)
    write_json(out / "stats.json", stats.as_dict())
    config = read_study(layout)
    sections = [
        *_statistics_sections(stats, out),
        *_study_sections(layout, config, out),
        ("Timings", _timings(layout, df), None),
        (
            "Configuration",
            json.dumps(config.to_dict(), indent=2)
            if config
            else "(no study.json beside the results)",
            None,
        ),
    ]
    title = config.name if config else "synthaug study"
    html_path = out / "index.html"
    with atomic_file(html_path, "w") as handle:
        handle.write(_render_html(sections, title))
    with atomic_file(out / "report.md", "w") as handle:
        handle.write(_render_md(sections, title))
    return html_path


def _render_html(sections: list[Section], title: str) -> str:
    title = html.escape(title)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{title} — synthaug report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}table.t{border-collapse:collapse;font-size:13px}"
        "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}figure{margin:1em 0}</style></head><body>",
        f"<h1>{title}</h1><p>synthaug {__version__} · {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC · "
        "Dice is measured on REAL test patients only.</p>",
    ]
    for heading, body, figures in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(body, pd.DataFrame):
            parts.append(_table_html(body) if not body.empty else "<p><em>none</em></p>")
        elif isinstance(body, str):
            parts.append(
                f"<pre>{html.escape(body)}</pre>" if "\n" in body else f"<p>{html.escape(body)}</p>"
            )
        for caption, name in figures or []:
            parts.append(
                f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _render_md(sections: list[Section], title: str) -> str:
    parts = [
        f"# {title}",
        "",
        f"synthaug {__version__}. Dice is measured on REAL test patients only.",
        "",
    ]
    for heading, body, figures in sections:
        parts += [f"## {heading}", ""]
        if isinstance(body, pd.DataFrame):
            parts.append(_table_md(body))
        elif isinstance(body, str):
            parts.append(f"```\n{body}\n```" if "\n" in body else body)
        for caption, name in figures or []:
            parts.append(f"![{caption}]({name})")
        parts.append("")
    return "\n".join(parts)
