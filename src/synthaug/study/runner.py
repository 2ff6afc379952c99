"""``synthaug study``: run the grid, then collect one results table (one row per cell × class)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from synthaug.atomic import atomic_file, write_json
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.quality.snapshots import unusable_reason
from synthaug.seg.train import SegResults
from synthaug.stages.train_generator import snapshot_scores
from synthaug.stats.core import StatsError
from synthaug.study.config import StudyConfig, load_study
from synthaug.study.executors import JobRunner
from synthaug.study.grid import GeneratorJob, Phase, Plan, SegJob, plan_study
from synthaug.study.layout import StudyLayout
from synthaug.study.records import analyse_with

RESULT_COLUMNS = [
    "dataset",
    "source",
    "n",
    "fold",
    "seed",
    "real_patients",
    "class_name",
    "dice",
    "slice_dice",
    "hd95",
    "nsd",
    "repeat",
    "test_patients",
    "train_patients",
    "val_patients",
    "real_train_slices",
    "synthetic_slices",
    "steps",
    "best_step",
    "max_steps",
    "capped",
    "synthetic_fraction",
    "precision",
    "val_dice",
    "generator_usable",
    "train_seconds",
]


def _check_folds(config: StudyConfig) -> None:
    for i, ds in enumerate(config.datasets):
        store = SliceStore(ds.store)
        missing = [f for f in config.folds if f >= store.num_folds or f < 0]
        if missing:
            raise SynthaugError(
                f"datasets[{i}].store: {ds.store} has folds 0..{store.num_folds - 1}; folds {missing} requested"
            )
        no_val = [f for f in config.folds if not store.split(f).val]
        if config.quality.enabled and no_val:
            raise SynthaugError(
                f"datasets[{i}].store: folds {no_val} of {ds.store} have no validation patients, "
                "which snapshot scoring compares against; prepare with --val-fraction above 0 "
                "or set quality: {enabled: false}"
            )


def _claim_folder(layout: StudyLayout, config: StudyConfig) -> None:
    """A study folder belongs to one config: refuse to mix results of two studies."""
    meta_path, root = layout.meta, layout.root
    if meta_path.is_file():
        previous = json.loads(meta_path.read_text())
        if previous.get("fingerprint") != config.fingerprint():
            raise SynthaugError(
                f"{root}: holds results of a different study (config fingerprint {previous.get('fingerprint')}, "
                f"this one {config.fingerprint()}); choose another --out or restore that config"
            )
        return
    root.mkdir(parents=True, exist_ok=True)
    write_json(meta_path, {"fingerprint": config.fingerprint(), "config": config.to_dict()})


def generators_usable(runs: tuple[str, ...]) -> bool | None:
    """Whether every generator a cell's synthetic patients come from has a usable snapshot
    (None when there are none, or they were not scored)."""
    verdicts = [(snapshot_scores(run) or {}).get("usable") for run in runs]
    if not runs or any(v is None for v in verdicts):
        return None
    return all(verdicts)


def unusable_generators(plan: Plan) -> list[tuple[GeneratorJob, str]]:
    """Each generator of the plan flagged unusable, with why in words."""
    found = []
    for job in plan.generators:
        scores = snapshot_scores(job.request.out)
        if scores and not scores.get("usable", True):
            r = job.request
            why = (
                f"{job.dataset} fold {r.fold} {job.family} {r.variant} ({unusable_reason(scores)})"
            )
            found.append((job, why))
    return found


def _stop_on_unusable(plan: Plan, config: StudyConfig) -> None:
    found = [
        why for job, why in unusable_generators(plan) if not config.allows_unusable(job.family)
    ]
    if found:
        raise SynthaugError(
            f"generators flagged unusable: {'; '.join(found)}. Train them longer (kimg) or set "
            "allow_unusable: true in their section (gan, diffusion) to study them anyway (their "
            "cells are flagged in results.csv and the report)"
        )


def cell_rows(job: SegJob) -> list[dict]:
    """Rows of one finished cell: per class (and "mean"), Dice averaged over test patients."""
    results = SegResults.read(job.options.out)
    usable = generators_usable(job.generator_runs)
    test = pd.DataFrame(results.test)
    rows = []
    for class_name, group in test.groupby("class_name", sort=False):
        rows.append(
            {
                "dataset": job.dataset,
                "source": job.source,
                "n": job.n,
                "fold": job.fold,
                "seed": job.seed,
                # the real-patients level ("all": the whole fold; train_patients its count)
                "real_patients": "all" if job.real_patients is None else str(job.real_patients),
                "class_name": class_name,
                "dice": float(group["dice"].mean()),
                "slice_dice": float(group["slice_dice"].mean()),
                # HD95 is undefined where a class is absent: the mean over the patients that
                # have it (NaN when none has).
                "hd95": _mean(group, "hd95"),
                "nsd": _mean(group, "nsd"),
                "repeat": results.repeat,
                "test_patients": int(len(group)),
                "train_patients": results.real_train_patients,
                "val_patients": results.real_val_patients,
                "real_train_slices": results.real_train_slices,
                "synthetic_slices": results.synthetic_slices,
                "steps": results.steps,
                "best_step": results.best_step,
                # None: a run from before the step-cap check (unknown).
                "max_steps": results.max_steps,
                "capped": results.capped,
                "synthetic_fraction": results.synthetic_fraction,
                "precision": results.precision,
                "val_dice": results.val_dice,
                "generator_usable": usable,
                "train_seconds": results.train_seconds,
            }
        )
    return rows


def _mean(group: pd.DataFrame, column: str) -> float:
    if column not in group:
        return float("nan")
    values = group[column].astype(float)
    return float(values.mean()) if values.notna().any() else float("nan")


def collect_results(plan: Plan) -> pd.DataFrame:
    rows = [row for job in plan.all_cells if job.done() for row in cell_rows(job)]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def write_results(df: pd.DataFrame, path: Path) -> None:
    with atomic_file(path, "w") as handle:
        df.to_csv(handle, index=False)


def add_timing(layout: StudyLayout, phase: str, seconds: float) -> None:
    """Add wall seconds to a phase in the study's timings.json (summed over resumed runs)."""
    path = layout.timings
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[phase] = round(timings.get(phase, 0.0) + seconds, 2)
    write_json(path, timings)


def run_study(
    config: StudyConfig | Path | str,
    out: Path | str,
    executor: str = "local",
    workers: int = 2,
    ray_address: str | None = None,
) -> Path:
    """Run (or resume) every job of the study and write ``results.csv``; returns its path."""
    config = config if isinstance(config, StudyConfig) else load_study(config)
    _check_folds(config)
    layout = StudyLayout(Path(out))
    _claim_folder(layout, config)
    plan = plan_study(config, layout)
    with JobRunner(executor, workers, ray_address) as runner:
        for phase, jobs in plan.phases():
            t0 = time.perf_counter()
            if runner.run(jobs, f"{phase} ({len(jobs)} jobs)"):
                add_timing(layout, phase.timing_key, time.perf_counter() - t0)
            if phase is Phase.GENERATORS:
                _stop_on_unusable(plan, config)
    results = collect_results(plan)
    write_results(results, layout.results)
    write_statistics(results, config, layout)
    return layout.results


def write_statistics(results: pd.DataFrame, config: StudyConfig, layout: StudyLayout) -> bool:
    """The analysis of the study's results as ``stats.json`` (with the config's design, alpha
    and ROPE); False, and nothing written, when the table cannot support it yet."""
    try:
        stats = analyse_with(results, config.stats, getattr(config, "repeats", 1))
    except StatsError:
        return False
    write_json(layout.stats, stats.as_dict())
    return True
