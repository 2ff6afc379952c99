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

from synthaug.errors import SynthaugError

RUN_META = "run.json"
CHECKPOINT = "checkpoint.pt"
SNAPSHOT_DIR = "snapshots"
GRID_DIR = "grids"
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
