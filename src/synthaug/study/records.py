"""Reading a study folder's records: its config and its results table (no job is run here)."""

from __future__ import annotations

import json
from pathlib import Path

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


def analyse_results(
    path: Path | str,
    design: str | None = None,
    alpha: float | None = None,
    rope: float | None = None,
) -> StudyStatistics:
    """The analysis of a results table with the study's own settings unless given here."""
    path = Path(path)
    layout = StudyLayout(path if path.is_dir() else path.parent)
    config = read_study(layout)
    settings = config.stats if config else StatsSettings()
    return analyse(
        read_results(path),
        design or settings.design,
        settings.alpha if alpha is None else alpha,
        settings.rope if rope is None else rope,
    )


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
