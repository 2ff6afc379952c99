"""A StyleGAN2 run: its folder layout and what its run.json implies (preset, spec, networks).

The folder is the lifecycle's (``synthaug.lifecycle``); a snapshot ``snapshots/gema-N.pt``
holds G_ema's weights, ``grids/fakes-N.png`` its uncurated samples and ``grids/reals.png``
the training slices they are compared with.
"""

from __future__ import annotations

from pathlib import Path

from synthaug.gan.networks import (
    Discriminator,
    Generator,
    SegmentationDiscriminator,
    VariantSpec,
    build_networks,
)
from synthaug.gan.presets import GAN_PRESETS, GanPreset
from synthaug.generator import RunLayout, RunMeta

FAMILY = "stylegan2"
LAYOUT = RunLayout(Path(), snapshot_prefix="gema", grid_prefix="fakes")


def layout(run: Path | str) -> RunLayout:
    return LAYOUT.at(run)


def read_meta(run: Path | str) -> RunMeta:
    return RunMeta.read(run, FAMILY)


def preset_of(meta: RunMeta) -> GanPreset:
    return GAN_PRESETS.from_record(meta.preset)


def spec_of(meta: RunMeta) -> VariantSpec:
    return VariantSpec(meta.variant, len(meta.modalities), len(meta.labels))


def build(meta: RunMeta) -> tuple[Generator, Discriminator | SegmentationDiscriminator]:
    """The run's generator and discriminator, untrained."""
    p = preset_of(meta)
    return build_networks(
        meta.variant,
        meta.resolution,
        len(meta.modalities),
        len(meta.labels),
        z_dim=p.z_dim,
        w_dim=p.w_dim,
        mapping_layers=p.mapping_layers,
        channel_base=p.channel_base,
        channel_max=p.channel_max,
        mbstd_group=p.mbstd_group,
        cond_embed_dim=p.cond_embed_dim,
        d_channel_base=p.d_channel_base,
        d_architecture=p.d_architecture,
    )
