"""A diffusion run: its folder layout and what its run.json implies (preset, spec, denoiser).

The folder is the lifecycle's (``synthaug.lifecycle``); a snapshot ``snapshots/ema-N.pt``
holds the EMA denoiser's weights, ``grids/samples-N.png`` its uncurated samples.
"""

from __future__ import annotations

from pathlib import Path

from synthaug.diffusion.networks import DiffusionSpec, build_denoiser
from synthaug.diffusion.presets import DIFFUSION_PRESETS, DiffusionPreset
from synthaug.generator import RunLayout, RunMeta

FAMILY = "diffusion"
LAYOUT = RunLayout(Path(), snapshot_prefix="ema")


def layout(run: Path | str) -> RunLayout:
    return LAYOUT.at(run)


def read_meta(run: Path | str) -> RunMeta:
    return RunMeta.read(run, FAMILY)


def preset_of(meta: RunMeta) -> DiffusionPreset:
    return DIFFUSION_PRESETS.from_record(meta.preset)


def spec_of(meta: RunMeta) -> DiffusionSpec:
    return DiffusionSpec(meta.variant, len(meta.modalities), len(meta.labels))


def build(meta: RunMeta):
    """The run's denoiser, untrained."""
    return build_denoiser(preset_of(meta), spec_of(meta))
