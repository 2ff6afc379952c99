"""``synthaug study --dry-run``: the plan of a study — its jobs, their estimated compute and
what its statistics can show — without running anything."""

from __future__ import annotations

from pathlib import Path

from synthaug.seg.presets import seg_preset
from synthaug.stats.analysis import design_floors
from synthaug.stats.core import friedman_floor, wilcoxon_floor
from synthaug.study.config import StudyConfig, design_warnings
from synthaug.study.grid import GeneratorJob, Plan, QualityJob, SegJob, plan_study

# Measured on the 2-core development machine with the study's executor (two one-thread
# workers side by side), demo and demo --quick of 2026-11-30: StyleGAN2 training images per
# second per worker, seconds of snapshot scoring per run, U-Net seconds per training step
# (validation included) plus a fixed cost per cell, seconds per quality job. GPU presets have
# never run here: their cost is not estimated.
GAN_IMG_PER_S = {
    ("cpu-micro", "joint"): 150.0,
    ("cpu-micro", "mask"): 150.0,
    ("cpu-micro", "conditional"): 120.0,
    ("cpu-tiny", "joint"): 20.0,
    ("cpu-tiny", "mask"): 30.0,
    ("cpu-tiny", "conditional"): 30.0,
}
GAN_SCORING_S = {"cpu-micro": 3.0, "cpu-tiny": 18.0}
SEG_S_PER_STEP = {"cpu-micro": 0.004, "cpu-tiny": 0.035}
SEG_S_PER_CELL = {"cpu-micro": 0.5, "cpu-tiny": 2.0}
QUALITY_S = {"cpu-micro": 12.0, "cpu-tiny": 30.0}
GENERATE_S = 1.5


def _job_seconds(job, config: StudyConfig) -> float | None:
    """Estimated seconds of one job for one worker, None where the preset was never measured."""
    if isinstance(job, GeneratorJob):
        r = job.request
        rate = GAN_IMG_PER_S.get((r.preset, r.variant))
        if rate is None:
            return None
        return r.kimg * 1000 / rate + (GAN_SCORING_S.get(r.preset, 0.0) if job.score else 0.0)
    if isinstance(job, SegJob):
        preset = job.options.preset
        if preset not in SEG_S_PER_STEP:
            return None
        steps = job.options.max_steps or seg_preset(preset).max_steps
        return steps * SEG_S_PER_STEP[preset] + SEG_S_PER_CELL[preset]
    if isinstance(job, QualityJob):
        return QUALITY_S.get(config.seg.preset)
    return GENERATE_S


def _compute_lines(plan: Plan, config: StudyConfig, workers: int) -> list[str]:
    lines, total, unknown = [], 0.0, False
    for phase, jobs in plan.phases():
        seconds = [_job_seconds(j, config) for j in jobs]
        known = [s for s in seconds if s is not None]
        # Jobs of a phase run side by side: about the sum spread over the workers.
        wall = sum(known) / max(1, min(workers, len(jobs))) if known else 0.0
        total += wall
        missing = len(seconds) - len(known)
        unknown |= missing > 0
        extra = f" (+{missing} job(s) of an unmeasured preset)" if missing else ""
        lines.append(f"  {phase:<24} {len(jobs):>5} jobs   ~{wall / 60:6.1f} min{extra}")
    caveat = "; GPU presets are not estimated" if unknown else ""
    lines.append(
        f"  total ~{total / 60:.0f} min with {workers} one-thread workers on a 2-core CPU like "
        f"the development machine (measured presets only{caveat})"
    )
    return lines


def _power_lines(config: StudyConfig) -> list[str]:
    folds, datasets = len(config.folds), len(config.datasets)
    levels, alpha = len(config.n_levels), config.stats.alpha
    per_source = datasets * (levels - 1)
    floor = wilcoxon_floor(folds)
    lines = [
        f"  each n against real-only, per dataset: {folds} independent pairs (folds; the "
        f"{len(config.seeds)} seed(s) are averaged within a fold) → smallest p {floor:.3g}, "
        f"{min(1.0, floor * per_source):.3g} after Holm over a source's {per_source} comparisons",
    ]
    if levels >= 3 and datasets >= 2:
        f_floor = friedman_floor(levels, datasets)
        lines.append(
            f"  Friedman over n levels per source: {datasets} datasets × {levels} levels → "
            f"smallest p {f_floor:.3g} ({min(1.0, f_floor * len(config.sources)):.3g} after "
            f"Holm over {len(config.sources)} sources)"
        )
    ok = not design_floors(datasets, len(config.sources), levels, folds, alpha)
    lines.append(
        f"  {'every family can reach' if ok else 'not every family can reach'} α = {alpha:g}; "
        "smallest detectable effects depend on the fold-to-fold spread, reported after the run"
    )
    return lines


def describe_plan(config: StudyConfig, out: Path | str, workers: int = 2) -> str:
    """What ``study`` would do: jobs per phase, estimated compute, power and warnings."""
    plan = plan_study(config, Path(out))
    head = (
        f"study {config.name}: {len(config.datasets)} dataset(s) × {len(config.sources)} "
        f"source(s) × {len(config.n_levels)} n levels {config.n_levels} × "
        f"{len(config.folds)} fold(s) × {len(config.seeds)} seed(s) → {out}"
    )
    lines = [head, "plan (nothing is run):", *_compute_lines(plan, config, workers)]
    lines += ["power (statistics design " + config.stats.design + "):", *_power_lines(config)]
    lines += [f"warning: {w}" for w in design_warnings(config)]
    return "\n".join(lines)
