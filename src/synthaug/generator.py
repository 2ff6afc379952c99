"""What the pipeline needs from any generator family (StyleGAN2 in ``gan``, diffusion, gmm).

A *family* trains on one fold's training patients into a run folder, lists the run's
snapshots, loads one snapshot as a :class:`Sampler` and reports the run's training health.
The stages and the study only talk to this interface, so a sibling package can add a family
without touching them. Quality scoring and pair filtering see a sampler, never a network.

Array conventions: images [N, C, R, R] float32 in [-1, 1]; masks [N, R, R] int64 in 0..K-1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar, Literal, Protocol, TypeVar, runtime_checkable

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


# The run folder of every family (``synthaug.lifecycle`` writes it):
RUN_META = "run.json"  # what was trained (RunMeta)
CHECKPOINT = "checkpoint.pt"  # the latest full training state; replaced at each snapshot
SUMMARY = "summary.json"  # written when a training call ends (TrainingSummary)
SNAPSHOT_DIR = "snapshots"  # one file per snapshot, named PREFIX-NNNNNNNNN (images seen)
GRID_DIR = "grids"  # uncurated samples at each snapshot


def snapshot_nimg(path: Path | str) -> int:
    """Images seen at a snapshot, from its file name."""
    return int(Path(path).name.split(".")[0].split("-")[-1])


@dataclass(frozen=True)
class RunLayout:
    """Where a run's files are: one definition for every family; a family names only its
    snapshot files (prefix and suffix) and the grid of samples it saves with each."""

    run: Path
    snapshot_prefix: str  # e.g. "gema" (StyleGAN2's G_ema), "ema", "stats"
    snapshot_suffix: str = ".pt"
    grid_prefix: str = "samples"

    def at(self, run: Path | str) -> RunLayout:
        """The same layout for another run folder."""
        return replace(self, run=Path(run))

    @property
    def meta(self) -> Path:
        return self.run / RUN_META

    @property
    def checkpoint(self) -> Path:
        return self.run / CHECKPOINT

    @property
    def summary(self) -> Path:
        return self.run / SUMMARY

    @property
    def grids(self) -> Path:
        return self.run / GRID_DIR

    def snapshot(self, nimg: int) -> Path:
        name = f"{self.snapshot_prefix}-{nimg:09d}{self.snapshot_suffix}"
        return self.run / SNAPSHOT_DIR / name

    def grid(self, nimg: int) -> Path:
        return self.grids / f"{self.grid_prefix}-{nimg:09d}.png"

    def snapshot_files(self) -> list[Path]:
        """Snapshot files, oldest first."""
        pattern = f"{self.snapshot_prefix}-*{self.snapshot_suffix}"
        return sorted((self.run / SNAPSHOT_DIR).glob(pattern))

    def snapshots(self) -> list[Snapshot]:
        return [Snapshot(p, snapshot_nimg(p)) for p in self.snapshot_files()]


@dataclass(kw_only=True)
class TrainedOn:
    """The run.json fields every generator family records about the data it learned from
    (``data.provenance.trained_on`` fills them)."""

    store: str
    store_name: str
    fold: int
    modalities: list[str]
    labels: list[str]
    resolution: int
    train_patients: list[str]
    median_slices: int  # slices per synthetic patient
    pixel_size_mm: float
    store_fingerprint: str = ""  # empty in runs trained before fingerprints were recorded

    def provenance(self) -> dict:
        """The store, fold and training patients this run belongs to (``data.provenance``)."""
        return {"store": self.store, "store_fingerprint": self.store_fingerprint,
                "fold": self.fold, "train_patients": list(self.train_patients)}  # fmt: skip


@dataclass(kw_only=True)
class RunMeta(TrainedOn):
    """A run's ``run.json``, one type for every family: the data it learned from, its family
    and variant, the preset it trained with (the family's preset as a dict: a run's settings
    are fixed when it starts), its seed, its length and its training processes."""

    family: str
    variant: str
    preset: dict
    seed: int
    kimg: float = 0.0
    world_size: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    def write(self, run: Path | str) -> None:
        from synthaug.atomic import write_json

        write_json(Path(run) / RUN_META, self.to_dict())

    @classmethod
    def read(cls, run: Path | str, family: str | None = None) -> RunMeta:
        """``run/run.json``; refused when missing, corrupt or (given ``family``) another
        family's. Runs from before families were recorded are StyleGAN2 runs."""
        path = Path(run) / RUN_META
        if not path.is_file():
            raise SynthaugError(
                f"{run}: not a generator run (no {RUN_META}); run `synthaug train-generator` first"
            )
        try:
            raw = json.loads(path.read_text())
            raw.setdefault("family", "stylegan2")
            known = {f.name for f in fields(cls)}
            meta = cls(**{k: v for k, v in raw.items() if k in known})
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise SynthaugError(f"{path}: corrupt run metadata ({exc})") from exc
        if family is not None and meta.family != family:
            raise SynthaugError(f"{run}: a {meta.family} run, not a {family} run")
        return meta


@dataclass(kw_only=True)
class RunDescription(TrainedOn):
    """What a generator run was trained on: everything a stage needs to use its samples."""

    family: str
    variant: str
    outputs: Outputs

    @classmethod
    def of(cls, meta: RunMeta, outputs: Outputs) -> RunDescription:
        names = [f.name for f in fields(TrainedOn)] + ["family", "variant"]
        return cls(outputs=outputs, **{n: getattr(meta, n) for n in names})


SUMMARY_VERSION = 1


@dataclass
class TrainingSummary:
    """A run's ``summary.json``, written when a training call ends (every family): images
    seen, optimiser steps, training seconds (snapshots excluded), the last snapshot, warnings
    and why training stopped early (None: it reached its length). ``extra`` holds what only
    one family records (e.g. StyleGAN2's per-snapshot pixel diversity)."""

    nimg: int
    steps: int
    train_seconds: float
    started: str = ""
    last_snapshot: str | None = None
    warnings: list[str] = field(default_factory=list)
    stopped_early: str | None = None
    extra: dict = field(default_factory=dict)
    version: int = SUMMARY_VERSION

    @property
    def kimg(self) -> float:
        return self.nimg / 1000

    @property
    def images_per_second(self) -> float:
        return self.nimg / max(self.train_seconds, 1e-9)

    def to_dict(self) -> dict:
        # kimg and img_per_s are written out for people and scripts reading the file
        base = {k: v for k, v in asdict(self).items() if k != "extra"}
        base["train_seconds"] = round(self.train_seconds, 2)
        return {**self.extra, **base, "kimg": self.kimg,
                "img_per_s": round(self.images_per_second, 2)}  # fmt: skip

    def write(self, run: Path | str) -> None:
        from synthaug.atomic import write_json

        write_json(Path(run) / SUMMARY, self.to_dict())

    @classmethod
    def read(cls, run: Path | str) -> TrainingSummary | None:
        """None before a training call has ended. Summaries from before the version field
        (version 0) read the same way; a newer version is refused."""
        path = Path(run) / SUMMARY
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SynthaugError(f"{path}: corrupt training summary ({exc.msg})") from exc
        version = int(raw.get("version", 0))
        if version > SUMMARY_VERSION:
            raise SynthaugError(
                f"{path}: summary version {version} is newer than this synthaug reads "
                f"({SUMMARY_VERSION}); upgrade synthaug"
            )
        seconds = raw.get("train_seconds")
        if seconds is None:  # a summary that records only the speed
            seconds = int(raw["nimg"]) / max(float(raw.get("img_per_s", 0.0)), 1e-9)
        own = {f.name for f in fields(cls)} | {"kimg", "img_per_s"}
        return cls(
            nimg=int(raw["nimg"]),
            steps=int(raw.get("steps", 0)),
            train_seconds=float(seconds),
            started=raw.get("started", ""),
            last_snapshot=raw.get("last_snapshot"),
            warnings=list(raw.get("warnings", [])),
            stopped_early=raw.get("stopped_early"),
            extra={k: v for k, v in raw.items() if k not in own},
            version=version,
        )


@dataclass(frozen=True)
class TrainingHealth:
    """How far a run got and what went wrong on the way (from its training summary)."""

    nimg: int
    seconds: float
    images_per_second: float
    warnings: list[str] = field(default_factory=list)
    stopped_early: str | None = None  # why training ended before its length (collapse)

    @classmethod
    def of_run(cls, run: Path | str) -> TrainingHealth | None:
        """From ``run/summary.json`` (None before a training call has ended)."""
        summary = TrainingSummary.read(run)
        if summary is None:
            return None
        return cls(
            nimg=summary.nimg,
            seconds=summary.train_seconds,
            images_per_second=summary.images_per_second,
            warnings=summary.warnings,
            stopped_early=summary.stopped_early,
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
    ``real_patients``: train on that many of the fold's training patients (a nested, seeded
    subset: ``SliceStore.training_patients``); None: all of them.
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
    real_patients: int | None = None


P = TypeVar("P")


class PresetRegistry(MutableMapping[str, P]):
    """A family's named presets (frozen dataclasses): looked up by name with an error that
    lists the choices, and rebuilt from the dict a run recorded (``from_record``). A user's
    own preset is one assignment: ``GAN_PRESETS["mine"] = replace(GAN_PRESETS["cpu-tiny"],
    name="mine", lr=1e-3)``."""

    def __init__(self, kind: str, presets: Iterable[P], retired: tuple[str, ...] = ()) -> None:
        self.kind = kind  # how errors name the family, e.g. "diffusion"
        self._presets = {p.name: p for p in presets}  # type: ignore[attr-defined]
        self._retired = retired  # fields older runs recorded that presets no longer have
        first = next(iter(self._presets.values()))
        self.preset_type = type(first)

    def __getitem__(self, name: str) -> P:
        return self._presets[name]

    def __setitem__(self, name: str, preset: P) -> None:
        self._presets[name] = preset

    def __delitem__(self, name: str) -> None:
        del self._presets[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._presets)

    def __len__(self) -> int:
        return len(self._presets)

    def named(self, name: str) -> P:
        """The preset called ``name``; an unknown name is refused, listing the choices."""
        try:
            return self._presets[name]
        except KeyError:
            raise SynthaugError(
                f"preset: unknown {self.kind} preset {name!r}; choose one of {', '.join(self)}"
            ) from None

    def from_record(self, record: dict) -> P:
        """The preset a run recorded (JSON turned its tuples into lists)."""
        values = {k: v for k, v in record.items() if k not in self._retired}
        for f in fields(self.preset_type):
            value = values.get(f.name)
            if isinstance(value, list) and str(f.type).startswith("tuple"):
                values[f.name] = tuple(value)
        return self.preset_type(**values)


def measured_seconds(
    img_per_s: dict[tuple[str, str], float],
    scoring_s: dict[str, float],
    request: TrainRequest,
    score: bool,
) -> float | None:
    """A trained family's estimate from measured rates: training images per second per
    worker by (preset, variant), plus seconds of snapshot scoring by preset; None where the
    preset and variant were never measured."""
    rate = img_per_s.get((request.preset, request.variant))
    if rate is None:
        return None
    return request.kimg * 1000 / rate + (scoring_s.get(request.preset, 0.0) if score else 0.0)


# The TrainRequest options a family may or may not take (GeneratorFamily.options).
REQUEST_OPTIONS = ("snapshot_kimg", "precision", "sample_steps")


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


MaskOrigin = Literal["own", "generated", "real", "augmented"]


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
    own ("own", a joint generator), the mask generator's ("generated"), the fold's real
    training masks ("real") or those masks deformed ("augmented", ``data.mask_augment``). ``about``: what a reader of a study should know of it. Each
    family declares the sources it paints (``GeneratorFamily.sources``)."""

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


@dataclass(frozen=True)
class TrainedSettings:
    """A study's section for a family that trains (``gan``, ``diffusion``): preset, length
    in kimg (one number, or per variant), seed, snapshot interval (None: the preset's) and
    precision (None: the preset's; auto, fp32 or bf16). A generator whose every snapshot is
    collapsed, copying or off the data stops the study unless ``allow_unusable``."""

    preset: str = "cpu-tiny"
    kimg: float | dict[str, float] = 4.0
    seed: int = 0
    snapshot_kimg: float | None = None
    allow_unusable: bool = False  # study generators flagged unusable (their cells are flagged)
    precision: str | None = None

    def kimg_for(self, variant: str) -> float:
        if isinstance(self.kimg, dict):
            if variant not in self.kimg:
                raise SynthaugError(f"kimg: no training length for the {variant} generators")
            return float(self.kimg[variant])
        return float(self.kimg)


@dataclass(frozen=True)
class SampledSettings(TrainedSettings):
    """A trained family that samples iteratively (diffusion): also ``sample_steps``, the
    denoising steps when sampled (None: the preset's)."""

    sample_steps: int | None = None


@dataclass(frozen=True)
class FittedSettings:
    """A study's section for a family with nothing to train (gmm): preset and seed; fitting
    takes seconds, so it has no length or snapshot interval."""

    preset: str = "default"
    seed: int = 0
    allow_unusable: bool = False
    kimg: ClassVar[float] = 0.0
    snapshot_kimg: ClassVar[None] = None

    def kimg_for(self, variant: str) -> float:
        return 0.0


class GeneratorFamily(Protocol):
    """A generator family: how to train, find, load and judge its runs, and what the study
    and the command line need to offer it (``stages.families`` registers it)."""

    name: str
    variants: tuple[str, ...]  # in training order: a mask generator before its painters
    section: str  # the study config section that trains it, e.g. "gan"
    settings: type  # that section's dataclass (TrainedSettings, SampledSettings, ...)
    presets: PresetRegistry
    default_preset: str
    # TrainRequest options it takes beyond store, fold, variant, out, preset, kimg, seed,
    # resume, device and settings: a subset of REQUEST_OPTIONS
    options: frozenset[str]
    sources: tuple[SourceKind, ...]  # the sources whose images it paints

    def estimate_seconds(self, request: TrainRequest, score: bool) -> float | None:
        """One worker's seconds for ``request`` (+ snapshot scoring); None: not measured."""
        ...

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
