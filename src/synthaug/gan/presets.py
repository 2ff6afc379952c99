"""StyleGAN2 presets: network widths and optimisation settings per hardware budget."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from synthaug.errors import SynthaugError
from synthaug.generator import PresetRegistry


@dataclass(frozen=True)
class GanPreset:
    """Network widths and optimisation settings of a StyleGAN2 training run.

    Widths per resolution r are min(channel_base // r, channel_max). ``r1_gamma`` None means
    the default 0.0002 · resolution² / batch. ADA adjusts p by ``ada_kimg``-thousand images per
    unit step, so small CPU runs use a much faster speed than the paper's 500. ``ada_p_init``
    is p at the start (ADA moves it from there); ``cutout`` adds DiffAugment's cutout (a
    zeroed square, half the image side) to the augmentations with that strength (0 = off).
    ``variant_settings`` gives a variant its own values of any field (``for_variant``), e.g.
    ``{"joint": {"channel_base": 2048}, "mask": {"d_channel_base": 512}}``.

    The small-data options (each off at its default; ``docs/time_to_quality.md`` compares them
    at equal CPU time):

    * ``lecam_weight``: LeCam regularisation (Tseng et al. 2021) of D's logits towards EMAs
      (decay ``lecam_decay``) of the other side's logits.
    * ``d_lr_scale``: D's learning rate is ``lr * d_lr_scale``.
    * ``d_channel_base``: D's own ``channel_base`` (a smaller or larger D than G).
    * ``augment_policy``: ``"ada"`` (the ADA op set, p tuned from ``ada_p_init``) or
      ``"diffaugment"`` (translation + cutout on image and mask together, brightness/contrast
      on modalities only, at the fixed probability ``augment_p`` from step 0).
    * ``ema_run_fraction``: G_ema's half-life is this fraction of the run's length (kimg),
      instead of ``ema_kimg``.
    * ``d_architecture``: ``"resnet"`` (StyleGAN2's) or ``"oasis"`` (conditional only: a
      per-pixel (K+1)-class segmentation D, Schönfeld et al. 2021, with LabelMix weighted by
      ``labelmix_weight``).
    * ``collapse_patience``: stop training after this many consecutive snapshots whose fixed
      grid samples spread less than ``quality``'s collapse threshold in pixel / mask space
      (0 = never stop).
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
    variant_settings: dict[str, dict] = field(default_factory=dict)
    lecam_weight: float = 0.0
    lecam_decay: float = 0.99
    d_lr_scale: float = 1.0
    d_channel_base: int | None = None
    augment_policy: str = "ada"
    augment_p: float = 1.0
    ema_run_fraction: float | None = None
    d_architecture: str = "resnet"
    labelmix_weight: float = 10.0
    collapse_patience: int = 0

    def for_variant(self, variant: str) -> GanPreset:
        """The preset a ``variant`` trains with: its own settings applied where it has some."""
        return replace(self, **self.variant_settings.get(variant, {}), variant_settings={})

    def check(self) -> GanPreset:
        """Itself, or a ``SynthaugError`` naming the first setting out of range."""
        problems = {
            "augment_policy": self.augment_policy not in AUGMENT_POLICIES,
            "d_architecture": self.d_architecture not in D_ARCHITECTURES,
            "augment_p": not 0.0 <= self.augment_p <= 1.0,
            "lecam_weight": self.lecam_weight < 0,
            "lecam_decay": not 0.0 <= self.lecam_decay < 1.0,
            "d_lr_scale": self.d_lr_scale <= 0,
            "d_channel_base": self.d_channel_base is not None and self.d_channel_base <= 0,
            "ema_run_fraction": self.ema_run_fraction is not None and self.ema_run_fraction <= 0,
            "labelmix_weight": self.labelmix_weight < 0,
            "collapse_patience": self.collapse_patience < 0,
        }
        for name, bad in problems.items():
            if bad:
                raise SynthaugError(
                    f"preset {self.name}: {name}={getattr(self, name)!r} is out of range"
                )
        return self

    def d_base(self) -> int:
        """The discriminator's channel_base."""
        return self.d_channel_base or self.channel_base

    def gamma(self) -> float:
        if self.r1_gamma is not None:
            return self.r1_gamma
        return 0.0002 * self.resolution**2 / self.batch


AUGMENT_POLICIES = ("ada", "diffaugment")
D_ARCHITECTURES = ("resnet", "oasis")

GAN_PRESETS: PresetRegistry[GanPreset] = PresetRegistry(
    "StyleGAN2",
    (
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
        # The mask generator's D is half as wide again as its G (d_channel_base 512): at equal
        # CPU time its masks reached FID 2.8x real at 2 minutes and 1.6x at 6 (full-width D:
        # 9.9x and 4.9x) with precision 0.75x, and it trains 1.2x faster. The same cut hurt
        # the joint generator (off the data by 5 kimg). LeCam (0.3), DiffAugment at a fixed
        # p = 1 and a longer G EMA lost to these defaults (docs/time_to_quality.md).
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
            variant_settings={"joint": {"channel_base": 2048}, "mask": {"d_channel_base": 512}},
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
            variant_settings={"joint": {"channel_base": 4096}, "mask": {"d_channel_base": 1024}},
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
            # Carried from cpu-tiny because it does not depend on resolution: the mask D at
            # half its G's channel_base (a capacity ratio against a small dataset). cpu-tiny's
            # batch, widths and ADA speed are CPU-budget choices and are not carried.
            variant_settings={"mask": {"d_channel_base": 8192}},
        ),
    ),
    retired=("variant_channel_base",),
)


def gan_preset(name: str) -> GanPreset:
    return GAN_PRESETS.named(name)
