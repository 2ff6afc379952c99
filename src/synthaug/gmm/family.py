"""The GMM painter as a generator family: "training" fits the class statistics (seconds).

run.json                        family "gmm", variant "painter", preset, store (+ fingerprint)…
snapshots/stats-NNNNNNNNN.npz   the class statistics (N… = training slices they came from)
grids/samples-NNNNNNNNN.png     uncurated paintings of training masks
summary.json                    slices fitted and seconds
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synthaug.atomic import atomic_file, write_json
from synthaug.data.provenance import TrainedOn, trained_on
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.generator import (
    Outputs,
    RunDescription,
    Snapshot,
    TrainingHealth,
    TrainRequest,
    refuse_changed_settings,
    run_family,
    with_settings,
)
from synthaug.gmm.paint import ClassStats, fit_class_stats, paint
from synthaug.gmm.presets import GmmPreset, gmm_preset

FAMILY = "gmm"
RUN_META = "run.json"
SUMMARY = "summary.json"
SNAPSHOT_DIR = "snapshots"
GRID_DIR = "grids"
GRID_SAMPLES = 16
OUTPUTS = Outputs(images=True, masks=False)  # a painter: images for masks it is given


@dataclass(kw_only=True)
class GmmRunInfo(TrainedOn):
    """A gmm run's metadata: the data it was fitted on and its painting preset."""

    variant: str
    preset: dict
    seed: int
    family: str = FAMILY

    def gmm_preset(self) -> GmmPreset:
        fields = dict(self.preset)
        fields["pv_sigma_px"] = tuple(fields["pv_sigma_px"])
        return GmmPreset(**fields)

    @classmethod
    def read(cls, run: Path | str) -> GmmRunInfo:
        path = Path(run) / RUN_META
        if not path.is_file():
            raise SynthaugError(f"{run}: not a gmm run (no {RUN_META})")
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise SynthaugError(f"{path}: corrupt run metadata ({exc})") from exc


def _list_snapshots(run: Path) -> list[Path]:
    return sorted((Path(run) / SNAPSHOT_DIR).glob("stats-*.npz"))


def _snapshot_nimg(path: Path) -> int:
    return int(Path(path).stem.split("-")[-1])


def _save_stats(path: Path, stats: ClassStats) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        np.savez(f, **stats.to_arrays())


def _load_stats(path: Path) -> ClassStats:
    try:
        with np.load(path) as data:
            return ClassStats(data["mean"], data["std"], data["pixels"])
    except (OSError, KeyError, ValueError) as exc:
        raise SynthaugError(f"{path}: not readable class statistics ({exc})") from exc


class GmmSampler:
    """Paints given masks from a run's class statistics (``synthaug.generator.Sampler``)."""

    variant = "painter"
    outputs = OUTPUTS
    precision = "fp32"  # numpy statistics: nothing to autocast

    def __init__(self, info: GmmRunInfo, snapshot: Path) -> None:
        self.info, self.preset, self.stats = info, info.gmm_preset(), _load_stats(snapshot)
        if self.stats.mean.shape[1:] != (len(info.labels), len(info.modalities)):
            raise SynthaugError(f"{snapshot}: statistics do not fit this run's labels/modalities")

    def sample(
        self, count: int, seed: int, masks: np.ndarray | None = None, truncation: float = 1.0
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if masks is None:
            raise SynthaugError("the gmm painter paints masks: pass the masks")
        images, painted = paint(self.stats, self.preset, np.asarray(masks)[:count], seed)
        # None: the images belong to the given masks; else to the deformed ones
        return images, painted if self.preset.elastic_px > 0 else None


class GmmFamily:
    """A no-training baseline: real (or generated) masks painted from class statistics."""

    name = FAMILY
    variants = ("painter",)

    def owns(self, run: Path) -> bool:
        return run_family(run) == FAMILY

    def train(self, request: TrainRequest) -> Path:
        """Fit the class statistics of the fold's training patients (kimg is ignored)."""
        if request.variant not in self.variants:
            raise SynthaugError(
                f"variant: the gmm family has only 'painter', not {request.variant!r}"
            )
        out = Path(request.out)
        if (out / RUN_META).exists() and not request.resume:
            raise SynthaugError(
                f"{out}: run already exists; pass --resume to continue it or choose another --out"
            )
        if (out / RUN_META).exists():
            refuse_changed_settings(out, GmmRunInfo.read(out).gmm_preset(), request.settings)
        if _list_snapshots(out) and (out / SUMMARY).exists():
            self._check_same(out, request)
            return out  # fitting is deterministic: a finished run is the answer
        started = time.perf_counter()
        preset = with_settings(gmm_preset(request.preset), request.settings)
        store = SliceStore(request.store)
        patients = store.split(request.fold).train
        info = _run_info(request, preset, store, patients)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_META, asdict(info))
        per_patient = [store.training_arrays([p]) for p in patients]
        per_patient = [(im, lb) for im, lb in per_patient if len(lb)]
        if not per_patient:
            raise SynthaugError(f"{request.store}: fold {request.fold} has no trainable slices")
        stats = fit_class_stats(per_patient, len(store.label_names))
        slices = sum(len(lb) for _, lb in per_patient)
        snapshot = out / SNAPSHOT_DIR / f"stats-{slices:09d}.npz"
        _save_stats(snapshot, stats)
        _save_grid(out / GRID_DIR / f"samples-{slices:09d}.png", info, snapshot, per_patient)
        seconds = time.perf_counter() - started
        write_json(out / SUMMARY, {"nimg": slices, "train_seconds": round(seconds, 2),
                                   "img_per_s": round(slices / max(seconds, 1e-9), 1),
                                   "warnings": []})  # fmt: skip
        return out

    def _check_same(self, out: Path, request: TrainRequest) -> None:
        info = GmmRunInfo.read(out)
        store = SliceStore(request.store)
        if (info.fold, info.store_fingerprint) != (request.fold, store.fingerprint):
            raise SynthaugError(f"{out}: was fitted on another store or fold")

    def describe(self, run: Path) -> RunDescription:
        return RunDescription.of(GmmRunInfo.read(run), FAMILY, OUTPUTS)

    def snapshots(self, run: Path) -> list[Snapshot]:
        return [Snapshot(p, _snapshot_nimg(p)) for p in _list_snapshots(Path(run))]

    def load(self, run: Path, snapshot: Path | None = None) -> GmmSampler:
        snaps = _list_snapshots(Path(run))
        if snapshot is None and not snaps:
            raise SynthaugError(f"{run}: has no class statistics; train it first")
        return GmmSampler(GmmRunInfo.read(run), Path(snapshot) if snapshot else snaps[-1])

    def health(self, run: Path) -> TrainingHealth | None:
        return TrainingHealth.from_summary(Path(run) / SUMMARY)


def _run_info(
    request: TrainRequest, preset: GmmPreset, store: SliceStore, patients: list[str]
) -> GmmRunInfo:
    return GmmRunInfo(
        variant=request.variant,
        preset=asdict(preset),
        **trained_on(store, request.fold, patients),
        seed=request.seed,
    )


def _save_grid(path: Path, info: GmmRunInfo, snapshot: Path, per_patient: list) -> None:
    from synthaug.viz import save_pair_grid

    masks = np.concatenate([lb for _, lb in per_patient])
    masks = masks[np.linspace(0, len(masks) - 1, GRID_SAMPLES).round().astype(int)]
    images, painted = GmmSampler(info, snapshot).sample(len(masks), seed=7919, masks=masks)
    save_pair_grid(path, images, masks if painted is None else painted, 4)


GMM = GmmFamily()
