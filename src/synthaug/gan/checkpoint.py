"""Training-run layout on disk and checkpoint I/O (atomic; validated on load).

A run directory::

    run.json                 what was trained: variant, preset, store, fold, patients, labels
    checkpoint.pt            the latest full training state (G, G_ema, D, optimisers, ADA p,
                             RNG states, progress); replaced atomically at each snapshot
    snapshots/gema-NNNNNNNNN.pt  G_ema weights at each snapshot (N… = images seen)
    grids/fakes-NNNNNNNNN.png    uncurated samples at each snapshot; grids/reals.png
    metrics.jsonl            one JSON object per logging interval
    summary.json             written when a training call ends: images seen, speed, warnings
"""

from __future__ import annotations

import json
from pathlib import Path

from synthaug.atomic import atomic_file
from synthaug.errors import SynthaugError

RUN_META = "run.json"
CHECKPOINT = "checkpoint.pt"
SNAPSHOT_DIR = "snapshots"
GRID_DIR = "grids"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"


def read_run_meta(run: Path) -> dict:
    path = Path(run) / RUN_META
    if not path.is_file():
        raise SynthaugError(f"{run}: not a GAN run (no {RUN_META}); run `synthaug train-gan` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SynthaugError(f"{path}: corrupt run metadata ({exc.msg})") from exc


def snapshot_path(run: Path, nimg: int) -> Path:
    return Path(run) / SNAPSHOT_DIR / f"gema-{nimg:09d}.pt"


def grid_path(run: Path, nimg: int) -> Path:
    return Path(run) / GRID_DIR / f"fakes-{nimg:09d}.png"


def snapshot_nimg(path: Path) -> int:
    """Images seen at a snapshot, from its file name."""
    return int(Path(path).stem.split("-")[-1])


def list_snapshots(run: Path) -> list[Path]:
    return sorted((Path(run) / SNAPSHOT_DIR).glob("gema-*.pt"))


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
