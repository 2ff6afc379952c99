"""Diffusion as a generator family (``synthaug.generator.GeneratorFamily``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthaug.diffusion.run import (
    FAMILY,
    SUMMARY,
    DiffusionRunInfo,
    list_snapshots,
    snapshot_nimg,
)
from synthaug.diffusion.sample import denoise, variant_outputs
from synthaug.diffusion.train import train
from synthaug.errors import SynthaugError
from synthaug.generator import (
    RunDescription,
    Snapshot,
    TrainingHealth,
    TrainRequest,
    run_family,
)
from synthaug.torch_io import load_torch


class DiffusionSampler:
    """A diffusion snapshot's EMA denoiser behind ``synthaug.generator.Sampler``."""

    def __init__(self, info: DiffusionRunInfo, snapshot: Path) -> None:
        state = load_torch(snapshot)
        if state["meta"].get("variant") != info.variant:
            raise SynthaugError(f"{snapshot}: not a snapshot of this {info.variant} run")
        self.info, self.snapshot = info, snapshot
        self.model = info.build()
        try:
            self.model.load_state_dict(state["ema"])
        except (RuntimeError, KeyError) as exc:
            raise SynthaugError(
                f"{snapshot}: weights do not fit the run's denoiser ({str(exc)[:160]})"
            ) from exc
        self.model.eval().requires_grad_(False)
        self.variant = info.variant
        self.outputs = variant_outputs(info.variant)
        self.preset = info.diffusion_preset()
        self.precision = self.preset.precision

    def sample(
        self, count: int, seed: int, masks: np.ndarray | None = None, truncation: float = 1.0
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        images, labels = denoise(
            self.model, self.info.spec, self.preset, count, seed, masks, precision=self.precision
        )
        return images.numpy(), None if labels is None else labels.numpy()


class DiffusionFamily:
    """Mask-conditional (painter) and joint diffusion models on MONAI's generative parts."""

    name = FAMILY
    variants = ("painter", "joint")

    def owns(self, run: Path) -> bool:
        return run_family(run) == FAMILY

    def train(self, request: TrainRequest) -> Path:
        return train(request)

    def describe(self, run: Path) -> RunDescription:
        info = DiffusionRunInfo.read(run)
        return RunDescription.of(info, FAMILY, variant_outputs(info.variant))

    def snapshots(self, run: Path) -> list[Snapshot]:
        return [Snapshot(p, snapshot_nimg(p)) for p in list_snapshots(Path(run))]

    def load(self, run: Path, snapshot: Path | None = None) -> DiffusionSampler:
        info = DiffusionRunInfo.read(run)
        snaps = list_snapshots(Path(run))
        if snapshot is None and not snaps:
            raise SynthaugError(f"{run}: has no snapshots; train it first")
        return DiffusionSampler(info, Path(snapshot) if snapshot is not None else snaps[-1])

    def health(self, run: Path) -> TrainingHealth | None:
        return TrainingHealth.from_summary(Path(run) / SUMMARY)


DIFFUSION = DiffusionFamily()
