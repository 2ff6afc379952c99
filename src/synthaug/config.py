"""Typed configuration: the options of each stage, validated in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from synthaug.errors import SynthaugError

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
NORMALIZATIONS = ("auto", "mr", "ct", "none")


@dataclass
class PrepareOptions:
    """Options of the ``prepare`` stage (dataset on disk → slice store).

    resolution: output slice size in pixels (square).
    axis: slicing axis in RAS terms: axial (z), coronal (y) or sagittal (x).
    normalization: per-modality method, "auto" picks "ct" for modality names containing CT
        and "mr" otherwise; a single entry applies to all channels.
    ct_window: HU range mapped to [-1, 1] for CT channels.
    mr_percentiles: foreground percentiles clipped and mapped to [-1, 1] for MR channels.
    crop: "foreground" crops to the bounding box of non-background voxels before resizing.
    drop_empty: drop slices whose label has no foreground.
    drop_edge: fraction of the kept slices dropped at each end of the slicing axis.
    repair_nonfinite: replace NaN/Inf voxels by the channel's finite minimum instead of failing.
    geometry_tolerance: relative spacing / absolute direction tolerance between image and label.
    """

    resolution: int = 64
    axis: str = "axial"
    folds: int = 5
    seed: int = 0
    val_fraction: float = 0.2
    normalization: list[str] = field(default_factory=lambda: ["auto"])
    ct_window: tuple[float, float] = (-1000.0, 1000.0)
    mr_percentiles: tuple[float, float] = (0.5, 99.5)
    crop: str = "foreground"
    drop_empty: bool = False
    drop_edge: float = 0.0
    repair_nonfinite: bool = False
    geometry_tolerance: float = 1e-3
    layout: str = "auto"
    workers: int = 2

    def validate(self) -> PrepareOptions:
        if self.resolution < 8 or self.resolution > 2048:
            raise SynthaugError(f"resolution: {self.resolution} is outside 8..2048")
        if self.axis not in AXES:
            raise SynthaugError(f"axis: {self.axis!r} is not one of {', '.join(AXES)}")
        if self.folds < 2:
            raise SynthaugError(f"folds: need at least 2, got {self.folds}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SynthaugError(f"val_fraction: {self.val_fraction} is outside [0, 1)")
        for method in self.normalization:
            if method not in NORMALIZATIONS:
                raise SynthaugError(
                    f"normalization: {method!r} is not one of {', '.join(NORMALIZATIONS)}"
                )
        lo, hi = self.ct_window
        if not lo < hi:
            raise SynthaugError(f"ct_window: low {lo} must be below high {hi}")
        plo, phi = self.mr_percentiles
        if not 0.0 <= plo < phi <= 100.0:
            raise SynthaugError(f"mr_percentiles: need 0 <= low < high <= 100, got {plo}, {phi}")
        if self.crop not in ("foreground", "none"):
            raise SynthaugError(f"crop: {self.crop!r} is not one of foreground, none")
        if not 0.0 <= self.drop_edge < 0.5:
            raise SynthaugError(f"drop_edge: {self.drop_edge} is outside [0, 0.5)")
        if self.workers < 1:
            raise SynthaugError(f"workers: need at least 1, got {self.workers}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ct_window"] = list(self.ct_window)
        d["mr_percentiles"] = list(self.mr_percentiles)
        return d


VARIANTS = ("joint", "mask", "conditional")
# Each source of synthetic image-mask pairs and the GAN variants it needs, the image
# painter last: joint samples both; mask-conditional paints mask-GAN masks; real-mask-conditional
# paints the fold's real training masks.
SOURCE_VARIANTS: dict[str, tuple[str, ...]] = {
    "joint": ("joint",),
    "mask-conditional": ("mask", "conditional"),
    "real-mask-conditional": ("conditional",),
}
SOURCES = tuple(SOURCE_VARIANTS)
FILTER_METRICS = ("consistency",)


def parse_filter(text: str) -> float:
    """``consistency>=T`` → T in [0, 1]: keep generated pairs whose mask–image consistency
    Dice (a real-only U-Net's prediction against the generated mask) is at least T."""
    metric, sep, value = str(text).replace(" ", "").partition(">=")
    if not sep or metric not in FILTER_METRICS:
        raise SynthaugError(
            f"filter: expected 'consistency>=T' with T between 0 and 1, got {text!r}"
        )
    try:
        threshold = float(value)
    except ValueError:
        threshold = float("nan")
    if not 0.0 <= threshold <= 1.0:
        raise SynthaugError(f"filter: threshold must be a number in [0, 1], got {value!r}")
    return threshold


@dataclass(frozen=True)
class SourceSpec:
    """A source of synthetic pairs, optionally filtered: ``real-mask-conditional`` or
    ``real-mask-conditional[consistency>=0.5]`` (the name is the results table's key)."""

    name: str
    base: str
    min_consistency: float | None = None

    @property
    def variants(self) -> tuple[str, ...]:
        return SOURCE_VARIANTS[self.base]

    @property
    def slug(self) -> str:
        """A folder name for the source (no brackets or comparison signs)."""
        if self.min_consistency is None:
            return self.base
        return f"{self.base}.consistency-ge-{self.min_consistency:g}"


def parse_source(text: str) -> SourceSpec:
    """``BASE`` or ``BASE[consistency>=T]`` with BASE one of :data:`SOURCES`."""
    text = str(text).strip()
    base, bracket, rest = text.partition("[")
    if base not in SOURCE_VARIANTS:
        raise SynthaugError(
            f"source: unknown source {base!r}; choose one of {', '.join(SOURCES)} "
            "(optionally filtered: SOURCE[consistency>=T])"
        )
    if not bracket:
        return SourceSpec(text, base)
    if not rest.endswith("]"):
        raise SynthaugError(f"source: {text!r} lacks the closing ']' of its filter")
    threshold = parse_filter(rest[:-1])
    return SourceSpec(f"{base}[consistency>={threshold:g}]", base, threshold)


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


@dataclass(frozen=True)
class SegPreset:
    """U-Net (MONAI) size and training schedule of the downstream segmentation model.

    Training runs ``max_steps`` minibatches at most, validates on REAL validation patients every
    ``val_every`` steps, keeps the best model by mean foreground Dice and stops early after
    ``patience`` validations without improvement.
    """

    name: str
    channels: tuple[int, ...]
    strides: tuple[int, ...]
    num_res_units: int
    batch: int
    lr: float
    max_steps: int
    val_every: int
    patience: int
    weight_decay: float = 1e-5


SEG_PRESETS: dict[str, SegPreset] = {
    p.name: p
    for p in (
        SegPreset(
            "cpu-micro",
            (8, 16, 32),
            (2, 2),
            0,
            batch=8,
            lr=3e-3,
            max_steps=120,
            val_every=40,
            patience=3,
        ),
        SegPreset(
            "cpu-tiny",
            (8, 16, 32, 64),
            (2, 2, 2),
            1,
            batch=16,
            lr=2e-3,
            max_steps=400,
            val_every=50,
            patience=4,
        ),
        SegPreset(
            "cpu-small",
            (16, 32, 64, 128),
            (2, 2, 2),
            1,
            batch=16,
            lr=1e-3,
            max_steps=2000,
            val_every=100,
            patience=5,
        ),
        SegPreset(
            "gpu-256",
            (32, 64, 128, 256, 512),
            (2, 2, 2, 2),
            2,
            batch=32,
            lr=1e-3,
            max_steps=20000,
            val_every=500,
            patience=8,
        ),
    )
}


def seg_preset(name: str) -> SegPreset:
    try:
        return SEG_PRESETS[name]
    except KeyError:
        raise SynthaugError(
            f"preset: unknown segmentation preset {name!r}; choose one of {', '.join(SEG_PRESETS)}"
        ) from None
