"""Briefly trained StyleGAN2 runs on the toy store, shared by the stage tests (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthaug.gan.train import train
from synthaug.generator import TrainRequest


@pytest.fixture(scope="session")
def runs(toy_store, tmp_path_factory) -> dict[str, Path]:
    """One run per variant on fold 0 with two snapshots each (copy before changing one)."""
    root = tmp_path_factory.mktemp("stage_runs")
    out = {}
    for variant in ("joint", "mask", "conditional"):
        out[variant] = train(
            TrainRequest(
                store=str(toy_store.path),
                fold=0,
                variant=variant,
                preset="cpu-micro",
                kimg=0.032,
                snapshot_kimg=0.016,
                out=str(root / variant),
            )
        )
    return out


@pytest.fixture(scope="session")
def diffusion_runs(toy_store, tmp_path_factory) -> dict[str, Path]:
    """A diffusion painter and joint model on fold 0 (read-only)."""
    from synthaug.diffusion.train import train as train_diffusion

    root = tmp_path_factory.mktemp("diffusion_runs")
    return {
        variant: train_diffusion(
            TrainRequest(str(toy_store.path), 0, variant, str(root / variant), "cpu-micro", 0.05)
        )
        for variant in ("painter", "joint")
    }
