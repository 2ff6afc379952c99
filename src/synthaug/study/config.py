"""The study configuration (STUDY.yaml): the grid dataset × source × n × fold × seed.

Example::

    name: my-study
    datasets:
      - name: brats
        store: stores/brats            # a slice store from `synthaug prepare`
    sources: [joint, mask-conditional, real-mask-conditional,
              "real-mask-conditional[consistency>=0.5]"]   # filtered: an extra row
    n_levels: [0, 1, 2, 4, 8]          # added synthetic patients; 0 = real only
    real_patients: [4, 8, all]        # nested subsets of each fold's training patients
    folds: [0, 1, 2, 3, 4]            # split indices of the store; or k: folds 0..k-1 of each repeat
    repeats: 1                        # with folds: k, repeated k-fold (`prepare --repeats R`)
    seeds: [0, 1]
    gan: {preset: cpu-tiny, kimg: 4}   # or per variant: {joint: 2, mask: 2, conditional: 4}
    diffusion: {preset: cpu-tiny, kimg: 6}   # each generator family has its section
    seg: {preset: cpu-tiny}
    generate: {seed: 0, truncation: 1.0}
    quality: {enabled: true}           # snapshot FID curves, quality of each synthetic set
    stats: {design: per-source, alpha: 0.05, rope: 0.01}   # or design: paper (pooled)

Relative paths are resolved against the config file's folder. The generator families'
sections (``gan``, ``diffusion``, ``gmm``, …) and the sources come from the family registry
(``synthaug.stages.families``): a registered family brings its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.generator import GeneratorFamily, TrainedSettings
from synthaug.precision import PRECISIONS
from synthaug.seg.presets import SEG_PRESETS
from synthaug.stages.families import by_section, family
from synthaug.stages.sources import GeneratorRef, SourceSpec, parse_source, source_names
from synthaug.stats.analysis import DESIGNS, METRICS, PRIMARY_TESTS, design_floors


@dataclass(frozen=True)
class StudyDataset:
    name: str
    store: str
    # This dataset's real-patients levels when they differ from the study's (None: those)
    real_patients: tuple[int | None, ...] | None = None


# Sections every study recorded before families had sections of their own: always part of
# the fingerprint (the others only in studies that use their family).
LEGACY_SECTIONS = ("gan",)


def default_sections() -> dict[str, Any]:
    """Each registered family's study section with its defaults."""
    return {name: fam.settings() for name, fam in by_section().items()}


@dataclass(frozen=True)
class SegSettings:
    """U-Nets of every cell: preset, an optional override of its step cap (a safety net:
    early stopping on real validation patients should end every U-Net) and the share of each
    minibatch drawn from synthetic slices (None: uniform over all slices)."""

    preset: str = "cpu-tiny"
    max_steps: int | None = None
    synthetic_fraction: float | None = None
    nsd_tolerance: float = 1.0  # pixels of the stored slices (normalised surface Dice)
    precision: str = "auto"  # auto, fp32 or bf16 (synthaug.precision); each cell records its own
    device: str = "cpu"  # cpu, cuda or auto (CUDA when there is one); not in the fingerprint


@dataclass(frozen=True)
class GenerateSettings:
    """Sampling of synthetic patients: seed and truncation psi (1 = none)."""

    seed: int = 0
    truncation: float = 1.0


@dataclass(frozen=True)
class QualitySettings:
    """Snapshot FID curves and the quality of every synthetic set."""

    enabled: bool = True


@dataclass(frozen=True)
class StatsSettings:
    """The analysis: the primary test ("corrected-t": Nadeau–Bengio / Bouckaert–Frank with
    Holm over all comparisons; "bayes": Bayesian correlated t-test, P >= 0.95), the Friedman
    design ("per-source" or the paper's pooled "paper"), significance level, the region of
    practical equivalence (± in the metric's units) of the Bayesian tests, and the metric and
    class analysed ("mean" = mean over foreground classes)."""

    design: str = "per-source"
    alpha: float = 0.05
    rope: float = 0.01
    primary: str = "corrected-t"
    metric: str = "dice"
    class_name: str = "mean"


@dataclass(frozen=True)
class GeneratorSettings:
    """How one generator of a study is trained (from its family's section)."""

    preset: str
    kimg: float
    seed: int
    snapshot_kimg: float | None
    sample_steps: int | None = None  # iterative samplers (diffusion); None: the preset's
    precision: str | None = None  # None: the preset's


@dataclass
class StudyConfig:
    name: str
    datasets: list[StudyDataset]
    sources: list[str]
    n_levels: list[int]
    folds: list[int]
    seeds: list[int] = field(default_factory=lambda: [0])
    seg: SegSettings = field(default_factory=SegSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    stats: StatsSettings = field(default_factory=StatsSettings)
    # the generator families' sections by name (``config.gan``, ``config.diffusion``, …)
    sections: dict[str, Any] = field(default_factory=default_sections)
    # Real-patients levels: counts of each fold's training patients, nested and seeded
    # (``SliceStore.training_patients``); None: the whole fold ("all" in STUDY.yaml).
    real_patients: list[int | None] = field(default_factory=lambda: [None])
    # Repeats of the k-fold split the folds span (``folds`` holds the expanded split indices
    # r·k + f); > 1 makes the analysis a repeated k-fold one (Bouckaert–Frank).
    repeats: int = 1

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"StudyConfig has no field or generator section {name!r}")

    @property
    def max_n(self) -> int:
        return max(self.n_levels)

    def fingerprint(self) -> str:
        """Identifies the study's grid and the settings its artifacts depend on: results of
        another study are refused. The analysis (``stats``) and ``gan.allow_unusable`` change
        no artifact, so a study may be resumed or re-analysed with other values."""
        content = self.to_dict()
        content.pop("stats")
        content["seg"].pop("device")
        if content["repeats"] == 1:  # studies before repeated k-fold keep their fingerprint
            content.pop("repeats")
        if content["real_patients"] == [None]:  # studies before the axis keep theirs too
            content.pop("real_patients")
        for dataset in content["datasets"]:
            if dataset.get("real_patients") is None:
                dataset.pop("real_patients", None)
        for key, default in (
            ("synthetic_fraction", None),
            ("nsd_tolerance", 1.0),
            ("precision", "auto"),
        ):
            if content["seg"][key] == default:  # older studies keep their fingerprint
                content["seg"].pop(key)
        used = {g.family for g in self.generators()}
        for name, fam in by_section().items():
            section = content.pop(name)
            if section.get("precision", "") is None:
                section.pop("precision")  # studies before precision keep their fingerprint
            section.pop("allow_unusable")
            if name in LEGACY_SECTIONS or fam.name in used:
                content[name] = section  # studies without the family keep their fingerprint
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The config as STUDY.yaml writes it: each family's section at the top level."""
        content = asdict(self)
        content.update(content.pop("sections"))
        return content

    def levels(self, dataset: StudyDataset) -> list[int | None]:
        """The real-patients levels of ``dataset`` (its own, else the study's)."""
        return list(dataset.real_patients) if dataset.real_patients else list(self.real_patients)

    def source_specs(self) -> list[SourceSpec]:
        return [parse_source(s) for s in self.sources]

    def generators(self) -> list[GeneratorRef]:
        """The generators the sources need, in a stable order (masks before painters)."""
        needed: list[GeneratorRef] = []
        for spec in self.source_specs():
            needed += [g for g in spec.generators if g not in needed]
        return sorted(needed, key=lambda g: (g.family, family(g.family).variants.index(g.variant)))

    def section(self, family_name: str) -> Any:
        """The settings section that trains ``family_name``'s generators."""
        return self.sections[family(family_name).section]

    def generator_settings(self, generator: GeneratorRef) -> GeneratorSettings:
        """Preset, length, seed and snapshot interval of one of the study's generators."""
        s = self.section(generator.family)
        steps = getattr(s, "sample_steps", None)  # only sections of iterative samplers have it
        return GeneratorSettings(
            s.preset,
            s.kimg_for(generator.variant),
            s.seed,
            s.snapshot_kimg,
            steps,
            getattr(s, "precision", None),  # the gmm painter has no networks
        )

    def allows_unusable(self, family: str) -> bool:
        return self.section(family).allow_unusable


def _fail(path: Path | None, field_name: str, problem: str) -> SynthaugError:
    where = f"{path}: " if path else ""
    return SynthaugError(f"{where}{field_name}: {problem}")


def _int_list(raw: Any, name: str, path: Path | None) -> list[int]:
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
    ):
        raise _fail(path, name, f"expected a non-empty list of integers, got {raw!r}")
    return list(raw)


KNOWN_FIELDS = (
    "name", "datasets", "sources", "n_levels", "folds", "seeds", "seg", "generate",
    "quality", "stats", "repeats", "real_patients",
)  # fmt: skip


def known_fields() -> tuple[str, ...]:
    """The config's fields: the fixed ones and each registered family's section."""
    return KNOWN_FIELDS + tuple(by_section())


def _parse_datasets(raw: Any, path: Path | None, base: Path) -> list[StudyDataset]:
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "datasets", "expected a non-empty list of {name, store}")
    datasets = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or "store" not in entry:
            raise _fail(
                path, f"datasets[{i}]", "needs a 'store' (a folder made by `synthaug prepare`)"
            )
        store = Path(str(entry["store"]))
        store = store if store.is_absolute() else (base / store)
        if not (store / "store.json").is_file():
            raise _fail(
                path,
                f"datasets[{i}].store",
                f"{store} is not a slice store (run `synthaug prepare`)",
            )
        own = entry.get("real_patients")
        datasets.append(
            StudyDataset(
                str(entry.get("name", store.name)),
                str(store.resolve()),
                None if own is None else tuple(own),  # checked with the study's levels
            )
        )
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise _fail(path, "datasets", f"dataset names must be unique, got {names}")
    return datasets


def _parse_sources(raw: Any, path: Path | None) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "sources", "expected a non-empty list")
    canonical = []
    for i, s in enumerate(raw):
        try:
            canonical.append(parse_source(s).name)
        except SynthaugError as exc:
            raise _fail(path, f"sources[{i}]", str(exc).removeprefix("source: ")) from None
    if len(set(canonical)) != len(canonical):
        raise _fail(path, "sources", f"each source may appear once, got {canonical}")
    return canonical


def _parse_n_levels(raw: Any, path: Path | None) -> list[int]:
    n_levels = _int_list(raw, "n_levels", path)
    if any(n < 0 for n in n_levels):
        raise _fail(path, "n_levels", f"must be 0 or more, got {n_levels}")
    if n_levels != sorted(set(n_levels)):
        raise _fail(path, "n_levels", f"must be strictly increasing, got {n_levels}")
    if n_levels[0] != 0:
        raise _fail(
            path,
            "n_levels",
            "must start with 0 (the real-only baseline every comparison is against)",
        )
    return n_levels


def _levels(raw: Any, path: Path | None, name: str) -> list[int | None]:
    """``[4, 8, all]``: strictly increasing counts of training patients, "all" (or null) last."""
    if not isinstance(raw, list | tuple) or not raw:
        raise _fail(path, name, f"expected a list such as [4, 8, all], got {raw!r}")
    levels = [None if v is None or v == "all" else v for v in raw]
    counts = [v for v in levels if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in counts):
        raise _fail(path, name, f"counts must be whole numbers of at least 1 (or all), got {raw!r}")
    if counts != sorted(set(counts)) or levels.count(None) > 1 or (None in levels[:-1]):
        raise _fail(path, name, f"must be strictly increasing with all last, got {raw!r}")
    return levels


def _fits(levels: list[int | None], path: Path | None, name: str, ds: StudyDataset,
          folds: list[int]) -> None:  # fmt: skip
    """Each count must fit the smallest training fold of the dataset's store."""
    counts = [v for v in levels if v is not None]
    if not counts:
        return
    store = SliceStore(ds.store)
    for fold in folds:
        if fold >= store.num_folds:
            continue  # _parse_folds names that problem
        patients = len({store.groups[c] for c in store.split(fold).train})
        if counts[-1] > patients:
            raise _fail(
                path, name,
                f"{counts[-1]} real patients do not fit fold {fold} of {ds.store}, which has "
                f"{patients} training patients",
            )  # fmt: skip


def _parse_real_patients(
    raw: Any, path: Path | None, datasets: list[StudyDataset], folds: list[int]
) -> tuple[list[int | None], list[StudyDataset]]:
    """The study's levels (default: the whole fold) and the datasets with their own levels
    (``datasets: [{name, store, real_patients: [4, all]}]``) normalised; every level checked
    against the folds of its dataset's store."""
    study = [None] if raw is None else _levels(raw, path, "real_patients")
    checked = []
    for i, ds in enumerate(datasets):
        own = None
        if ds.real_patients is not None:
            own = tuple(_levels(ds.real_patients, path, f"datasets[{i}].real_patients"))
        _fits(list(own or study), path, f"datasets[{i}].real_patients" if own else "real_patients",
              ds, folds)  # fmt: skip
        checked.append(replace(ds, real_patients=own))
    return study, checked


def _parse_repeats(raw: dict, path: Path | None) -> int:
    repeats = raw.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise _fail(path, "repeats", f"must be a whole number of at least 1, got {repeats!r}")
    return repeats


def _parse_folds(raw: dict, path: Path | None, datasets: list[StudyDataset]) -> list[int]:
    """The store split indices of ``folds``: a list of them, or k meaning folds 0..k-1 of each
    of the ``repeats`` k-fold splits, i.e. indices r·k + f. Checked against every store: one
    prepared with fewer repeats or another k is refused, naming the prepare that fits."""
    repeats, folds = _parse_repeats(raw, path), raw["folds"]
    k = folds if isinstance(folds, int) and not isinstance(folds, bool) else None
    if k is None:
        indices = _int_list(folds, "folds", path)
    elif k < 2:
        raise _fail(path, "folds", f"k-fold needs k of at least 2, got {k}")
    else:
        indices = [r * k + f for r in range(repeats) for f in range(k)]
    for i, ds in enumerate(datasets):
        try:
            store = SliceStore(ds.store)
        except SynthaugError as exc:
            raise _fail(path, f"datasets[{i}].store", str(exc)) from None
        fix = (
            f"run `synthaug prepare --folds {k or store.folds_per_repeat} --repeats {repeats}` "
            f"(--overwrite replaces the store)"
        )
        if store.repeats < repeats or (k is not None and store.folds_per_repeat != k):
            name = "repeats" if store.repeats < repeats else "folds"
            want = f"`folds: {k}, repeats: {repeats}`" if k else f"`repeats: {repeats}`"
            raise _fail(
                path,
                name,
                f"{want} needs a store of {k or store.folds_per_repeat} folds × at least "
                f"{repeats} repeat(s), but {ds.store} has {store.folds_per_repeat} folds × "
                f"{store.repeats} repeat(s); {fix}",
            )
        # Listed indices of later repeats than ``repeats`` would pass as one repeat's folds.
        covered = store.folds_per_repeat * repeats
        beyond = [i for i in indices if covered <= i < store.num_folds]
        if beyond:
            raise _fail(
                path,
                "folds",
                f"split indices {beyond} of {ds.store} lie in repeats beyond the first "
                f"{repeats} (the store has {store.folds_per_repeat} folds × {store.repeats} "
                f"repeats); write `folds: {store.folds_per_repeat}` with `repeats: R`",
            )
    return indices


def _section(raw: dict, name: str, cls: type, path: Path | None) -> Any:
    """A typed settings section; unknown keys name the field."""
    values = raw.get(name) or {}
    if not isinstance(values, dict):
        raise _fail(path, name, f"expected a mapping, got {values!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise _fail(
            path, f"{name}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(known))})"
        )
    return cls(**values)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _check_generators(name: str, fam: GeneratorFamily, section: Any, path: Path | None) -> None:
    presets, variants = fam.presets, fam.variants
    if section.preset not in presets:
        raise _fail(
            path,
            f"{name}.preset",
            f"unknown preset {section.preset!r}; choose from {', '.join(presets)}",
        )
    if not isinstance(section, TrainedSettings):
        return  # nothing to train, no length to check
    kimg = section.kimg
    per_variant = kimg if isinstance(kimg, dict) else {v: kimg for v in variants}
    if set(per_variant) - set(variants) or not all(_positive(v) for v in per_variant.values()):
        raise _fail(
            path,
            f"{name}.kimg",
            f"must be a positive number or a mapping of variants ({', '.join(variants)}) to "
            f"positive numbers, got {kimg!r}",
        )
    if section.snapshot_kimg is not None and not _positive(section.snapshot_kimg):
        raise _fail(
            path,
            f"{name}.snapshot_kimg",
            f"must be a positive number, got {section.snapshot_kimg!r}",
        )
    precision = section.precision
    if precision is not None and precision not in PRECISIONS:
        raise _fail(
            path, f"{name}.precision", f"{precision!r} is not one of {', '.join(PRECISIONS)}"
        )
    steps = getattr(section, "sample_steps", None)  # diffusion only
    if steps is not None and not (
        isinstance(steps, int) and not isinstance(steps, bool) and steps > 0
    ):
        raise _fail(path, f"{name}.sample_steps", f"must be a positive integer, got {steps!r}")


def _check_seg(seg: SegSettings, path: Path | None) -> None:
    if seg.preset not in SEG_PRESETS:
        raise _fail(
            path,
            "seg.preset",
            f"unknown preset {seg.preset!r}; choose from {', '.join(SEG_PRESETS)}",
        )
    if seg.max_steps is not None and not (
        isinstance(seg.max_steps, int) and not isinstance(seg.max_steps, bool) and seg.max_steps > 0
    ):
        raise _fail(path, "seg.max_steps", f"must be a positive integer, got {seg.max_steps!r}")
    if seg.device not in ("cpu", "cuda", "auto"):
        raise _fail(path, "seg.device", f"{seg.device!r} is not cpu, cuda or auto")
    if seg.precision not in PRECISIONS:
        raise _fail(
            path, "seg.precision", f"{seg.precision!r} is not one of {', '.join(PRECISIONS)}"
        )
    if not (_positive(seg.nsd_tolerance)):
        raise _fail(
            path,
            "seg.nsd_tolerance",
            f"must be a positive number of pixels, got {seg.nsd_tolerance!r}",
        )
    fraction = seg.synthetic_fraction
    if fraction is not None and not (
        isinstance(fraction, int | float) and not isinstance(fraction, bool) and 0 < fraction < 1
    ):
        raise _fail(
            path,
            "seg.synthetic_fraction",
            f"must be a share of each minibatch in (0, 1), got {fraction!r}",
        )


def _check_stats(stats: StatsSettings, path: Path | None) -> None:
    if stats.design not in DESIGNS:
        raise _fail(path, "stats.design", f"{stats.design!r} is not one of {', '.join(DESIGNS)}")
    if not (isinstance(stats.alpha, float) and 0 < stats.alpha < 1):
        raise _fail(path, "stats.alpha", f"must be a number in (0, 1), got {stats.alpha!r}")
    if not (
        isinstance(stats.rope, int | float) and not isinstance(stats.rope, bool) and stats.rope >= 0
    ):
        raise _fail(path, "stats.rope", f"must be a difference of 0 or more, got {stats.rope!r}")
    if stats.metric in ("dice", "slice_dice", "nsd") and not stats.rope < 1:
        raise _fail(path, "stats.rope", f"must be a Dice difference below 1, got {stats.rope!r}")
    if stats.primary not in PRIMARY_TESTS:
        raise _fail(
            path, "stats.primary", f"{stats.primary!r} is not one of {', '.join(PRIMARY_TESTS)}"
        )
    if stats.metric not in METRICS:
        raise _fail(path, "stats.metric", f"{stats.metric!r} is not one of {', '.join(METRICS)}")
    if not isinstance(stats.class_name, str):
        raise _fail(path, "stats.class_name", f"expected a class name, got {stats.class_name!r}")


def _check_class(config: StudyConfig, path: Path | None) -> None:
    """The analysed class must exist in every dataset (checked now, not after the training)."""
    wanted = config.stats.class_name
    if wanted == "mean":
        return
    for i, ds in enumerate(config.datasets):
        names = SliceStore(ds.store).label_names[1:]
        if wanted not in names:
            raise _fail(
                path,
                "stats.class_name",
                f"{wanted!r} is not a foreground class of datasets[{i}] ({ds.store}: "
                f'{", ".join(names)}); use one of them or "mean"',
            )


def kfold_rho(config: StudyConfig) -> float:
    """ρ = n_test / n_train ≈ 1 / (k − 1) of the study's k-fold split (repeats re-split the
    same patients: they add paired differences, not a smaller ρ)."""
    return 1.0 / max(len(config.folds) // config.repeats - 1, 1)


def design_warnings(config: StudyConfig) -> list[str]:
    """One line per test family the study's design cannot make significant, naming the
    config field to change (the study still runs: its Bayesian probabilities inform)."""
    problems = design_floors(
        len(config.datasets), len(config.sources), len(config.n_levels), len(config.folds),
        config.stats.alpha, rho=kfold_rho(config),
    )  # fmt: skip
    return [f"{field_name}: {problem}" for field_name, problem in problems]


def _check_settings(config: StudyConfig, path: Path | None) -> None:
    for name, fam in by_section().items():
        _check_generators(name, fam, config.sections[name], path)
    _check_seg(config.seg, path)
    _check_stats(config.stats, path)
    _check_class(config, path)
    if not isinstance(config.quality.enabled, bool):
        raise _fail(path, "quality", f"expected {{enabled: true|false}}, got {config.quality!r}")
    for name, fam in by_section().items():
        kimg = config.sections[name].kimg
        needed = [g.variant for g in config.generators() if g.family == fam.name]
        missing = [v for v in needed if isinstance(kimg, dict) and v not in kimg]
        if missing:
            raise _fail(
                path, f"{name}.kimg", f"no training length for the {', '.join(missing)} generators"
            )


def parse_study(
    raw: dict[str, Any], path: Path | None = None, base: Path | None = None
) -> StudyConfig:
    """Validate a study mapping; every problem names its field."""
    if not isinstance(raw, dict):
        raise _fail(path, "study", "expected a mapping at the top level")
    unknown = sorted(set(raw) - set(known_fields()))
    if unknown:
        known = ", ".join(sorted(known_fields()))
        raise _fail(path, unknown[0], f"unknown field (known: {known})")
    for key in ("datasets", "n_levels", "folds"):
        if key not in raw:
            raise _fail(path, key, "required field missing")
    datasets = _parse_datasets(raw["datasets"], path, base or Path.cwd())
    folds = _parse_folds(raw, path, datasets)
    levels, datasets = _parse_real_patients(raw.get("real_patients"), path, datasets, folds)
    config = StudyConfig(
        name=str(raw.get("name", path.stem if path else "study")),
        datasets=datasets,
        sources=_parse_sources(raw.get("sources", list(source_names())), path),
        n_levels=_parse_n_levels(raw["n_levels"], path),
        folds=folds,
        repeats=_parse_repeats(raw, path),
        real_patients=levels,
        seeds=_int_list(raw.get("seeds", [0]), "seeds", path),
        seg=_section(raw, "seg", SegSettings, path),
        generate=_section(raw, "generate", GenerateSettings, path),
        quality=_section(raw, "quality", QualitySettings, path),
        stats=_section(raw, "stats", StatsSettings, path),
        sections={
            name: _section(raw, name, fam.settings, path) for name, fam in by_section().items()
        },
    )
    _check_settings(config, path)
    return config


def load_study(path: Path | str) -> StudyConfig:
    """Read and validate a STUDY.yaml."""
    path = Path(path)
    if not path.is_file():
        raise SynthaugError(f"{path}: study config not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SynthaugError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    return parse_study(raw, path, path.parent)
