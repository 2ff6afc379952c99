"""The study configuration (STUDY.yaml): the grid dataset × source × n × fold × seed.

Example::

    name: my-study
    datasets:
      - name: brats
        store: stores/brats            # a slice store from `synthaug prepare`
    sources: [joint, mask-conditional, real-mask-conditional,
              "real-mask-conditional[consistency>=0.5]"]   # filtered: an extra row
    n_levels: [0, 1, 2, 4, 8]          # added synthetic patients; 0 = real only
    folds: [0, 1, 2, 3, 4]
    seeds: [0, 1]
    gan: {preset: cpu-tiny, kimg: 4}   # or per variant: {joint: 2, mask: 2, conditional: 4}
    seg: {preset: cpu-tiny}
    generate: {seed: 0, truncation: 1.0}
    quality: {enabled: true}           # snapshot FID curves, quality of each synthetic set

Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synthaug.config import (
    GAN_PRESETS,
    SEG_PRESETS,
    SOURCES,
    VARIANTS,
    SourceSpec,
    parse_source,
)
from synthaug.errors import SynthaugError


@dataclass(frozen=True)
class StudyDataset:
    name: str
    store: str


@dataclass
class StudyConfig:
    name: str
    datasets: list[StudyDataset]
    sources: list[str]
    n_levels: list[int]
    folds: list[int]
    seeds: list[int] = field(default_factory=lambda: [0])
    gan: dict[str, Any] = field(default_factory=lambda: {"preset": "cpu-tiny", "kimg": 4.0})
    seg: dict[str, Any] = field(default_factory=lambda: {"preset": "cpu-tiny"})
    generate: dict[str, Any] = field(default_factory=lambda: {"seed": 0, "truncation": 1.0})
    quality: dict[str, Any] = field(default_factory=lambda: {"enabled": True})

    @property
    def max_n(self) -> int:
        return max(self.n_levels)

    def fingerprint(self) -> str:
        """Identifies the study's grid and settings: results of another study are refused."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def source_specs(self) -> list[SourceSpec]:
        return [parse_source(s) for s in self.sources]

    def gan_kimg(self, variant: str) -> float:
        """Training length of a variant's generators (``gan.kimg``: one number or per variant)."""
        kimg = self.gan["kimg"]
        if isinstance(kimg, dict):
            if variant not in kimg:
                raise SynthaugError(f"gan.kimg: no training length for the {variant} generators")
            return float(kimg[variant])
        return float(kimg)

    def variants(self) -> list[str]:
        """GAN variants the sources need, in a stable order."""
        needed = {v for s in self.source_specs() for v in s.variants}
        return [v for v in ("joint", "mask", "conditional") if v in needed]


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


def parse_study(
    raw: dict[str, Any], path: Path | None = None, base: Path | None = None
) -> StudyConfig:
    """Validate a study mapping; every problem names its field."""
    if not isinstance(raw, dict):
        raise _fail(path, "study", "expected a mapping at the top level")
    base = base or Path.cwd()
    known = {
        "name",
        "datasets",
        "sources",
        "n_levels",
        "folds",
        "seeds",
        "gan",
        "seg",
        "generate",
        "quality",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(path, unknown[0], f"unknown field (known: {', '.join(sorted(known))})")
    for key in ("datasets", "n_levels", "folds"):
        if key not in raw:
            raise _fail(path, key, "required field missing")
    datasets = []
    if not isinstance(raw["datasets"], list) or not raw["datasets"]:
        raise _fail(path, "datasets", "expected a non-empty list of {name, store}")
    for i, entry in enumerate(raw["datasets"]):
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
        datasets.append(StudyDataset(str(entry.get("name", store.name)), str(store.resolve())))
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise _fail(path, "datasets", f"dataset names must be unique, got {names}")
    sources = raw.get("sources", list(SOURCES))
    if not isinstance(sources, list) or not sources:
        raise _fail(path, "sources", "expected a non-empty list")
    canonical = []
    for i, s in enumerate(sources):
        try:
            canonical.append(parse_source(s).name)
        except SynthaugError as exc:
            raise _fail(path, f"sources[{i}]", str(exc).removeprefix("source: ")) from None
    if len(set(canonical)) != len(canonical):
        raise _fail(path, "sources", f"each source may appear once, got {canonical}")
    sources = canonical
    n_levels = _int_list(raw["n_levels"], "n_levels", path)
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
    folds = _int_list(raw["folds"], "folds", path)
    seeds = _int_list(raw.get("seeds", [0]), "seeds", path)
    gan = {"preset": "cpu-tiny", "kimg": 4.0, **(raw.get("gan") or {})}
    seg = {"preset": "cpu-tiny", **(raw.get("seg") or {})}
    generate = {"seed": 0, "truncation": 1.0, **(raw.get("generate") or {})}
    if gan["preset"] not in GAN_PRESETS:
        raise _fail(
            path,
            "gan.preset",
            f"unknown preset {gan['preset']!r}; choose from {', '.join(GAN_PRESETS)}",
        )
    if seg["preset"] not in SEG_PRESETS:
        raise _fail(
            path,
            "seg.preset",
            f"unknown preset {seg['preset']!r}; choose from {', '.join(SEG_PRESETS)}",
        )
    kimg = gan["kimg"]
    per_variant = kimg if isinstance(kimg, dict) else {v: kimg for v in VARIANTS}
    if set(per_variant) - set(VARIANTS) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        for v in per_variant.values()
    ):
        raise _fail(
            path,
            "gan.kimg",
            f"must be a positive number or a mapping of variants ({', '.join(VARIANTS)}) to "
            f"positive numbers, got {kimg!r}",
        )
    snap = gan.get("snapshot_kimg")
    if snap is not None and (not isinstance(snap, int | float) or snap <= 0):
        raise _fail(path, "gan.snapshot_kimg", f"must be a positive number, got {snap!r}")
    quality = {"enabled": True, **(raw.get("quality") or {})}
    if set(quality) != {"enabled"} or not isinstance(quality["enabled"], bool):
        raise _fail(path, "quality", f"expected {{enabled: true|false}}, got {quality!r}")
    config = StudyConfig(
        str(raw.get("name", path.stem if path else "study")),
        datasets,
        list(sources),
        n_levels,
        folds,
        seeds,
        gan,
        seg,
        generate,
        quality,
    )
    missing = [v for v in config.variants() if isinstance(kimg, dict) and v not in kimg]
    if missing:
        raise _fail(path, "gan.kimg", f"no training length for the {', '.join(missing)} generators")
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
