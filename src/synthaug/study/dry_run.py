"""``synthaug study --dry-run``: the plan of a study — its jobs, their estimated compute and
what its statistics can show — without running anything."""

from __future__ import annotations

import math
from pathlib import Path

from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.seg.presets import seg_preset
from synthaug.stages.families import family
from synthaug.stats.analysis import design_floors
from synthaug.stats.core import friedman_floor, min_detectable_effect, wilcoxon_floor
from synthaug.study.config import StudyConfig, design_warnings, kfold_rho
from synthaug.study.grid import GeneratorJob, Plan, QualityJob, SegJob, plan_study

# Measured on the 2-core development machine with the study's executor (two one-thread
# workers side by side), demo and demo --quick of 2026-11-30: U-Net seconds per training step
# (validation included) plus a fixed cost per cell, seconds per quality job. A generator's
# cost is its family's estimate (``GeneratorFamily.estimate_seconds``). GPU presets have
# never run here: their cost is not estimated.
SEG_S_PER_STEP = {"cpu-micro": 0.004, "cpu-tiny": 0.037}  # validation included
# Where early stopping ends a U-Net (benchmarks/seg_budget.py: cpu-tiny real-only phantom runs
# stopped at 600-1500 steps); the step cap is a safety net, not the expected length.
SEG_TYPICAL_STEPS = {"cpu-micro": 120, "cpu-tiny": 1100}
SEG_S_PER_CELL = {"cpu-micro": 0.5, "cpu-tiny": 2.0}
QUALITY_S = {"cpu-micro": 12.0, "cpu-tiny": 30.0}
GENERATE_S = 1.5


def _job_seconds(job, config: StudyConfig) -> float | None:
    """Estimated seconds of one job for one worker, None where the preset was never measured."""
    if isinstance(job, GeneratorJob):
        return family(job.family).estimate_seconds(job.request, job.score)
    if isinstance(job, SegJob):
        preset = job.options.preset
        if preset not in SEG_S_PER_STEP:
            return None
        cap = job.options.max_steps or seg_preset(preset).max_steps
        steps = min(cap, SEG_TYPICAL_STEPS[preset])
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
        lines.append(f"  {phase.value:<24} {len(jobs):>5} jobs   ~{wall / 60:6.1f} min{extra}")
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
    pairs = (
        f"{folds} pairs ({folds // config.repeats} folds × {config.repeats} repeats, which "
        "share patients: the corrected t-test allows for it, this floor does not"
        if config.repeats > 1
        else f"{folds} independent pairs (folds"
    )
    lines = [
        f"  each n against real-only, per dataset: {pairs}; the "
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
    ok = not design_floors(datasets, len(config.sources), levels, folds, alpha, kfold_rho(config))
    lines.append(
        f"  {'every family can reach' if ok else 'not every family can reach'} α = {alpha:g}; "
        "smallest detectable effects depend on the fold-to-fold spread, reported after the run"
    )
    return lines


# Designs the power table compares with the planned one: (folds per repeat k, repeats R).
ALTERNATIVE_DESIGNS = ((5, 1), (5, 2), (5, 3), (5, 5), (10, 1))


def _stores_shape(config: StudyConfig) -> tuple[int | None, int | None]:
    """k of the stores' k-fold split and their fewest patient groups (None: unreadable)."""
    ks, units = set(), []
    for ds in config.datasets:
        try:
            store = SliceStore(ds.store)
        except SynthaugError:
            return None, None
        ks.add(store.folds_per_repeat)
        units.append(len(set(store.groups.values())))
    return (ks.pop() if len(ks) == 1 else None), (min(units) if units else None)


def _repeat_lines(config: StudyConfig) -> list[str]:
    """Power of the planned design and of alternatives under the Bouckaert–Frank corrected
    t-test: J = k·R paired fold differences, correction √(1/J + ρ) with ρ = n_test/n_train
    ≈ 1/(k−1), and the minimum detectable mean Dice difference in units of σ."""
    alpha = config.stats.alpha
    store_k, units = _stores_shape(config)
    planned_k = store_k or max(2, len(config.folds) // config.repeats)
    planned_j = len(config.folds)
    planned = f"{planned_k} × {config.repeats}"
    if planned_j != planned_k * config.repeats:  # a list of some splits of the stores
        planned = f"{planned_j} of {planned}"
    rows = [(planned, planned_k, planned_j, "planned")]
    rows += [
        (f"{k} × {r}", k, k * r, "")
        for k, r in ALTERNATIVE_DESIGNS
        if (k, r) != (planned_k, config.repeats) or planned_j != k * r
    ]
    lines = [
        f"  repeated k-fold (Bouckaert–Frank): MDE = smallest mean Dice difference found with "
        f"80% power at α = {alpha:g} (one comparison; Holm over many raises it), in σ = "
        "fold-to-fold SD of the differences; "
        "every split trains its own generators and U-Nets (compute ∝ J)",
        f"    {'folds × repeats':<16}{'J':>4}{'ρ':>8}{'√(1/J+ρ)':>10}{'MDE':>9}",
    ]
    for label, k, j, note in rows:
        rho = 1.0 / (k - 1)
        mde = min_detectable_effect(sd=1.0, folds=j, rho=rho, alpha=alpha)
        shown = "—" if math.isnan(mde) else f"{mde:.2f} σ"  # NaN: fewer than 2 pairs
        if units is not None and k > units:
            shown, note = "—", f"needs {k} patients, a store has {units}"
        factor = (1.0 / j + rho) ** 0.5
        tail = f"   ({note})" if note else ""
        lines.append(f"    {label:<16}{j:>4}{rho:>8.3f}{factor:>10.3f}{shown:>9}{tail}")
    lines.append(
        "    repeats help less than more folds: they re-split the same patients, so J grows but "
        "ρ (≈ 1/(k−1)) does not shrink; more folds lower both"
    )
    return lines


def describe_plan(config: StudyConfig, out: Path | str, workers: int = 2) -> str:
    """What ``study`` would do: jobs per phase, estimated compute, power and warnings."""
    plan = plan_study(config, Path(out))
    repeats = f" ({len(config.folds) // config.repeats} × {config.repeats} repeats)"
    repeats = repeats if config.repeats > 1 else ""
    head = (
        f"study {config.name}: {len(config.datasets)} dataset(s) × {len(config.sources)} "
        f"source(s) × {len(config.n_levels)} n levels {config.n_levels} × "
        f"{len(config.folds)} fold(s){repeats} × {len(config.seeds)} seed(s) → {out}"
    )
    lines = [head, "plan (nothing is run):", *_compute_lines(plan, config, workers)]
    lines += ["power (statistics design " + config.stats.design + "):", *_power_lines(config)]
    lines += _repeat_lines(config)
    lines += [f"warning: {w}" for w in design_warnings(config)]
    return "\n".join(lines)
