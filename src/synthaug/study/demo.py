"""``synthaug demo``: the whole study on the embedded phantom, sized for a CPU.

phantom (tissue + lesion tasks) → prepare → train the three generators per (task, fold) →
generate → U-Nets over a small n sweep → statistics → report. Every step resumes: rerunning
the demo after a kill skips what is done.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from synthaug.atomic import atomic_file
from synthaug.config import PrepareOptions
from synthaug.data.phantom import make_phantom
from synthaug.data.prepare import prepare
from synthaug.progress import console
from synthaug.study.config import parse_study
from synthaug.study.report import make_report
from synthaug.study.runner import add_timing, run_study


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is; ``FULL`` targets about 20 minutes on 2 CPU cores."""

    patients: int
    resolution: int
    prepare_folds: int
    study_folds: list[int]
    n_levels: list[int]
    gan_preset: str
    gan_kimg: dict[str, float]  # per variant
    seg_preset: str
    seg_max_steps: int | None


FULL = DemoSize(
    patients=24,
    resolution=64,
    prepare_folds=5,
    study_folds=[0, 1],
    n_levels=[0, 2, 6],
    gan_preset="cpu-tiny",
    # The conditional generator paints the masks of two of the three sources; 2.6 kimg is
    # what its consistency target needs on tissue (0.82 of real; 0.67 at 2.0 kimg,
    # docs/gan_tuning.md). Joint and mask generators cannot reach their targets at any
    # budget a CPU demo affords, and their best snapshots come early: they get the least.
    gan_kimg={"joint": 0.6, "mask": 1.0, "conditional": 2.6},
    seg_preset="cpu-tiny",
    seg_max_steps=None,
)
QUICK = DemoSize(
    patients=6,
    resolution=32,
    prepare_folds=3,
    study_folds=[0, 1],
    n_levels=[0, 1, 2],
    gan_preset="cpu-micro",
    gan_kimg={"joint": 0.04, "mask": 0.04, "conditional": 0.04},
    seg_preset="cpu-micro",
    seg_max_steps=40,
)
TASKS = ("tissue", "lesion")


def run_demo(
    out: Path | str = "runs/demo", quick: bool = False, workers: int = 2, seed: int = 0
) -> Path:
    """Run (or resume) the demo under ``out``; returns the report's index.html."""
    size = QUICK if quick else FULL
    out = Path(out)
    t0 = time.perf_counter()
    datasets = []
    for task in TASKS:
        name = f"phantom-{task}"
        dataset, store = out / "datasets" / name, out / "stores" / name
        if not dataset.exists():
            make_phantom(dataset, patients=size.patients, task=task, seed=seed, workers=workers)
        if not store.exists():
            prepare(
                dataset,
                store,
                PrepareOptions(
                    resolution=size.resolution, folds=size.prepare_folds, seed=seed, workers=workers
                ),
            )
        datasets.append({"name": name, "store": str(store.resolve())})
    raw = {
        "name": "demo-quick" if quick else "demo",
        "datasets": datasets,
        "sources": ["joint", "mask-conditional", "real-mask-conditional"],
        "n_levels": size.n_levels,
        "folds": size.study_folds,
        "seeds": [seed],
        "gan": {
            "preset": size.gan_preset,
            "kimg": size.gan_kimg,
            "seed": seed,
            # Four snapshots of the longest run (fewer for the shorter ones): an FID curve over
            # training and a choice for `generate`, without scoring costing much of the budget.
            "snapshot_kimg": max(size.gan_kimg.values()) / 4,
        },
        "seg": {
            "preset": size.seg_preset,
            **({"max_steps": size.seg_max_steps} if size.seg_max_steps else {}),
        },
        "generate": {"seed": seed, "truncation": 1.0},
    }
    config = parse_study(raw)
    data_seconds = time.perf_counter() - t0
    with atomic_file(out / "study.yaml", "w") as handle:
        yaml.safe_dump(raw, handle, sort_keys=False)
    console.print(
        f"demo: data ready in {time.perf_counter() - t0:.0f} s; running the study (config {out / 'study.yaml'})"
    )
    results = run_study(config, out / "study", workers=workers)
    t1 = time.perf_counter()
    report = make_report(results, out / "report")
    add_timing(out / "study", "phantom+prepare", data_seconds)
    add_timing(out / "study", "report", time.perf_counter() - t1)
    for line in consistency_summary(out / "study"):
        console.print(f"demo: {line}")
    console.print(f"demo: finished in {time.perf_counter() - t0:.0f} s; report: {report.resolve()}")
    return report


def consistency_summary(study: Path) -> list[str]:
    """One line per (dataset, source): mean mask–image consistency over folds, and the same
    real-only U-Net's consistency on real test slices (the ceiling)."""
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for path in sorted((study / "quality").glob("*/fold*/*.json")):
        q = json.loads(path.read_text())
        c = q.get("consistency") or {}
        if c.get("synthetic") and c.get("real_test"):
            key = (q["dataset"], q["source"])
            found.setdefault(key, []).append((c["synthetic"]["mean"], c["real_test"]["mean"]))
    return [
        f"{dataset} {source}: mask–image consistency {np.mean([v[0] for v in values]):.3f} "
        f"(real test slices with the same U-Net: {np.mean([v[1] for v in values]):.3f})"
        for (dataset, source), values in found.items()
    ]
