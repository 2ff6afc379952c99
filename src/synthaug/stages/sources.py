"""Sources of synthetic image–mask pairs: which generators each needs and where its masks
come from; the optional pair filter in a source's name (``SOURCE[consistency>=T]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from synthaug.errors import SynthaugError

MaskOrigin = Literal["own", "generated", "real"]


@dataclass(frozen=True)
class GeneratorRef:
    """A generator a source needs: its family and variant (e.g. stylegan2 / conditional)."""

    family: str
    variant: str


# Masks of "generated" sources come from this generator (the paper's mask-only StyleGAN2).
MASK_GENERATOR = GeneratorRef("stylegan2", "mask")


@dataclass(frozen=True)
class SourceKind:
    """How a source makes pairs: ``painter`` makes the images; the masks are the painter's
    own ("own", a joint generator), the mask generator's ("generated") or the fold's real
    training masks ("real"). ``about``: what a reader of a study should know of it."""

    name: str
    painter: GeneratorRef
    masks: MaskOrigin
    about: str = ""

    @property
    def generators(self) -> tuple[GeneratorRef, ...]:
        """The generators to train, the mask generator first and the painter last."""
        if self.masks == "generated":
            return (MASK_GENERATOR, self.painter)
        return (self.painter,)


SOURCE_KINDS: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        SourceKind("joint", GeneratorRef("stylegan2", "joint"), "own",
                   "StyleGAN2 generating image and mask together (the paper's B-SG)"),
        SourceKind("mask-conditional", GeneratorRef("stylegan2", "conditional"), "generated",
                   "StyleGAN2 masks painted by the mask-conditional StyleGAN2"),
        SourceKind("real-mask-conditional", GeneratorRef("stylegan2", "conditional"), "real",
                   "the fold's real training masks painted by the mask-conditional StyleGAN2"),
        SourceKind("real-mask-diffusion", GeneratorRef("diffusion", "painter"), "real",
                   "the fold's real training masks painted by the mask-conditional diffusion "
                   "model"),
        SourceKind("mask-diffusion", GeneratorRef("diffusion", "painter"), "generated",
                   "StyleGAN2 masks painted by the mask-conditional diffusion model"),
        SourceKind("joint-diffusion", GeneratorRef("diffusion", "joint"), "own",
                   "a diffusion model denoising image and mask together"),
        SourceKind("real-mask-gmm", GeneratorRef("gmm", "painter"), "real",
                   "no training: the fold's real training masks painted from the training "
                   "images' per-class intensity statistics, with blur, bias field and noise "
                   "(SynthSeg-style) — the bar a learned generator must beat. Where the "
                   "labels cover the anatomy (the tissue phantom) this is close to how the "
                   "phantom itself is made, so there it is an optimistic upper bound; where "
                   "class 0 holds unlabelled anatomy (the lesion phantom: air and brain) it "
                   "is painted as one noisy tissue and the baseline is far from the data. On real data with "
                   "label maps that cover the anatomy it is a fair baseline"),
    )
}  # fmt: skip
SOURCES = tuple(SOURCE_KINDS)
FILTER_METRICS = ("consistency",)


def source_kind(name: str) -> SourceKind:
    try:
        return SOURCE_KINDS[name]
    except KeyError:
        raise SynthaugError(
            f"source: unknown source {name!r}; choose one of {', '.join(SOURCES)}"
        ) from None


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
    def kind(self) -> SourceKind:
        return SOURCE_KINDS[self.base]

    @property
    def generators(self) -> tuple[GeneratorRef, ...]:
        return self.kind.generators

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
    if base not in SOURCE_KINDS:
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
