"""``synthaug report``: a self-contained HTML report (images beside it) and a Markdown twin."""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from synthaug import __version__  # noqa: E402
from synthaug.atomic import atomic_file, write_json  # noqa: E402
from synthaug.data.store import SliceStore  # noqa: E402
from synthaug.data.synthetic import read_synthetic  # noqa: E402
from synthaug.report.glance import fmt3, glance_section  # noqa: E402
from synthaug.report.levels import levels_sections  # noqa: E402
from synthaug.report.quality import (  # noqa: E402
    closest_pairs_grids,
    gan_health_table,
    plot_fid_over_training,
    synthetic_quality_table,
)
from synthaug.report.statistics import Section, statistics_sections  # noqa: E402
from synthaug.study.config import StatsSettings, StudyConfig  # noqa: E402
from synthaug.study.layout import StudyLayout  # noqa: E402
from synthaug.study.records import analyse_with, read_results, read_study  # noqa: E402
from synthaug.viz import pair_grid, save_png  # noqa: E402

SAMPLE_SLICES = 8
QUALITY_NOTE = "No quality metrics (the study ran with quality: {enabled: false})."
QUALITY_LEGEND = (
    "In-domain features (an encoder trained on the fold's real training slices): numbers are "
    "comparable between sources of one dataset, not with published FIDs. FID held-out: real "
    "validation patients against the same reference; both are computed at the same N (the "
    "smaller set's size, the larger subsampled 5 times), because FID's bias depends on N. "
    "Too close: the fraction of synthetic slices nearer to a real training slice than 95% of "
    "real validation slices are (about 0.05 for new data, near 1 for copies). Consistency: "
    "Dice of a real-only U-Net (the judge: trained with its own seed, not a study cell and not "
    "the filter's U-Net) on the synthetic pairs; consistency real val: the same U-Net on real "
    "validation slices (the ceiling; test patients feed no quality number). Accepted: the "
    "share of generated pairs a filtered source kept (judged by the filter's U-Net, another "
    "one). Class TV: total variation between real and synthetic class frequencies."
)
DICE_CONVENTIONS = [
    "Dice is computed on REAL test patients only, per class, on each patient's stacked slices "
    "(3-D), then averaged over the fold's test patients; 'mean' is the mean over foreground "
    "classes. A class absent from both prediction and ground truth of a patient scores 1 "
    "(nothing to find, nothing found); predicted where the ground truth has none, it scores "
    "0. Per-slice Dice leaves out slices where the class is absent from the ground truth, so "
    "it ignores false positives on empty slices. Test patients are never edited: "
    "drop_empty/drop_edge only choose training slices.",
    "The table below gives, per class, how often it is absent from the test patients and "
    "slices: a class absent from many patients pulls its 3-D Dice towards 1 (or 0).",
]


LONG_TEXT = 40
"""Text cells longer than this wrap; shorter ones stay on one line (the table box scrolls)."""


def _cell(value: object) -> str:
    """A table cell: numbers with 3 significant digits (``glance.fmt3``), missing as "—"."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.integer | np.floating):
        return fmt3(value)
    return str(value)


def _column_cells(column: pd.Series) -> list[str]:
    """A column's cells; a float column holding only whole numbers (counts with a gap, NaN
    where missing) shows them as integers ("15", not "15.0")."""
    if pd.api.types.is_float_dtype(column):
        finite = column[np.isfinite(column.to_numpy(dtype=float))]
        if len(finite) and (finite == finite.round()).all() and (finite.abs() < 1e15).all():
            return [_cell(int(v)) if math.isfinite(v) else "—" for v in column.astype(float)]
    return [_cell(v) for v in column]


def _kind(column: pd.Series, cells: list[str]) -> str:
    """The CSS class of a column: "num" (right-aligned), "txt" (short text, kept on one line)
    or "txt long" (wraps)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return "num"
    return "txt long" if max(map(len, cells), default=0) > LONG_TEXT else "txt"


def _formatted(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Per column its CSS class, and the table's rows of formatted cells."""
    columns = [_column_cells(df.iloc[:, k]) for k in range(df.shape[1])]
    kinds = [_kind(df.iloc[:, k], cells) for k, cells in enumerate(columns)]
    return kinds, [list(row) for row in zip(*columns, strict=True)]


def _table_html(df: pd.DataFrame) -> str:
    """A table in its own horizontally scrolling box: numbers right-aligned with 3
    significant digits, short text on one line, long text wrapping."""
    kinds, rows = _formatted(df)
    head = "".join(
        f"<th class='{k}'>{html.escape(str(c))}</th>"
        for c, k in zip(df.columns, kinds, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td class='{k}'>{html.escape(v)}</td>" for v, k in zip(row, kinds, strict=True))
        + "</tr>"
        for row in rows
    )
    return (
        f"<div class='scroll'><table class='t'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def _table_md(df: pd.DataFrame) -> str:
    if df.empty:
        return "_none_"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in _formatted(df)[1]
    ]
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


def _class_table(config: StudyConfig, df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and foreground class: the share of test patients and test slices (over the
    study's folds) without it, and its mean 3-D Dice real-only and with each source's most
    synthetic patients."""
    top = int(df["n"].max()) if len(df) else 0
    rows = []
    for ds in config.datasets:
        store = SliceStore(ds.store)
        patients = [p for f in config.folds for p in store.split(f).test]
        present = [
            (store.patient(p)[1][..., None] == np.arange(store.num_classes)).any(axis=(1, 2))
            for p in patients
        ]  # per patient: [S, K] class present in slice
        for k, name in enumerate(store.label_names[1:], start=1):
            rows.append(
                {
                    "dataset": ds.name,
                    "class": name,
                    "test patients without it": np.mean([not m[:, k].any() for m in present]),
                    "test slices without it": 1 - np.concatenate([m[:, k] for m in present]).mean(),
                    **_class_dice(df, ds.name, name, top),
                }
            )
    return pd.DataFrame(rows)


def _class_dice(df: pd.DataFrame, dataset: str, name: str, top: int) -> dict[str, float]:
    rows = df[(df["dataset"] == dataset) & (df["class_name"] == name)]
    out = {"Dice real-only": float(rows.loc[rows["n"] == 0, "dice"].mean())}
    for source, group in rows[rows["n"] == top].groupby("source", sort=True):
        out[f"Dice {source} n={top}"] = float(group["dice"].mean())
    return out


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


def _sources_table(config: StudyConfig) -> pd.DataFrame:
    """What each of the study's sources is (one row per source, filters included)."""
    rows = []
    for spec in config.source_specs():
        kind = spec.kind
        rows.append({"source": spec.name, "images by": f"{kind.painter.family} {kind.painter.variant}",
                     "masks": {"own": "its own", "generated": "the mask StyleGAN2's",
                               "real": "real training masks",
                               "augmented": "deformed real training masks"}[kind.masks],
                     "what it is": kind.about})  # fmt: skip
    return pd.DataFrame(rows)


def _study_sections(
    layout: StudyLayout, config: StudyConfig | None, out: Path, df: pd.DataFrame
) -> list[Section]:
    """Samples, quality, generator health and datasets: what needs the study's config."""
    if config is None:
        return [("Synthetic data quality", "(no study.json beside the results)", None)]
    fid_figure = out / "fid_over_training.png"
    quality_figures = (
        [
            (
                "In-domain FID of each generator's snapshots against its fold's real validation "
                "slices (dashed: the generator's real training slices at the same N; x: "
                "unusable snapshot — collapsed, copying or off the data)",
                fid_figure.name,
            )
        ]
        if plot_fid_over_training(layout, config, fid_figure)
        else []
    )
    quality_table = synthetic_quality_table(layout, config)
    sections: list[Section] = [
        ("How Dice is computed", DICE_CONVENTIONS, None),
        ("Dice per class, and how often each class is absent", _class_table(config, df), None),
        ("Samples: real and synthetic pairs", None, sample_grids(layout, config, out)),
        (
            "Synthetic data quality",
            quality_table if not quality_table.empty else QUALITY_NOTE,
            None,
        ),
    ]
    if not quality_table.empty:
        sections.append(("Reading the quality numbers", QUALITY_LEGEND, None))
        sections.append(
            ("Memorisation: the closest synthetic–training pairs", None,
             closest_pairs_grids(layout, config, out))
        )  # fmt: skip
    sections += [
        ("Sources", _sources_table(config), None),
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
    config = read_study(layout)
    settings = config.stats if config else StatsSettings()
    stats = analyse_with(df, settings, config.repeats if config else 1)
    write_json(out / "stats.json", stats.as_dict())
    sections = [
        glance_section(stats, out),
        *statistics_sections(stats, out),
        *levels_sections(stats, df, out),
        *_study_sections(layout, config, out, df),
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


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1300px;margin:1.5em auto;padding:0 16px;"
    "color:#222;line-height:1.4;overflow-wrap:break-word}"
    "h1{margin:0 0 .2em}h2{font-size:1.35em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd}"
    "section.glance{background:#fafafa;border:1px solid #ddd;padding:.2em 1em .6em;margin:1em 0}"
    "section.glance h2{border:0;margin-top:.6em}section.glance p{font-size:16px;margin:.4em 0}"
    "img{max-width:100%;height:auto;border:1px solid #ddd}figure{margin:1em 0}"
    "figcaption{font-size:13px;color:#444;max-width:100%}"
    "div.scroll{max-width:100%;overflow-x:auto;margin:.5em 0}"
    "table.t{border-collapse:collapse;font-size:12.5px}"
    "table.t td,table.t th{padding:2px 6px;border-bottom:1px solid #eee;vertical-align:top}"
    "table.t th{background:#f4f4f4;white-space:normal;min-width:3em}"
    ".num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
    ".txt{text-align:left;white-space:nowrap}.txt.long{white-space:normal;min-width:14em;"
    "max-width:30em}"
    "pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px;white-space:pre-wrap;"
    "overflow-wrap:anywhere}"
)


def _render_html(sections: list[Section], title: str) -> str:
    title = html.escape(title)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{title} — synthaug report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{title}</h1><p>synthaug {__version__} · {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC · "
        "Dice is measured on REAL test patients only.</p>",
    ]
    for k, (heading, body, figures) in enumerate(sections):
        parts.append("<section class='glance'>" if k == 0 else "<section>")
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(body, pd.DataFrame):
            parts.append(_table_html(body) if not body.empty else "<p><em>none</em></p>")
        elif isinstance(body, str):
            parts.append(
                f"<pre>{html.escape(body)}</pre>" if "\n" in body else f"<p>{html.escape(body)}</p>"
            )
        elif isinstance(body, list):
            parts.extend(f"<p>{html.escape(p)}</p>" for p in body)
        for caption, name in figures or []:
            parts.append(
                f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        parts.append("</section>")
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
        elif isinstance(body, list):
            parts.append("\n\n".join(body))
        for caption, name in figures or []:
            parts.append(f"![{caption}]({name})")
        parts.append("")
    return "\n".join(parts)
