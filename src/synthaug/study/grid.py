"""The study grid as jobs: train GANs → generate synthetic patients → train one U-Net per cell.

Each job knows its artifact and whether it is already done, so a study killed at any point
resumes without recomputing a finished job. Paths inside a study folder::

    gans/DATASET/foldF/VARIANT/                 GAN run (train-gan)
    synthetic/DATASET/foldF/SOURCE/             max-n synthetic patients (generate)
    cells/DATASET/foldF/seedS/SOURCE-nN/        U-Net run (train-seg); n = 0 uses SOURCE "none"
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from synthaug.config import SOURCE_VARIANTS
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

    @property
    def label(self) -> str:
        return f"gan {self.dataset} fold {self.fold} {self.variant}"

    def done(self) -> bool:
        summary = Path(self.out) / "summary.json"
        return summary.is_file() and json.loads(summary.read_text())["nimg"] >= self.kimg * 1000

    def run(self) -> None:
        from synthaug.gan.train import TrainOptions, train

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
            )
        )


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

    @property
    def label(self) -> str:
        return f"generate {self.dataset} fold {self.fold} {self.source}"

    def done(self) -> bool:
        return (Path(self.out) / "dataset.json").is_file()

    def run(self) -> None:
        from synthaug.gan.sample import generate

        generate(
            self.run_dir,
            self.source,
            self.patients,
            self.out,
            seed=self.seed,
            mask_run=self.mask_run,
            truncation_psi=self.truncation,
        )


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


Job = GanJob | GenerateJob | SegJob


@dataclass
class Plan:
    gans: list[GanJob]
    generations: list[GenerateJob]
    cells: list[SegJob]


def plan_study(config: StudyConfig, root: Path) -> Plan:
    """Every job of the study, in dependency order within each phase."""
    gan_dir = {}
    gans, generations, cells = [], [], []
    for ds in config.datasets:
        for fold in config.folds:
            for variant in config.variants():
                out = root / "gans" / ds.name / f"fold{fold}" / variant
                gan_dir[(ds.name, fold, variant)] = str(out)
                gans.append(
                    GanJob(
                        ds.name,
                        ds.store,
                        fold,
                        variant,
                        config.gan["preset"],
                        float(config.gan["kimg"]),
                        int(config.gan.get("seed", 0)),
                        str(out),
                    )
                )
            synthetic: dict[str, str] = {}
            if config.max_n > 0:
                for source in config.sources:
                    image_variant = SOURCE_VARIANTS[source][-1]
                    out = root / "synthetic" / ds.name / f"fold{fold}" / source
                    synthetic[source] = str(out)
                    mask_run = (
                        gan_dir[(ds.name, fold, "mask")] if source == "mask-conditional" else None
                    )
                    generations.append(
                        GenerateJob(
                            ds.name,
                            fold,
                            source,
                            gan_dir[(ds.name, fold, image_variant)],
                            mask_run,
                            config.max_n,
                            int(config.generate["seed"]),
                            float(config.generate["truncation"]),
                            str(out),
                        )
                    )
            for seed in config.seeds:
                base = root / "cells" / ds.name / f"fold{fold}" / f"seed{seed}"
                seg_args = (config.seg["preset"], config.seg.get("max_steps"))
                # n = 0 is trained once per (dataset, fold, seed) and shared by every source.
                cells.append(
                    SegJob(
                        ds.name,
                        ds.store,
                        fold,
                        seed,
                        BASELINE_SOURCE,
                        0,
                        None,
                        *seg_args,
                        str(base / f"{BASELINE_SOURCE}-n0"),
                    )
                )
                for source in config.sources:
                    for n in config.n_levels:
                        if n > 0:
                            cells.append(
                                SegJob(
                                    ds.name,
                                    ds.store,
                                    fold,
                                    seed,
                                    source,
                                    n,
                                    synthetic[source],
                                    *seg_args,
                                    str(base / f"{source}-n{n}"),
                                )
                            )
    return Plan(gans, generations, cells)
