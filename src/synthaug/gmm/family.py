"""The GMM painter as a generator family: "training" fits the class statistics (seconds).

The run folder is the lifecycle's (``synthaug.lifecycle``): one training step fits the
statistics of every training slice, the one snapshot ``snapshots/stats-N.npz`` holds them
(N = training slices), ``grids/samples-N.png`` paints training masks with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthaug.atomic import atomic_file
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.generator import (
    FittedSettings,
    GeneratorRef,
    Outputs,
    RunDescription,
    RunLayout,
    RunMeta,
    Snapshot,
    SourceKind,
    TrainingHealth,
    TrainRequest,
    run_family,
    with_settings,
)
from synthaug.gmm.paint import ClassStats, fit_class_stats, paint
from synthaug.gmm.presets import GMM_PRESETS, GmmPreset, gmm_preset
from synthaug.lifecycle import Trainer, new_meta, open_run, open_store, train_run

FAMILY = "gmm"
LAYOUT = RunLayout(Path(), snapshot_prefix="stats", snapshot_suffix=".npz")
GRID_SAMPLES = 16
FIT_S, SCORING_S = 3.0, 8.0  # study --dry-run's estimate (2-core development machine)
OUTPUTS = Outputs(images=True, masks=False)  # a painter: images for masks it is given


def _layout(run: Path | str) -> RunLayout:
    return LAYOUT.at(run)


def _preset_of(meta: RunMeta) -> GmmPreset:
    return GMM_PRESETS.from_record(meta.preset)


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

    def __init__(self, info: RunMeta, snapshot: Path) -> None:
        self.info, self.preset, self.stats = info, _preset_of(info), _load_stats(snapshot)
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


class _Fit(Trainer):
    """The lifecycle's hooks for the gmm painter: one step fits every training slice."""

    def __init__(self, meta: RunMeta, store: SliceStore, out: Path) -> None:
        super().__init__(_layout(out), meta, snapshot_kimg=1.0)
        per_patient = [store.training_arrays([p]) for p in meta.train_patients]
        self.per_patient = [(im, lb) for im, lb in per_patient if len(lb)]
        if not self.per_patient:
            raise SynthaugError(f"{store.path}: fold {meta.fold} has no trainable slices")
        self.slices = sum(len(lb) for _, lb in self.per_patient)
        self.num_classes = len(store.label_names)

    def train_step(self) -> dict[str, float]:
        self.stats = fit_class_stats(self.per_patient, self.num_classes)
        self.nimg, self.step = self.slices, 1
        return {}

    def save_snapshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            np.savez(f, **self.stats.to_arrays())
        _save_grid(self.layout.grid(self.nimg), self.meta, path, self.per_patient)


class GmmFamily:
    """A no-training baseline: real (or generated) masks painted from class statistics."""

    name = FAMILY
    variants = ("painter",)
    section = "gmm"
    settings = FittedSettings
    presets = GMM_PRESETS
    default_preset = "default"
    options: frozenset[str] = frozenset()
    sources = (
        SourceKind("real-mask-gmm", GeneratorRef(FAMILY, "painter"), "real",
                   "no training: the fold's real training masks painted from the training "
                   "images' per-class intensity statistics, with blur, bias field and noise "
                   "(SynthSeg-style) — the bar a learned generator must beat. Where the "
                   "labels cover the anatomy (the tissue phantom) this is close to how the "
                   "phantom itself is made, so there it is an optimistic upper bound; where "
                   "class 0 holds unlabelled anatomy (the lesion phantom: air and brain) it "
                   "is painted as one noisy tissue and the baseline is far from the data. On "
                   "real data with label maps that cover the anatomy it is a fair baseline"),
        SourceKind("augmented-mask-gmm", GeneratorRef(FAMILY, "painter"), "augmented",
                   "the fold's real training masks, deformed (seeded affine + elastic, no "
                   "class lost), painted from class statistics like real-mask-gmm"),
    )  # fmt: skip

    def estimate_seconds(self, request: TrainRequest, score: bool) -> float | None:
        # the demo's generators phase: four fits and their scoring took ~10 s each
        return FIT_S + (SCORING_S if score else 0.0)

    def owns(self, run: Path) -> bool:
        return run_family(run) == FAMILY

    def train(self, request: TrainRequest) -> Path:
        """Fit the class statistics of the fold's training patients (kimg is ignored)."""
        if request.variant not in self.variants:
            raise SynthaugError(
                f"variant: the gmm family has only 'painter', not {request.variant!r}"
            )
        preset = with_settings(gmm_preset(request.preset), request.settings)
        store = open_store(request, None, preset.name)
        out = Path(request.out)
        meta = new_meta(request, FAMILY, store, preset)
        meta.kimg = 0.0  # nothing to train
        meta = open_run(request, _layout(out), meta, GMM_PRESETS.from_record)
        if _layout(out).snapshot_files() and _layout(out).summary.exists():
            return out  # fitting is deterministic: a finished run is the answer
        fit = _Fit(meta, store, out)
        train_run(fit, fit.slices, "fit gmm painter")
        return out

    def describe(self, run: Path) -> RunDescription:
        return RunDescription.of(RunMeta.read(run, FAMILY), OUTPUTS)

    def snapshots(self, run: Path) -> list[Snapshot]:
        return _layout(run).snapshots()

    def load(self, run: Path, snapshot: Path | None = None) -> GmmSampler:
        snaps = _layout(run).snapshot_files()
        if snapshot is None and not snaps:
            raise SynthaugError(f"{run}: has no class statistics; train it first")
        meta = RunMeta.read(run, FAMILY)
        return GmmSampler(meta, Path(snapshot) if snapshot else snaps[-1])

    def health(self, run: Path) -> TrainingHealth | None:
        return TrainingHealth.of_run(run)


def _save_grid(path: Path, info: RunMeta, snapshot: Path, per_patient: list) -> None:
    from synthaug.viz import save_pair_grid

    masks = np.concatenate([lb for _, lb in per_patient])
    masks = masks[np.linspace(0, len(masks) - 1, GRID_SAMPLES).round().astype(int)]
    images, painted = GmmSampler(info, snapshot).sample(len(masks), seed=7919, masks=masks)
    save_pair_grid(path, images, masks if painted is None else painted, 4)


GMM = GmmFamily()
