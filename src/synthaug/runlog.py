"""A training run's metrics log: one JSON object per line of ``RUN/metrics.jsonl``, appended as
training goes, torn last lines skipped, rolled back to the resume point after a kill."""

from __future__ import annotations

import json
from pathlib import Path

from synthaug.atomic import atomic_file

METRICS = "metrics.jsonl"


def read_metrics(run: Path, up_to_nimg: int | None = None) -> list[dict]:
    """Metrics rows, skipping a torn last line and (when resuming) rows past ``up_to_nimg``."""
    path = Path(run) / METRICS
    rows: list[dict] = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
        if up_to_nimg is None or row.get("nimg", 0) <= up_to_nimg:
            rows.append(row)
    return rows


def rewrite_metrics(run: Path, rows: list[dict]) -> None:
    with atomic_file(Path(run) / METRICS, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def append_metrics(run: Path, row: dict) -> None:
    with open(Path(run) / METRICS, "a") as handle:
        handle.write(json.dumps(row) + "\n")
