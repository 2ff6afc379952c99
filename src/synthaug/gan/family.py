"""StyleGAN2 as a generator family (``synthaug.generator.GeneratorFamily``)."""

from __future__ import annotations

import json
from pathlib import Path

from synthaug.gan.networks import VARIANTS
from synthaug.gan.presets import GAN_PRESETS
from synthaug.gan.run import FAMILY, layout, read_meta
from synthaug.gan.sample import StyleGAN2Sampler, load_generator, variant_outputs
from synthaug.gan.train import train
from synthaug.generator import (
    RUN_META,
    GeneratorRef,
    RunDescription,
    Snapshot,
    SourceKind,
    TrainedSettings,
    TrainingHealth,
    TrainRequest,
    measured_seconds,
)

# Measured on the 2-core development machine with the study's executor (two one-thread
# workers side by side), demo and demo --quick of 2026-11-30: training images per second
# per worker and seconds of snapshot scoring per run (study --dry-run's estimate).
IMG_PER_S = {
    ("cpu-micro", "joint"): 150.0,
    ("cpu-micro", "mask"): 150.0,
    ("cpu-micro", "conditional"): 120.0,
    ("cpu-tiny", "joint"): 20.0,
    ("cpu-tiny", "mask"): 30.0,
    ("cpu-tiny", "conditional"): 30.0,
}
SCORING_S = {"cpu-micro": 3.0, "cpu-tiny": 18.0}


class StyleGAN2Family:
    """Joint, mask and conditional StyleGAN2 generators."""

    name = FAMILY
    variants = VARIANTS
    section = "gan"
    settings = TrainedSettings
    presets = GAN_PRESETS
    default_preset = "cpu-tiny"
    options = frozenset({"snapshot_kimg", "precision"})
    sources = (
        SourceKind("joint", GeneratorRef(FAMILY, "joint"), "own",
                   "StyleGAN2 generating image and mask together (the paper's B-SG)"),
        SourceKind("mask-conditional", GeneratorRef(FAMILY, "conditional"), "generated",
                   "StyleGAN2 masks painted by the mask-conditional StyleGAN2"),
        SourceKind("real-mask-conditional", GeneratorRef(FAMILY, "conditional"), "real",
                   "the fold's real training masks painted by the mask-conditional StyleGAN2"),
        SourceKind("augmented-mask-conditional", GeneratorRef(FAMILY, "conditional"),
                   "augmented", "the fold's real training masks, deformed (seeded affine + "
                   "elastic, no class lost), painted by the mask-conditional StyleGAN2"),
    )  # fmt: skip

    def estimate_seconds(self, request: TrainRequest, score: bool) -> float | None:
        return measured_seconds(IMG_PER_S, SCORING_S, request, score)

    def owns(self, run: Path) -> bool:
        path = Path(run) / RUN_META
        if not path.is_file():
            return False
        try:
            return json.loads(path.read_text()).get("family", FAMILY) == FAMILY
        except json.JSONDecodeError:
            return True  # ours by layout; RunMeta.read names the corrupt file

    def train(self, request: TrainRequest) -> Path:
        return train(request)

    def describe(self, run: Path) -> RunDescription:
        info = read_meta(run)
        return RunDescription.of(info, variant_outputs(info.variant))

    def snapshots(self, run: Path) -> list[Snapshot]:
        return layout(run).snapshots()

    def load(self, run: Path, snapshot: Path | None = None) -> StyleGAN2Sampler:
        return StyleGAN2Sampler(load_generator(run, snapshot))

    def health(self, run: Path) -> TrainingHealth | None:
        return TrainingHealth.of_run(run)


STYLEGAN2 = StyleGAN2Family()
