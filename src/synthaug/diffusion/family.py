"""Diffusion as a generator family (``synthaug.generator.GeneratorFamily``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthaug.diffusion.networks import VARIANTS
from synthaug.diffusion.presets import DIFFUSION_PRESETS
from synthaug.diffusion.run import FAMILY, build, layout, preset_of, read_meta, spec_of
from synthaug.diffusion.sample import denoise, variant_outputs
from synthaug.diffusion.train import train
from synthaug.errors import SynthaugError
from synthaug.generator import (
    GeneratorRef,
    RunDescription,
    RunMeta,
    SampledSettings,
    Snapshot,
    SourceKind,
    TrainingHealth,
    TrainRequest,
    measured_seconds,
    run_family,
)
from synthaug.torch_io import load_torch

# The painter at cpu-tiny in the demo of 2026-12-02 (2 cores, 147 GFLOP/s, bf16): 33 training
# images per second per worker and ~45 s to score its snapshots (223-228 s per 6-kimg run).
IMG_PER_S = {("cpu-tiny", "painter"): 33.0}
SCORING_S = {"cpu-tiny": 45.0}


@dataclass(frozen=True)
class DiffusionSettings(SampledSettings):
    """The study's ``diffusion`` section: as ``gan``'s, 10 kimg by default."""

    kimg: float | dict[str, float] = 10.0


class DiffusionSampler:
    """A diffusion snapshot's EMA denoiser behind ``synthaug.generator.Sampler``."""

    def __init__(self, info: RunMeta, snapshot: Path) -> None:
        state = load_torch(snapshot)
        if state["meta"].get("variant") != info.variant:
            raise SynthaugError(f"{snapshot}: not a snapshot of this {info.variant} run")
        self.info, self.snapshot = info, snapshot
        self.model = build(info)
        try:
            self.model.load_state_dict(state["ema"])
        except (RuntimeError, KeyError) as exc:
            raise SynthaugError(
                f"{snapshot}: weights do not fit the run's denoiser ({str(exc)[:160]})"
            ) from exc
        self.model.eval().requires_grad_(False)
        self.variant = info.variant
        self.outputs = variant_outputs(info.variant)
        self.spec = spec_of(info)
        self.preset = preset_of(info)
        self.precision = self.preset.precision

    def sample(
        self, count: int, seed: int, masks: np.ndarray | None = None, truncation: float = 1.0
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        images, labels = denoise(
            self.model, self.spec, self.preset, count, seed, masks, precision=self.precision
        )
        return images.numpy(), None if labels is None else labels.numpy()


class DiffusionFamily:
    """Mask-conditional (painter) and joint diffusion models on MONAI's generative parts."""

    name = FAMILY
    variants = VARIANTS
    section = "diffusion"
    settings = DiffusionSettings
    presets = DIFFUSION_PRESETS
    default_preset = "cpu-tiny"
    options = frozenset({"snapshot_kimg", "precision", "sample_steps"})
    sources = (
        SourceKind("real-mask-diffusion", GeneratorRef(FAMILY, "painter"), "real",
                   "the fold's real training masks painted by the mask-conditional diffusion "
                   "model"),
        SourceKind("augmented-mask-diffusion", GeneratorRef(FAMILY, "painter"), "augmented",
                   "the fold's real training masks, deformed (seeded affine + elastic, no "
                   "class lost), painted by the mask-conditional diffusion model"),
        SourceKind("mask-diffusion", GeneratorRef(FAMILY, "painter"), "generated",
                   "StyleGAN2 masks painted by the mask-conditional diffusion model"),
        SourceKind("joint-diffusion", GeneratorRef(FAMILY, "joint"), "own",
                   "a diffusion model denoising image and mask together"),
    )  # fmt: skip

    def estimate_seconds(self, request: TrainRequest, score: bool) -> float | None:
        return measured_seconds(IMG_PER_S, SCORING_S, request, score)

    def owns(self, run: Path) -> bool:
        return run_family(run) == FAMILY

    def train(self, request: TrainRequest) -> Path:
        return train(request)

    def describe(self, run: Path) -> RunDescription:
        info = read_meta(run)
        return RunDescription.of(info, variant_outputs(info.variant))

    def snapshots(self, run: Path) -> list[Snapshot]:
        return layout(run).snapshots()

    def load(self, run: Path, snapshot: Path | None = None) -> DiffusionSampler:
        info = read_meta(run)
        snaps = layout(run).snapshot_files()
        if snapshot is None and not snaps:
            raise SynthaugError(f"{run}: has no snapshots; train it first")
        return DiffusionSampler(info, Path(snapshot) if snapshot is not None else snaps[-1])

    def health(self, run: Path) -> TrainingHealth | None:
        return TrainingHealth.of_run(run)


DIFFUSION = DiffusionFamily()
