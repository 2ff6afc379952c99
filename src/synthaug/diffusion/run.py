"""A diffusion run folder: what was trained (run.json) and where its files are.

run.json                 family "diffusion", variant, preset, store (+ fingerprint), fold…
checkpoint.pt            the latest full training state (denoiser, EMA, optimiser, RNG)
snapshots/ema-NNNNNNNNN.pt  EMA denoiser weights at each snapshot (N… = images seen)
grids/samples-NNNNNNNNN.png uncurated samples at each snapshot; grids/reals.png
metrics.jsonl            one JSON object per logging interval
summary.json             written when a training call ends: images seen, speed, warnings
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from synthaug.data.provenance import TrainedOn
from synthaug.diffusion.networks import DiffusionSpec, build_denoiser
from synthaug.diffusion.presets import DiffusionPreset
from synthaug.errors import SynthaugError

FAMILY = "diffusion"
RUN_META = "run.json"
CHECKPOINT = "checkpoint.pt"
SUMMARY = "summary.json"
SNAPSHOT_DIR = "snapshots"
GRID_DIR = "grids"


@dataclass(kw_only=True)
class DiffusionRunInfo(TrainedOn):
    """Everything needed to rebuild a run's denoiser and to interpret its samples."""

    variant: str
    preset: dict
    seed: int
    kimg: float
    family: str = FAMILY

    @property
    def spec(self) -> DiffusionSpec:
        return DiffusionSpec(self.variant, len(self.modalities), len(self.labels))

    def diffusion_preset(self) -> DiffusionPreset:
        fields = dict(self.preset)
        for key in ("channels", "attention_levels"):
            fields[key] = tuple(fields[key])
        return DiffusionPreset(**fields)

    def build(self):
        return build_denoiser(self.diffusion_preset(), self.spec)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, run: Path | str) -> DiffusionRunInfo:
        path = Path(run) / RUN_META
        if not path.is_file():
            raise SynthaugError(f"{run}: not a diffusion run (no {RUN_META})")
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise SynthaugError(f"{path}: corrupt run metadata ({exc})") from exc


def snapshot_path(run: Path, nimg: int) -> Path:
    return Path(run) / SNAPSHOT_DIR / f"ema-{nimg:09d}.pt"


def list_snapshots(run: Path) -> list[Path]:
    return sorted((Path(run) / SNAPSHOT_DIR).glob("ema-*.pt"))


def snapshot_nimg(path: Path) -> int:
    return int(Path(path).stem.split("-")[-1])
