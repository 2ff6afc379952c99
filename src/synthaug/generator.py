"""What the pipeline needs from any generator family (StyleGAN2 in ``gan``, diffusion, gmm).

A *family* trains on one fold's training patients into a run folder, lists the run's
snapshots, loads one snapshot as a :class:`Sampler` and reports the run's training health.
The stages and the study only talk to this interface, so a sibling package can add a family
without touching them. Quality scoring and pair filtering see a sampler, never a network.

Array conventions: images [N, C, R, R] float32 in [-1, 1]; masks [N, R, R] int64 in 0..K-1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from synthaug.errors import SynthaugError


@dataclass(frozen=True)
class Outputs:
    """What a generator variant emits: images, masks, or both. A generator that emits images
    but no masks is a *painter*: it paints images for masks it is given."""

    images: bool
    masks: bool

    @property
    def paints_masks(self) -> bool:
        return self.images and not self.masks


@runtime_checkable
class Sampler(Protocol):
    """One loaded generator snapshot; ``outputs`` says what ``sample`` returns."""

    variant: str
    outputs: Outputs
    # "fp32" or "bf16" (autocast): the run's training precision unless set otherwise, e.g. by
    # ``generate --precision``; a family without networks ignores it.
    precision: str

    def sample(
        self, count: int, seed: int, masks: np.ndarray | None = None, truncation: float = 1.0
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``count`` samples, deterministic for ``seed``: (images | None, masks | None). A
        painter (given ``masks``) returns None for masks, or the masks its images belong to
        when it changed them (e.g. deformed them)."""
        ...


class PairFilter(Protocol):
    """Decides which generated image–mask pairs to keep (e.g. mask–image consistency ≥ T)."""

    label: str  # how messages name the filter, e.g. "consistency>=0.5"

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """images [N, C, R, R], masks [N, R, R] → keep [N] bool."""
        ...

    def describe(self) -> dict:
        """JSON-ready settings of the filter, recorded with the synthetic set."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """A saved state of a run's generator: file, name and images seen when it was saved."""

    path: Path
    nimg: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RunDescription:
    """What a generator run was trained on: everything a stage needs to use its samples."""

    family: str
    variant: str
    store: str
    store_name: str
    fold: int
    modalities: list[str]
    labels: list[str]
    resolution: int
    train_patients: list[str]
    median_slices: int  # slices per synthetic patient
    pixel_size_mm: float
    outputs: Outputs
    store_fingerprint: str = ""  # the store's content when the run was trained

    def provenance(self) -> dict:
        """The store and fold this run belongs to (``data.provenance``)."""
        return {"store": self.store, "store_fingerprint": self.store_fingerprint, "fold": self.fold}

    @classmethod
    def of(cls, info: object, family: str, outputs: Outputs) -> RunDescription:
        """From a family's run metadata (an object with the fields above, e.g. a run.json
        dataclass)."""
        names = ("variant", "store", "store_name", "fold", "modalities", "labels", "resolution",
                 "train_patients", "median_slices", "pixel_size_mm", "store_fingerprint")  # fmt: skip
        return cls(family=family, outputs=outputs, **{n: getattr(info, n) for n in names})


@dataclass(frozen=True)
class TrainingHealth:
    """How far a run got and what went wrong on the way (from the family's own records)."""

    nimg: int
    seconds: float
    images_per_second: float
    warnings: list[str] = field(default_factory=list)
    stopped_early: str | None = None  # why training ended before its length (collapse)

    @classmethod
    def from_summary(cls, path: Path) -> TrainingHealth | None:
        """From a run's ``summary.json`` (None before a training call has ended)."""
        if not path.is_file():
            return None
        try:
            summary = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SynthaugError(f"{path}: corrupt training summary ({exc.msg})") from exc
        return cls(
            nimg=int(summary["nimg"]),
            seconds=float(summary.get("train_seconds", 0.0)),
            images_per_second=float(summary.get("img_per_s", 0.0)),
            warnings=list(summary.get("warnings", [])),
            stopped_early=summary.get("stopped_early"),
        )


@dataclass(frozen=True)
class TrainRequest:
    """Train ``variant`` of a family on ``fold`` of ``store`` into ``out``.

    ``kimg``: training length in thousands of real images shown; ``preset``: the family's
    preset name; ``snapshot_kimg`` None: the preset's interval; ``precision`` None: the
    preset's; ``resume`` continues an existing run (and is refused when there is none to
    continue only by the family's own rules). ``sample_steps``: for families that sample
    iteratively (diffusion), the denoising steps the run is sampled with — fixed when the run
    starts, since its snapshot scores depend on it; None: the preset's; ignored by the others.
    """

    store: str
    fold: int
    variant: str
    out: str
    preset: str = "cpu-tiny"
    kimg: float = 10.0
    seed: int = 0
    resume: bool = False
    snapshot_kimg: float | None = None
    device: str = "auto"
    precision: str | None = None
    sample_steps: int | None = None
    settings: dict[str, str] = field(default_factory=dict)


def parse_setting(text: str) -> object:
    """A ``--set`` value: none/null, true/false, an int, a float, a comma list of numbers
    (a tuple), else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if "," in text:
        try:
            return tuple(float(part) for part in text.split(","))
        except ValueError:
            pass
    return text


def with_settings(preset, settings: dict[str, str]):
    """``preset`` (a frozen dataclass) with fields replaced from ``NAME=VALUE`` strings (the
    training commands' ``--set``); the result's ``check()`` runs when it has one. A run records
    the preset it trained with, so the settings travel with it."""
    known = {f.name for f in fields(preset)} - {"name", "variant_settings"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SynthaugError(
            f"--set: {', '.join(unknown)} is not a setting of preset {preset.name}; "
            f"choose from {', '.join(sorted(known))}"
        )
    values = {k: parse_setting(v) if isinstance(v, str) else v for k, v in settings.items()}
    for name, value in values.items():
        current = getattr(preset, name)
        if isinstance(current, str) and not isinstance(value, str):
            values[name] = settings[name]  # a string setting that looks like a number
        elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
    updated = replace(preset, **values)
    check = getattr(updated, "check", None)
    return check() if check is not None else updated


def refuse_changed_settings(out: Path | str, started_with, settings: dict[str, str]) -> None:
    """The resume rule of every family: a run's settings are fixed when it starts, so a
    ``--set`` whose value differs from the preset the run recorded (``started_with``) is
    refused, naming the option, its recorded value and the new one; equal values pass."""
    updated = with_settings(started_with, settings)
    changed = [
        f"{name}: recorded {getattr(started_with, name)!r}, --set {getattr(updated, name)!r}"
        for name in settings
        if getattr(updated, name) != getattr(started_with, name)
    ]
    if changed:
        raise SynthaugError(
            f"{out}: cannot resume with changed settings ({'; '.join(changed)}); a run's "
            "settings are fixed when it starts: resume without them, or train a new run in "
            "another --out"
        )


class GeneratorFamily(Protocol):
    """A generator family: how to train, find, load and judge its runs."""

    name: str
    variants: tuple[str, ...]

    def owns(self, run: Path) -> bool:
        """Whether ``run`` is a run folder of this family."""
        ...

    def train(self, request: TrainRequest) -> Path:
        """Train (or resume) a run; returns the run folder."""
        ...

    def describe(self, run: Path) -> RunDescription: ...

    def snapshots(self, run: Path) -> list[Snapshot]:
        """Snapshots in training order (oldest first)."""
        ...

    def load(self, run: Path, snapshot: Path | None = None) -> Sampler:
        """The named snapshot, else the latest one."""
        ...

    def health(self, run: Path) -> TrainingHealth | None:
        """None while the run has not finished a training call."""
        ...


def run_family(run: Path, default: str | None = None) -> str | None:
    """The ``family`` named in ``run/run.json`` (``default`` when the file has none; None
    when there is no readable run.json): how each family recognises its own runs."""
    path = Path(run) / "run.json"
    try:
        return json.loads(path.read_text()).get("family", default) if path.is_file() else None
    except json.JSONDecodeError:
        return None
