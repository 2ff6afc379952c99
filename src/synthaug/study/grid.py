"""The study grid as jobs, in phases: train GANs (and score their snapshots) → real-only
U-Nets (n = 0) → generate synthetic patients (a filtered source keeps the pairs the real-only
U-Net agrees with) → one U-Net per remaining cell → quality of each synthetic set.

Each job knows its artifact and whether it is already done, so a study killed at any point
resumes without recomputing a finished job. Paths inside a study folder::

    gans/DATASET/foldF/VARIANT/                 GAN run (train-gan; quality.json)
    synthetic/DATASET/foldF/SOURCE/             max-n synthetic patients (generate)
    cells/DATASET/foldF/seedS/SOURCE-nN/        U-Net run (train-seg); n = 0 uses SOURCE "none"
    quality/DATASET/foldF/SOURCE.json           image-quality metrics of a synthetic set

SOURCE folders use the source's slug (``real-mask-conditional.consistency-ge-0.5``); the
results table uses its name (``real-mask-conditional[consistency>=0.5]``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from synthaug.study.config import StudyConfig

BASELINE_SOURCE = "none"


@dataclass(frozen=True)
class GanJob:
    dataset: str
    store: str
    fold: int
    variant: str
    preset: str
    kimg: float
    seed: int
    out: str
    snapshot_kimg: float | None = None
    quality: bool = True

    @property
    def label(self) -> str:
        return f"gan {self.dataset} fold {self.fold} {self.variant}"

    def _trained(self) -> bool:
        summary = Path(self.out) / "summary.json"
        return summary.is_file() and json.loads(summary.read_text())["nimg"] >= self.kimg * 1000

    def _scored(self) -> bool:
        from synthaug.gan.checkpoint import QUALITY, list_snapshots

        path = Path(self.out) / QUALITY
        if not path.is_file():
            return False
        scored = {r["snapshot"] for r in json.loads(path.read_text())["snapshots"]}
        return scored >= {p.name for p in list_snapshots(Path(self.out))}

    def done(self) -> bool:
        return self._trained() and (not self.quality or self._scored())

    def run(self) -> None:
        from synthaug.gan.train import TrainOptions, train

        if not self._trained():
            train(
                TrainOptions(
                    store=self.store,
                    fold=self.fold,
                    variant=self.variant,
                    preset=self.preset,
                    kimg=self.kimg,
                    out=self.out,
                    resume=True,
                    seed=self.seed,
                    snapshot_kimg=self.snapshot_kimg,
                )
            )
        if self.quality:
            from synthaug.quality.snapshots import score_snapshots

            score_snapshots(self.out)


@dataclass(frozen=True)
class GenerateJob:
    dataset: str
    fold: int
    source: str
    run_dir: str
    mask_run: str | None
    patients: int
    seed: int
    truncation: float
    out: str
    min_consistency: float | None = None
    reference_unet: str | None = None  # the real-only U-Net that filters
    unet_preset: str = "cpu-tiny"

    @property
    def label(self) -> str:
        return f"generate {self.dataset} fold {self.fold} {self.source}"

    def done(self) -> bool:
        return (Path(self.out) / "dataset.json").is_file()

    def run(self) -> None:
        from synthaug.config import parse_source
        from synthaug.gan.sample import generate, make_consistency_filter

        keep = None
        if self.min_consistency is not None:
            keep = make_consistency_filter(
                self.run_dir, self.min_consistency, self.reference_unet, self.unet_preset
            )
        generate(
            self.run_dir,
            parse_source(self.source).base,
            self.patients,
            self.out,
            seed=self.seed,
            mask_run=self.mask_run,
            truncation_psi=self.truncation,
            consistency_filter=keep,
        )


@dataclass(frozen=True)
class QualityJob:
    """Quality of every synthetic set of one (dataset, fold): one job, so the fold's feature
    encoders and reference U-Net are loaded (or trained) once, not once per source."""

    dataset: str
    store: str
    fold: int
    sources: tuple[str, ...]
    synthetic: tuple[str, ...]  # per source
    outs: tuple[str, ...]  # per source
    reference_unet: str
    unet_preset: str

    @property
    def label(self) -> str:
        return f"quality {self.dataset} fold {self.fold}"

    def done(self) -> bool:
        return all(Path(out).is_file() for out in self.outs)

    def run(self) -> None:
        from synthaug.atomic import write_json
        from synthaug.data.store import SliceStore
        from synthaug.quality.consistency import load_unet
        from synthaug.quality.evaluate import evaluate_quality, synthetic_arrays

        store = SliceStore(self.store)
        unet = load_unet(self.reference_unet, store, self.unet_preset)
        real_features: dict = {}  # the fold's real features, shared by its sources
        for source, synthetic, out in zip(self.sources, self.synthetic, self.outs, strict=True):
            if Path(out).is_file():
                continue
            images, labels = synthetic_arrays(synthetic, store)
            result = evaluate_quality(
                store,
                self.fold,
                images,
                labels,
                cache_dir=store.cache_dir,
                reference_unet=unet,
                feature_cache=real_features,
            )
            meta = json.loads((Path(synthetic) / "dataset.json").read_text())["synthaug"]
            result.update(
                dataset=self.dataset,
                source=source,
                synthetic=synthetic,
                filter=meta.get("filter"),
                snapshot=meta.get("snapshot"),
            )
            write_json(Path(out), result)


@dataclass(frozen=True)
class SegJob:
    dataset: str
    store: str
    fold: int
    seed: int
    source: str
    n: int
    synthetic: str | None
    preset: str
    max_steps: int | None
    out: str

    @property
    def label(self) -> str:
        return f"seg {self.dataset} fold {self.fold} seed {self.seed} {self.source} n={self.n}"

    def done(self) -> bool:
        return (Path(self.out) / "results.json").is_file()

    def run(self) -> None:
        from synthaug.seg.train import SegOptions, train_seg

        train_seg(
            SegOptions(
                store=self.store,
                fold=self.fold,
                out=self.out,
                seed=self.seed,
                synthetic=self.synthetic,
                n_patients=self.n,
                preset=self.preset,
                resume=True,
                max_steps=self.max_steps,
            )
        )


Job = GanJob | GenerateJob | SegJob | QualityJob


@dataclass
class Plan:
    gans: list[GanJob]
    baselines: list[SegJob]  # n = 0: real only
    generations: list[GenerateJob]
    cells: list[SegJob]  # n > 0
    qualities: list[QualityJob]

    @property
    def all_cells(self) -> list[SegJob]:
        return self.baselines + self.cells

    def phases(self) -> list[tuple[str, list]]:
        """(phase name, jobs) in the order they must run."""
        return [
            ("train-gan", self.gans),
            ("train-seg (real only)", self.baselines),
            ("generate", self.generations),
            ("train-seg", self.cells),
            ("quality", self.qualities),
        ]


def plan_study(config: StudyConfig, root: Path) -> Plan:
    """Every job of the study, in dependency order within each phase."""
    plan = Plan([], [], [], [], [])
    seg_preset, max_steps = config.seg["preset"], config.seg.get("max_steps")
    for ds in config.datasets:
        for fold in config.folds:
            gan_dir = {}
            for variant in config.variants():
                out = root / "gans" / ds.name / f"fold{fold}" / variant
                gan_dir[variant] = str(out)
                plan.gans.append(
                    GanJob(
                        ds.name,
                        ds.store,
                        fold,
                        variant,
                        config.gan["preset"],
                        config.gan_kimg(variant),
                        int(config.gan.get("seed", 0)),
                        str(out),
                        config.gan.get("snapshot_kimg"),
                        bool(config.quality["enabled"]),
                    )
                )
            fold_dir = root / "cells" / ds.name / f"fold{fold}"
            # The real-only U-Net of the first seed filters generated pairs and measures their
            # consistency: trained once per (dataset, fold, seed), shared by every source.
            reference = str(
                fold_dir / f"seed{config.seeds[0]}" / f"{BASELINE_SOURCE}-n0" / "model.pt"
            )
            for seed in config.seeds:
                out = fold_dir / f"seed{seed}" / f"{BASELINE_SOURCE}-n0"
                plan.baselines.append(
                    SegJob(
                        ds.name,
                        ds.store,
                        fold,
                        seed,
                        BASELINE_SOURCE,
                        0,
                        None,
                        seg_preset,
                        max_steps,
                        str(out),
                    )
                )
            if config.max_n == 0:
                continue
            for spec in config.source_specs():
                synthetic = root / "synthetic" / ds.name / f"fold{fold}" / spec.slug
                plan.generations.append(
                    GenerateJob(
                        ds.name,
                        fold,
                        spec.name,
                        gan_dir[spec.variants[-1]],
                        gan_dir["mask"] if spec.base == "mask-conditional" else None,
                        config.max_n,
                        int(config.generate["seed"]),
                        float(config.generate["truncation"]),
                        str(synthetic),
                        spec.min_consistency,
                        reference,
                        seg_preset,
                    )
                )
                for seed in config.seeds:
                    for n in config.n_levels[1:]:
                        out = fold_dir / f"seed{seed}" / f"{spec.slug}-n{n}"
                        plan.cells.append(
                            SegJob(
                                ds.name,
                                ds.store,
                                fold,
                                seed,
                                spec.name,
                                n,
                                str(synthetic),
                                seg_preset,
                                max_steps,
                                str(out),
                            )
                        )
            if config.quality["enabled"]:
                specs = config.source_specs()
                quality_dir = root / "quality" / ds.name / f"fold{fold}"
                plan.qualities.append(
                    QualityJob(
                        ds.name,
                        ds.store,
                        fold,
                        tuple(spec.name for spec in specs),
                        tuple(
                            str(root / "synthetic" / ds.name / f"fold{fold}" / spec.slug)
                            for spec in specs
                        ),
                        tuple(str(quality_dir / f"{spec.slug}.json") for spec in specs),
                        reference,
                        seg_preset,
                    )
                )
    return plan
