"""Reading a study folder's records: its config and its results table (no job is run here)."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from synthaug.errors import SynthaugError
from synthaug.stats.analysis import StudyStatistics, analyse
from synthaug.study.config import StatsSettings, StudyConfig, parse_study
from synthaug.study.layout import StudyLayout


def read_study(layout: StudyLayout) -> StudyConfig | None:
    """The config a study folder was run with (None when it has no study.json)."""
    if not layout.meta.is_file():
        return None
    try:
        raw = json.loads(layout.meta.read_text())["config"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise SynthaugError(f"{layout.meta}: not a readable study record ({exc})") from exc
    return parse_study(raw, layout.meta)


def analyse_with(
    results: pd.DataFrame, settings: StatsSettings, repeats: int = 1
) -> StudyStatistics:
    """The analysis of a results table under a study's ``stats`` settings."""
    return analyse(
        results,
        design=settings.design,
        alpha=settings.alpha,
        rope=settings.rope,
        metric=settings.metric,
        class_name=settings.class_name,
        primary=settings.primary,
        repeats=repeats,
    )


def analyse_results(path: Path | str, **overrides: Any) -> StudyStatistics:
    """The analysis of a results table with the study's own ``stats`` settings, except the
    fields given in ``overrides`` (None values are ignored)."""
    path = Path(path)
    layout = StudyLayout(path if path.is_dir() else path.parent)
    config = read_study(layout)
    settings = config.stats if config else StatsSettings()
    chosen = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(chosen) - {f.name for f in fields(StatsSettings)})
    if unknown:
        raise SynthaugError(f"stats: unknown setting(s) {unknown}")
    repeats = getattr(config, "repeats", 1) if config else 1
    return analyse_with(read_results(path), replace(settings, **chosen), repeats)


def read_results(path: Path | str) -> pd.DataFrame:
    """A results table, checked for the columns the statistics need."""
    path = Path(path)
    if path.is_dir():
        path = StudyLayout(path).results
    if not path.is_file():
        raise SynthaugError(f"{path}: results table not found; run `synthaug study` first")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SynthaugError(f"{path}: not a readable CSV results table ({exc})") from exc
    missing = [
        c
        for c in ("dataset", "source", "n", "fold", "seed", "class_name", "dice")
        if c not in df.columns
    ]
    if missing:
        raise SynthaugError(f"{path}: results table lacks column(s) {', '.join(missing)}")
    return df
