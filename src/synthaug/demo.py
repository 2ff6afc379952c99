"""``synthaug demo``: the whole study on the embedded phantom, sized for a CPU.

phantom (tissue + lesion tasks) → prepare → train the budget's generators per (task, fold) →
generate → U-Nets over a small n sweep → statistics → report. Every step resumes: rerunning
the demo after a kill skips what is done.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from synthaug.atomic import atomic_file
from synthaug.data.options import PrepareOptions
from synthaug.data.phantom import make_phantom
from synthaug.errors import SynthaugError
from synthaug.progress import console
from synthaug.quality.evaluate import consistency_ceiling
from synthaug.report.html import make_report
from synthaug.stages.prepare import prepare_dataset
from synthaug.study.config import StudyConfig, design_warnings, parse_study
from synthaug.study.layout import StudyLayout
from synthaug.study.runner import add_timing, run_study


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: ``FULL`` (budget "cpu") is 29 minutes on 2 CPU cores whose fp32
    matmul runs at 145 GFLOP/s (about 18 at 229), ``QUALITY`` (budget "quality") trains every
    generator to its quality targets, ``QUICK`` is a two-minute check of the pipeline."""

    name: str
    patients: int
    resolution: int
    prepare_folds: int
    study_folds: list[int]
    n_levels: list[int]
    gan_preset: str
    gan_kimg: dict[str, float]  # per variant
    seg_preset: str
    seg_max_steps: int | None
    sources: list[str]
    diffusion_preset: str
    diffusion_kimg: float
    # Real-patients levels per task (the others: the whole fold): where does a source help?
    real_patients: dict[str, list] = field(default_factory=dict)
    # Measured wall time of the whole demo (s) on a machine whose fp32 matmul ran at
    # ``measured_gflops`` on 2 threads: scaled by this machine's figure for the estimate.
    measured_seconds: float = 0.0
    measured_gflops: float = 135.0


DIFFUSION_DEMO_KIMG = 6.0  # ~3 single-thread minutes of the cpu-tiny painter (docs/generators.md)

FULL = DemoSize(
    name="cpu",
    patients=24,
    resolution=64,
    prepare_folds=5,
    study_folds=[0, 1],
    # U-Nets train until validation stops them (600-1500 steps each), so the grid is what
    # gives: one n level, and the two sources a CPU trains to use in minutes.
    n_levels=[0, 6],
    gan_preset="cpu-tiny",
    # Only for the budgets that run StyleGAN2 (quality, quick); 2.6 kimg is what the
    # conditional generator's consistency target needs on tissue (docs/gan_tuning.md).
    gan_kimg={"joint": 0.6, "mask": 1.0, "conditional": 2.6},
    seg_preset="cpu-tiny",
    seg_max_steps=None,
    # The diffusion painter and the no-training baseline that tells whether a generator adds
    # anything over domain randomisation. No StyleGAN2: at a CPU demo's budget none reaches
    # its targets (the conditional one paints lesions at 0.4-0.6 of real consistency at 2.6
    # kimg and needs ~14, docs/time_to_quality.md), and it cost a third of a ten-minute demo;
    # `demo --quick` and `--budget quality` run all three.
    # augmented-mask-diffusion: the same painter on deformed real masks (no extra training).
    sources=["real-mask-diffusion", "augmented-mask-diffusion", "real-mask-gmm"],
    diffusion_preset="cpu-tiny",
    diffusion_kimg=DIFFUSION_DEMO_KIMG,
    # The lesion task at 4 real patients too (its generators trained on those 4): the
    # learning curve, and what a synthetic patient is worth where real data is scarce.
    real_patients={"lesion": [4, "all"]},
    # 2026-12-03, quiet, AVX512-BF16 without AMX (the painter in bf16, U-Nets in fp32), with
    # the lesion task's 4-real-patient level and augmented-mask-diffusion (18 min without).
    measured_seconds=1729.0,
    measured_gflops=145.0,
)
QUICK = DemoSize(
    name="quick",
    patients=6,
    resolution=32,
    prepare_folds=3,
    study_folds=[0, 1],
    n_levels=[0, 1, 2],
    gan_preset="cpu-micro",
    gan_kimg={"joint": 0.04, "mask": 0.04, "conditional": 0.04},
    seg_preset="cpu-micro",
    seg_max_steps=40,
    sources=[
        "joint", "mask-conditional", "real-mask-conditional", "real-mask-diffusion",
        "mask-diffusion", "real-mask-gmm", "augmented-mask-gmm",
    ],
    diffusion_preset="cpu-micro",
    diffusion_kimg=0.08,
    real_patients={"lesion": [2, "all"]},
    measured_seconds=124.0,  # 2026-12-03, quiet
    measured_gflops=136.0,
)  # fmt: skip
# The whole grid, each generator trained to where the time-to-quality curves (docs/time_to_quality.md,
# tissue fold 0, cpu-tiny) show it at its targets, with a margin: in-domain FID within 3x of
# real, precision and recall at least half of real, painters' consistency at least 0.9 of
# the ceiling -- or to its best where it never gets there (the joint StyleGAN2 becomes
# usable on tissue at ~60 kimg and still misses FID and recall; the mask StyleGAN2 is best
# near 19 kimg and drifts off after). Same data, presets and study as the CPU demo; only
# training lengths differ. Estimated from the measured training rates at about 2-2.5 hours on
# 2 cores, most of it the joint runs (README); minutes on a GPU.
QUALITY = replace(
    FULL,
    name="quality",
    n_levels=[0, 2, 6],
    gan_kimg={"joint": 60.0, "mask": 20.0, "conditional": 8.0},
    sources=["joint", "mask-conditional", "real-mask-conditional", "real-mask-diffusion",
             "augmented-mask-diffusion", "real-mask-gmm"],
    diffusion_kimg=27.0,
    measured_seconds=0.0,  # not run end to end: README gives the estimate from training rates
)  # fmt: skip
BUDGETS = {size.name: size for size in (FULL, QUALITY, QUICK)}
TASKS = ("tissue", "lesion")


def default_budget() -> str:
    """ "quality" where a CUDA GPU is present (its runs take minutes), else "cpu"."""
    import torch

    return "quality" if torch.cuda.is_available() else "cpu"


def demo_size(budget: str | None = None, quick: bool = False) -> DemoSize:
    """The demo's size for a budget name (None: ``default_budget()``); ``quick`` wins."""
    if quick:
        if budget not in (None, "quick"):
            raise SynthaugError(f"--quick and --budget {budget}: choose one")
        return QUICK
    name = budget or default_budget()
    try:
        return BUDGETS[name]
    except KeyError:
        raise SynthaugError(
            f"--budget: unknown budget {name!r}; choose one of {', '.join(BUDGETS)}"
        ) from None


def estimate_seconds(size: DemoSize, gflops: float) -> float | None:
    """The demo's wall time on a machine whose fp32 matmul runs at ``gflops`` (2 threads),
    scaled from the measured run; None when the budget has no measurement."""
    if not size.measured_seconds or gflops <= 0:
        return None
    return size.measured_seconds * size.measured_gflops / gflops


def _announce_estimate(size: DemoSize) -> None:
    from synthaug.precision import matmul_gflops

    gflops = matmul_gflops(threads=2)
    seconds = estimate_seconds(size, gflops)
    if seconds is None:
        console.print(f"demo: this machine's fp32 matmul: {gflops:.0f} GFLOP/s on 2 threads")
        return
    console.print(
        f"demo: this machine's fp32 matmul: {gflops:.0f} GFLOP/s on 2 threads; estimated "
        f"{seconds / 60:.0f} min (measured {size.measured_seconds / 60:.0f} min at "
        f"{size.measured_gflops:.0f} GFLOP/s)"
    )


def prepare_phantoms(out: Path, size: DemoSize, seed: int, workers: int) -> list[dict]:
    """Both phantom tasks, built and prepared once: the study's ``datasets`` entries."""
    datasets = []
    for task in TASKS:
        name = f"phantom-{task}"
        dataset, store = out / "datasets" / name, out / "stores" / name
        if not dataset.exists():
            make_phantom(dataset, patients=size.patients, task=task, seed=seed, workers=workers)
        if not store.exists():
            options = PrepareOptions(
                resolution=size.resolution, folds=size.prepare_folds, seed=seed, workers=workers
            )
            prepare_dataset(dataset, store, options)
        entry = {"name": name, "store": str(store.resolve())}
        if task in size.real_patients:
            entry["real_patients"] = list(size.real_patients[task])
        datasets.append(entry)
    return datasets


def demo_study(datasets: list[dict], size: DemoSize, seed: int) -> dict:
    """The demo's study config (as written to study.yaml)."""
    return {
        "name": "demo" if size is FULL else f"demo-{size.name}",
        "datasets": datasets,
        "sources": size.sources,
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
            # The CPU demo's budget leaves some generators unusable by design (README): study
            # them anyway, their cells flagged in results.csv and the report.
            "allow_unusable": True,
        },
        "seg": {
            "preset": size.seg_preset,
            **({"max_steps": size.seg_max_steps} if size.seg_max_steps else {}),
        },
        "generate": {"seed": seed, "truncation": 1.0},
        # One snapshot at the end: scoring a diffusion snapshot means sampling it.
        "diffusion": {
            "preset": size.diffusion_preset,
            "kimg": size.diffusion_kimg,
            "seed": seed,
            "snapshot_kimg": size.diffusion_kimg,
            "allow_unusable": True,
        },
        # The no-training baseline paints the lesion phantom's class 0 (air and brain) as one
        # tissue, which the quality checks call "off the data": what the study should show.
        "gmm": {"seed": seed, "allow_unusable": True},
    }


def run_demo(
    out: Path | str = "runs/demo",
    quick: bool = False,
    workers: int = 2,
    seed: int = 0,
    budget: str | None = None,
) -> Path:
    """Run (or resume) the demo under ``out``; returns the report's index.html.

    ``budget``: "cpu" (10-20 minutes on 2 cores), "quality" (generators trained to their
    targets) or None (quality on a GPU, else cpu); ``quick``: the two-minute version."""
    size = demo_size(budget, quick)
    out = Path(out)
    _refuse_other_budget(out, size)
    t0 = time.perf_counter()
    console.print(f"demo: budget {size.name}")
    _announce_estimate(size)
    raw = demo_study(prepare_phantoms(out, size, seed, workers), size, seed)
    config = parse_study(raw)
    data_seconds = time.perf_counter() - t0
    with atomic_file(out / "study.yaml", "w") as handle:
        yaml.safe_dump(raw, handle, sort_keys=False)
    console.print(
        f"demo: data ready in {data_seconds:.0f} s; running the study (config {out / 'study.yaml'})"
    )
    for warning in design_warnings(config):  # the demo is too small to test anything
        console.print(f"demo: note: {warning}")
    layout = StudyLayout(out / "study")
    results = run_study(config, layout.root, workers=workers)
    t1 = time.perf_counter()
    report = make_report(results, out / "report")
    add_timing(layout, "phantom+prepare", data_seconds)
    add_timing(layout, "report", time.perf_counter() - t1)
    for line in consistency_summary(layout, config):
        console.print(f"demo: {line}")
    console.print(f"demo: finished in {time.perf_counter() - t0:.0f} s; report: {report.resolve()}")
    return report


def _refuse_other_budget(out: Path, size: DemoSize) -> None:
    """A demo folder holds one budget: resuming it with another would mix their runs."""
    path = out / "study.yaml"
    if not path.is_file():
        return
    name = (yaml.safe_load(path.read_text()) or {}).get("name")
    if name and name != demo_study([], size, 0)["name"]:
        raise SynthaugError(
            f"{out}: holds the {name!r} demo; choose another --out for budget {size.name!r}"
        )


def consistency_summary(layout: StudyLayout, config: StudyConfig) -> list[str]:
    """One line per (dataset, source): mean mask–image consistency over folds, and the same
    real-only U-Net's consistency on real validation slices (the ceiling)."""
    lines = []
    for ds in config.datasets:
        for spec in config.source_specs():
            values = []
            for fold in config.folds:
                path = layout.quality(ds.name, fold, spec)
                c = (json.loads(path.read_text()) if path.is_file() else {}).get("consistency")
                ceiling = consistency_ceiling(c) if c else None
                if c and c.get("synthetic") and ceiling:
                    values.append((c["synthetic"]["mean"], ceiling["mean"]))
            if values:
                lines.append(
                    f"{ds.name} {spec.name}: mask–image consistency "
                    f"{np.mean([v[0] for v in values]):.3f} (real validation slices with the same "
                    f"U-Net: {np.mean([v[1] for v in values]):.3f})"
                )
    return lines
