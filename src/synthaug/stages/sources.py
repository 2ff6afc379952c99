"""Sources of synthetic image–mask pairs: which generators each needs and where its masks
come from; the optional pair filter in a source's name (``SOURCE[consistency>=T]``)."""

from __future__ import annotations

from dataclasses import dataclass

from synthaug.errors import SynthaugError
from synthaug.generator import MASK_GENERATOR, GeneratorRef, SourceKind

__all__ = ["MASK_GENERATOR", "SOURCE_KINDS", "GeneratorRef", "SourceKind", "SourceSpec",
           "parse_filter", "parse_source", "source_kind", "source_names"]  # fmt: skip

# Every registered family's sources (stages.families fills it when it registers a family).
SOURCE_KINDS: dict[str, SourceKind] = {}
FILTER_METRICS = ("consistency",)


def source_names() -> tuple[str, ...]:
    """The sources of every registered family, in registration order."""
    return tuple(SOURCE_KINDS)


def source_kind(name: str) -> SourceKind:
    try:
        return SOURCE_KINDS[name]
    except KeyError:
        raise SynthaugError(
            f"source: unknown source {name!r}; choose one of {', '.join(SOURCE_KINDS)}"
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
    """``BASE`` or ``BASE[consistency>=T]`` with BASE one of :func:`source_names`."""
    text = str(text).strip()
    base, bracket, rest = text.partition("[")
    if base not in SOURCE_KINDS:
        raise SynthaugError(
            f"source: unknown source {base!r}; choose one of {', '.join(SOURCE_KINDS)} "
            "(optionally filtered: SOURCE[consistency>=T])"
        )
    if not bracket:
        return SourceSpec(text, base)
    if not rest.endswith("]"):
        raise SynthaugError(f"source: {text!r} lacks the closing ']' of its filter")
    threshold = parse_filter(rest[:-1])
    return SourceSpec(f"{base}[consistency>={threshold:g}]", base, threshold)
