"""The study grid as jobs, in phases: train generators (and score their snapshots) →
real-only U-Nets (n = 0) → the reference U-Nets (the pair filter's and the quality judge's,
not study cells) → generate synthetic patients (a filtered source keeps the pairs the filter
U-Net agrees with) → one U-Net per remaining cell → quality of each synthetic set, judged by a
U-Net other than the filter's.

Each job is a thin adapter over one stage function (``synthaug.stages``): it knows its
options, whether its artifact is already there, and how to make it. A study killed at any
point resumes without recomputing a finished job. Paths come from :class:`StudyLayout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from synthaug.generator import TrainRequest
from synthaug.seg.train import MODEL, SegOptions
from synthaug.stages.assess import AssessOptions, assess_synthetic
from synthaug.stages.generate import GenerateOptions, generate
from synthaug.stages.segment import is_finished, train_unet
from synthaug.stages.sources import GeneratorRef, SourceSpec
from synthaug.stages.train_generator import is_scored, is_trained, train_generator
from synthaug.study.config import StudyConfig, StudyDataset
from synthaug.study.layout import BASELINE_SOURCE, StudyLayout


def level_label(level: int | None) -> str:
    """How labels name a real-patients level ("" for the whole fold)."""
    return "" if level is None else f" ({level} real)"


@dataclass(frozen=True)
class GeneratorJob:
    dataset: str
    family: str
    request: TrainRequest
    score: bool = True

    @property
    def label(self) -> str:
        r = self.request
        return f"{self.family} {r.variant} · {self.dataset}{level_label(r.real_patients)} fold {r.fold}"

    def done(self) -> bool:
        run = self.request.out
        return is_trained(run, self.request.kimg) and (not self.score or is_scored(run))

    def run(self) -> None:
        train_generator(self.request, self.family, score=self.score)


@dataclass(frozen=True)
class GenerateJob:
    dataset: str
    fold: int
    options: GenerateOptions

    @property
    def label(self) -> str:
        return f"generate {self.options.source} · {self.dataset} fold {self.fold}"

    def done(self) -> bool:
        return (Path(self.options.out) / "dataset.json").is_file()

    def run(self) -> None:
        generate(self.options)


# Seeds of the reference U-Nets: neither is a study cell (whose seeds are the config's), and
# the judge is not the filter, so a filtered set is not scored by the U-Net that chose it.
REFERENCE_SEEDS = {"filter": 1_000_003, "judge": 2_000_003}


@dataclass(frozen=True)
class SegJob:
    """One cell: a U-Net of (dataset, fold, seed, source, n); ``generator_runs``: the runs of
    the generators its synthetic patients come from (none for n = 0)."""

    dataset: str
    source: str
    n: int
    options: SegOptions
    generator_runs: tuple[str, ...] = ()

    @property
    def fold(self) -> int:
        return self.options.fold

    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def real_patients(self) -> int | None:
        """The real-patients level (None: the whole fold)."""
        return self.options.real_patients

    @property
    def label(self) -> str:
        return (
            f"U-Net {self.source} n={self.n} · {self.dataset}{level_label(self.real_patients)} "
            f"fold {self.fold} seed {self.seed}"
        )

    def done(self) -> bool:
        return is_finished(self.options.out)

    def run(self) -> None:
        train_unet(self.options)


@dataclass(frozen=True)
class QualityJob:
    """Quality of every synthetic set of one (dataset, fold): one job, so the fold's feature
    encoders and reference U-Net are loaded (or trained) once, not once per source."""

    dataset: str
    options: AssessOptions

    @property
    def label(self) -> str:
        return f"quality · {self.dataset} fold {self.options.fold}"

    def done(self) -> bool:
        return all(Path(out).is_file() for out in self.options.outs)

    def run(self) -> None:
        assess_synthetic(self.options)


@dataclass(frozen=True)
class ReferenceJob:
    """A real-only U-Net of a fold that is not a study cell (the filter's or the judge's)."""

    dataset: str
    role: str
    options: SegOptions

    @property
    def label(self) -> str:
        return f"reference U-Net ({self.role}) · {self.dataset} fold {self.options.fold}"

    @property
    def model(self) -> str:
        return str(Path(self.options.out) / MODEL)

    def done(self) -> bool:
        return is_finished(self.options.out)

    def run(self) -> None:
        train_unet(self.options)


Job = GeneratorJob | GenerateJob | SegJob | QualityJob | ReferenceJob


class Phase(Enum):
    """The study's phases in the order they run; the value is the label progress shows."""

    GENERATORS = "train-generators"  # every family's generators, their snapshots scored
    BASELINES = "train-seg (real only)"
    REFERENCES = "reference U-Nets"
    GENERATE = "generate"
    CELLS = "train-seg"
    QUALITY = "quality"

    @property
    def timing_key(self) -> str:
        """Its entry in ``timings.json`` (both U-Net phases add up under "train-seg")."""
        return {Phase.BASELINES: "train-seg", Phase.REFERENCES: "reference"}.get(self, self.value)

    def __str__(self) -> str:
        return self.value


@dataclass
class Plan:
    generators: list[GeneratorJob]
    baselines: list[SegJob]  # n = 0: real only
    references: list[ReferenceJob]
    generations: list[GenerateJob]
    cells: list[SegJob]  # n > 0
    qualities: list[QualityJob]

    @property
    def all_cells(self) -> list[SegJob]:
        return self.baselines + self.cells

    def phases(self) -> list[tuple[Phase, list]]:
        """(phase, jobs) in the order they must run."""
        jobs = {
            Phase.GENERATORS: self.generators, Phase.BASELINES: self.baselines,
            Phase.REFERENCES: self.references, Phase.GENERATE: self.generations,
            Phase.CELLS: self.cells, Phase.QUALITY: self.qualities,
        }  # fmt: skip
        return [(phase, jobs[phase]) for phase in Phase]


class _Planner:
    """Builds the jobs of one (dataset, fold)."""

    def __init__(self, config: StudyConfig, layout: StudyLayout) -> None:
        self.config, self.layout = config, layout

    def generator(
        self, ds: StudyDataset, fold: int, ref: GeneratorRef, level: int | None
    ) -> GeneratorJob:
        settings = self.config.generator_settings(ref)
        request = TrainRequest(
            store=ds.store,
            fold=fold,
            variant=ref.variant,
            out=str(self.layout.generator_run(ds.name, fold, ref, level)),
            real_patients=level,
            preset=settings.preset,
            kimg=settings.kimg,
            seed=settings.seed,
            resume=True,
            snapshot_kimg=settings.snapshot_kimg,
            sample_steps=settings.sample_steps,
            precision=settings.precision,
        )
        return GeneratorJob(ds.name, ref.family, request, self.config.quality.enabled)

    def _seg_options(
        self, ds: StudyDataset, fold: int, seed: int, out: Path, level: int | None, **extra
    ) -> SegOptions:
        return SegOptions(
            store=ds.store, fold=fold, out=str(out), seed=seed, preset=self.config.seg.preset,
            real_patients=level,
            resume=True, max_steps=self.config.seg.max_steps,
            synthetic_fraction=self.config.seg.synthetic_fraction,
            nsd_tolerance=self.config.seg.nsd_tolerance, precision=self.config.seg.precision,
            device=self.config.seg.device, **extra,
        )  # fmt: skip

    def seg(
        self, ds: StudyDataset, fold: int, seed: int, source: SourceSpec | None, n: int,
        level: int | None,
    ) -> SegJob:  # fmt: skip
        out = self.layout.cell(ds.name, fold, seed, source, n, level)
        if source is None:
            options = self._seg_options(ds, fold, seed, out, level)
            return SegJob(ds.name, BASELINE_SOURCE, n, options)
        synthetic = str(self.layout.synthetic(ds.name, fold, source, level))
        options = self._seg_options(ds, fold, seed, out, level, synthetic=synthetic, n_patients=n)
        runs = tuple(
            str(self.layout.generator_run(ds.name, fold, g, level)) for g in source.generators
        )
        return SegJob(ds.name, source.name, n, options, runs)

    def reference(self, ds: StudyDataset, fold: int, role: str, level: int | None) -> ReferenceJob:
        out = self.layout.reference(ds.name, fold, role, level)
        options = self._seg_options(ds, fold, REFERENCE_SEEDS[role], out, level)
        return ReferenceJob(ds.name, role, options)

    def generation(
        self, ds: StudyDataset, fold: int, source: SourceSpec, level: int | None
    ) -> GenerateJob:
        reference = self.layout.reference(ds.name, fold, "filter", level) / MODEL
        runs = [self.layout.generator_run(ds.name, fold, g, level) for g in source.generators]
        options = GenerateOptions(
            run=str(runs[-1]),
            source=source.base,
            patients=self.config.max_n,
            out=str(self.layout.synthetic(ds.name, fold, source, level)),
            mask_run=str(runs[0]) if len(runs) > 1 else None,
            seed=self.config.generate.seed,
            truncation=float(self.config.generate.truncation),
            filter=None
            if source.min_consistency is None
            else f"consistency>={source.min_consistency:g}",
            reference_unet=str(reference),
            unet_preset=self.config.seg.preset,
        )
        return GenerateJob(ds.name, fold, options)

    def quality(self, ds: StudyDataset, fold: int, level: int | None) -> QualityJob:
        specs = self.config.source_specs()
        tag = {} if level is None else {"real_patients": level}
        options = AssessOptions(
            store=ds.store,
            fold=fold,
            synthetic=tuple(str(self.layout.synthetic(ds.name, fold, s, level)) for s in specs),
            outs=tuple(str(self.layout.quality(ds.name, fold, s, level)) for s in specs),
            reference_unet=str(self.layout.reference(ds.name, fold, "judge", level) / MODEL),
            unet_preset=self.config.seg.preset,
            skip_existing=True,
            tags=tuple({"dataset": ds.name, "source": s.name, **tag} for s in specs),
        )
        return QualityJob(ds.name, options)


def plan_study(config: StudyConfig, root: Path | StudyLayout) -> Plan:
    """Every job of the study, in dependency order within each phase."""
    layout = root if isinstance(root, StudyLayout) else StudyLayout(Path(root))
    planner = _Planner(config, layout)
    plan = Plan([], [], [], [], [], [])
    for ds in config.datasets:
        for fold in config.folds:
            for level in config.levels(ds):
                _plan_fold(plan, planner, config, ds, fold, level)
    # Side by side, two generators of one fold would both train the fold's feature encoder
    # for their snapshot scores (cached, but not yet there): start different folds together.
    plan.generators = interleave(
        plan.generators, lambda job: (job.dataset, job.request.fold, job.request.real_patients)
    )
    return plan


def _plan_fold(
    plan: Plan, planner: _Planner, config: StudyConfig, ds: StudyDataset, fold: int,
    level: int | None,
) -> None:  # fmt: skip
    """The jobs of one (dataset, fold, real-patients level): its generators are trained on
    the level's patients, its U-Nets and references too."""
    plan.generators += [planner.generator(ds, fold, g, level) for g in config.generators()]
    plan.baselines += [planner.seg(ds, fold, seed, None, 0, level) for seed in config.seeds]
    if config.max_n == 0:
        return
    specs = config.source_specs()
    if any(s.min_consistency is not None for s in specs):
        plan.references.append(planner.reference(ds, fold, "filter", level))
    if config.quality.enabled:
        plan.references.append(planner.reference(ds, fold, "judge", level))
    for spec in specs:
        plan.generations.append(planner.generation(ds, fold, spec, level))
        plan.cells += [
            planner.seg(ds, fold, seed, spec, n, level)
            for seed in config.seeds
            for n in config.n_levels[1:]
        ]
    if config.quality.enabled:
        plan.qualities.append(planner.quality(ds, fold, level))


def interleave(jobs: list, key) -> list:
    """``jobs`` reordered round-robin over their ``key`` groups (each group's order kept), so
    that neighbours belong to different groups where there are several."""
    groups: dict = {}
    for job in jobs:
        groups.setdefault(key(job), []).append(job)
    queues = list(groups.values())
    ordered = []
    while queues:
        ordered += [queue.pop(0) for queue in queues]
        queues = [queue for queue in queues if queue]
    return ordered
