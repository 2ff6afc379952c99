"""StyleGAN2 presets: network widths and optimisation settings per hardware budget."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from synthaug.errors import SynthaugError


@dataclass(frozen=True)
class GanPreset:
    """Network widths and optimisation settings of a StyleGAN2 training run.

    Widths per resolution r are min(channel_base // r, channel_max). ``r1_gamma`` None means
    the default 0.0002 · resolution² / batch. ADA adjusts p by ``ada_kimg``-thousand images per
    unit step, so small CPU runs use a much faster speed than the paper's 500. ``ada_p_init``
    is p at the start (ADA moves it from there); ``cutout`` adds DiffAugment's cutout (a
    zeroed square, half the image side) to the augmentations with that strength (0 = off).
    ``variant_channel_base`` gives a variant its own ``channel_base`` (``for_variant``).
    """

    name: str
    resolution: int
    channel_base: int
    channel_max: int
    z_dim: int
    w_dim: int
    mapping_layers: int
    batch: int
    lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float | None = None
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    style_mixing: float = 0.9
    mbstd_group: int = 4
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    ada_interval: int = 4
    ada_p_init: float = 0.0
    cutout: float = 0.0
    cond_embed_dim: int = 64
    snapshot_kimg: float = 4.0
    precision: str = "fp32"
    variant_channel_base: dict[str, int] = field(default_factory=dict)

    def for_variant(self, variant: str) -> GanPreset:
        """The preset a ``variant`` trains with: its own channel_base where one is given."""
        base = self.variant_channel_base.get(variant)
        if base is None:
            return self
        return replace(self, channel_base=base, variant_channel_base={})

    def gamma(self) -> float:
        if self.r1_gamma is not None:
            return self.r1_gamma
        return 0.0002 * self.resolution**2 / self.batch


GAN_PRESETS: dict[str, GanPreset] = {
    p.name: p
    for p in (
        # Smoke tests and quick checks of a pipeline on 32×32 stores; samples are not meant
        # to be good.
        GanPreset(
            name="cpu-micro",
            resolution=32,
            channel_base=512,
            channel_max=32,
            z_dim=32,
            w_dim=32,
            mapping_layers=2,
            batch=8,
            lr=0.002,
            ada_kimg=5.0,
            snapshot_kimg=0.25,
            cond_embed_dim=16,
        ),
        # Batch 4 and, for the mask and conditional generators, half the StyleGAN2 benchmark
        # widths at 32-64 px: ~1.4x the images and ~2.8x the optimiser steps per CPU second,
        # which is what short runs are short of (the conditional generator's mask-image
        # consistency rose from 0.41 to 0.88 of real). The joint generator keeps the full
        # widths: narrowed, its discriminator won and it collapsed within 2-8 kimg, while at
        # full width it kept improving (docs/gan_tuning.md).
        GanPreset(
            name="cpu-tiny",
            resolution=64,
            channel_base=1024,
            channel_max=128,
            z_dim=256,
            w_dim=256,
            mapping_layers=2,
            batch=4,
            ada_kimg=20.0,
            snapshot_kimg=1.0,
            variant_channel_base={"joint": 2048},
        ),
        # cpu-tiny's choices carried to 128 px (same widths at 64 px and below); its quality
        # was not measured here.
        GanPreset(
            name="cpu-small",
            resolution=128,
            channel_base=2048,
            channel_max=128,
            z_dim=256,
            w_dim=256,
            mapping_layers=2,
            batch=4,
            ada_kimg=50.0,
            snapshot_kimg=2.0,
            variant_channel_base={"joint": 4096},
        ),
        GanPreset(
            name="gpu-256",
            resolution=256,
            channel_base=16384,
            channel_max=512,
            z_dim=512,
            w_dim=512,
            mapping_layers=8,
            batch=64,
            mbstd_group=8,
            ema_kimg=20.0,
            ada_kimg=500.0,
            snapshot_kimg=50.0,
            cond_embed_dim=128,
        ),
    )
}


def gan_preset(name: str) -> GanPreset:
    try:
        return GAN_PRESETS[name]
    except KeyError:
        raise SynthaugError(
            f"preset: unknown preset {name!r}; choose one of {', '.join(GAN_PRESETS)}"
        ) from None
