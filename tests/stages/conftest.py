"""Briefly trained StyleGAN2 runs on the toy store, shared by the stage tests (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthaug.gan.train import TrainOptions, train


@pytest.fixture(scope="session")
def runs(toy_store, tmp_path_factory) -> dict[str, Path]:
    """One run per variant on fold 0 with two snapshots each (copy before changing one)."""
    root = tmp_path_factory.mktemp("stage_runs")
    out = {}
    for variant in ("joint", "mask", "conditional"):
        out[variant] = train(
            TrainOptions(
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
