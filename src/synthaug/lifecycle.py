"""The training lifecycle every generator family shares: run folder, resume rule, snapshots,
NaN stop, ``metrics.jsonl``, progress and the training summary.

A family supplies what differs — its networks, one training step, what a snapshot holds —
by subclassing :class:`Trainer`; :func:`open_run` and :func:`train_run` do the rest the same
way for every family::

    meta = open_run(request, layout, new_meta, preset_of)   # refuses what may not resume
    trainer = MyTrainer(layout, meta, ...)                  # the family's hooks
    resume_checkpoint(trainer)                              # when the run has one
    summary = train_run(trainer, target_nimg, label)        # snapshots, metrics, summary

The run folder (``generator.RunLayout``)::

    run.json                  RunMeta: the data, family, variant, preset, seed, length
    checkpoint.pt             the latest full training state; replaced at each snapshot
    snapshots/PREFIX-N.EXT    what sampling needs at each snapshot (N = images seen, 9 digits)
    grids/PREFIX-N.png        uncurated samples at each snapshot
    metrics.jsonl             one JSON object per logging interval (runlog)
    summary.json              TrainingSummary, written when a training call ends
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from synthaug.data.provenance import trained_on
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.generator import (
    RunLayout,
    RunMeta,
    TrainingSummary,
    TrainRequest,
    refuse_changed_settings,
)
from synthaug.progress import make_progress
from synthaug.runlog import append_metrics, read_metrics, rewrite_metrics

TICK_KIMG = 0.25  # a metrics row (and a progress update) every 250 images
# What a resumed run must share with the run it continues: its data and what it generates.
IDENTITY_FIELDS = ("variant", "fold", "store", "resolution", "store_fingerprint", "train_patients")
# Request options that replace a preset field; given again on resume they must be unchanged.
EXPLICIT_OPTIONS = ("snapshot_kimg", "sample_steps")


class Trainer:
    """The family's side of a training run. Subclasses build their networks and data, then
    implement :meth:`train_step`, :meth:`save_snapshot` and (for a resumable state)
    :meth:`family_state` / :meth:`load_family_state`; the other hooks have defaults.

    The lifecycle owns ``nimg`` (images seen), ``step``, ``elapsed`` (training seconds),
    ``last_snapshot`` and ``stopped_early``; ``train_step`` advances ``nimg`` and ``step``.
    """

    divergence_hint = "Lower the learning rate."
    is_main = True  # the process that writes the run's files (rank 0 under torchrun)

    def __init__(self, layout: RunLayout, meta: RunMeta, snapshot_kimg: float) -> None:
        self.layout, self.meta, self.snapshot_kimg = layout, meta, snapshot_kimg
        self.nimg, self.step, self.elapsed = 0, 0, 0.0
        self.last_snapshot: str | None = None
        self.stopped_early: str | None = None  # set by a family that stops a collapsing run

    @property
    def out(self) -> Path:
        return self.layout.run

    # ------------------------------------------------------------------ hooks
    def train_step(self) -> dict[str, float]:
        """One minibatch: the losses to log; advances ``nimg`` and ``step``. A step checks
        its losses with :meth:`check_finite` before it updates what a snapshot saves."""
        raise NotImplementedError

    def save_snapshot(self, path: Path) -> None:
        """Write what sampling needs to ``path`` (atomically) and the grid of samples."""
        raise NotImplementedError

    def family_state(self) -> dict | None:
        """The family's training state for ``checkpoint.pt`` (None: nothing to resume)."""
        return None

    def load_family_state(self, state: dict) -> None:
        """Restore :meth:`family_state`; raise SynthaugError when it does not fit."""

    def tick_fields(self) -> dict[str, float]:
        """Extra fields of a metrics row (e.g. StyleGAN2's augmentation probability)."""
        return {}

    def row_warning(self, row: dict[str, float]) -> str | None:
        """A training-health warning for a metrics row, kept in the row and the summary."""
        return None

    def before_snapshot(self) -> None:
        """Runs on the writing process before each snapshot (e.g. a collapse check)."""

    def after_snapshot(self) -> None:
        """Runs on every process after each snapshot (e.g. agreeing to stop)."""

    def progress_text(self, row: dict[str, float]) -> str:
        return ""

    def summary_extra(self) -> dict:
        """What only this family records in ``summary.json``."""
        return {}

    # ------------------------------------------------------------------ the shared rules
    def check_finite(self, losses: dict[str, Any]) -> None:
        """The NaN stop: a non-finite loss ends training with the last good snapshot kept."""
        for name, value in losses.items():
            number = (
                float(value.detach().float().abs().sum())
                if hasattr(value, "detach")
                else float(value)
            )
            if not math.isfinite(number):
                kept = (
                    f"the last good snapshot {self.last_snapshot} is kept"
                    if self.last_snapshot
                    else "no snapshot was written yet"
                )
                raise SynthaugError(
                    f"training diverged at {self.nimg / 1000:.2f} kimg: {name} is "
                    f"{float(value)}; {kept}. {self.divergence_hint}"
                )

    def checkpoint_state(self, family_state: dict) -> dict:
        """``checkpoint.pt``: the family's state, the lifecycle's progress in its "meta"."""
        meta = {**family_state.get("meta", {}), "variant": self.meta.variant,
                "nimg": self.nimg, "step": self.step}  # fmt: skip
        return {
            **family_state,
            "meta": meta,
            "elapsed": self.elapsed,
            "last_snapshot": self.last_snapshot,
            "stopped_early": self.stopped_early,
        }

    def load_checkpoint_state(self, state: dict) -> None:
        self.load_family_state(state)
        self.nimg, self.step = int(state["meta"]["nimg"]), int(state["meta"]["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.last_snapshot = state.get("last_snapshot")
        self.stopped_early = state.get("stopped_early")

    def snapshot(self) -> None:
        """The snapshot, then the checkpoint: a resume point always has its snapshot."""
        if self.is_main:
            self.before_snapshot()
            path = self.layout.snapshot(self.nimg)
            self.save_snapshot(path)
            self.last_snapshot = str(path)
            state = self.family_state()
            if state is not None:
                from synthaug.torch_io import save_torch

                save_torch(self.layout.checkpoint, self.checkpoint_state(state))
        self.after_snapshot()


def open_run(
    request: TrainRequest,
    layout: RunLayout,
    meta: RunMeta,
    preset_of: Callable[[dict], Any],
) -> RunMeta:
    """The run's metadata under the one resume rule of every family.

    A run folder that exists is refused without ``request.resume``. Resumed, it must have
    been trained on the same data for the same variant (``IDENTITY_FIELDS``), and every
    setting given again (``--set``, ``--snapshot-kimg``, ``--sample-steps``) must equal what
    the run recorded; the run keeps the preset it started with. ``meta`` is the metadata a
    new run would record; ``preset_of`` rebuilds a family preset from its recorded dict.
    Writes run.json (atomically); under torchrun only rank 0 calls it, the others read the
    run.json it wrote.
    """
    out = layout.run
    exists = layout.meta.exists()
    if exists and not request.resume:
        raise SynthaugError(
            f"{out}: run already exists; pass --resume to continue it or choose another --out"
        )
    if exists:
        previous = RunMeta.read(out, meta.family)
        _refuse_other_data(out, previous, meta)
        recorded = preset_of(previous.preset)
        given = {**request.settings, **_explicit(request, recorded)}
        refuse_changed_settings(out, recorded, given)
        meta.preset, meta.world_size = previous.preset, previous.world_size
    out.mkdir(parents=True, exist_ok=True)
    meta.write(out)
    return meta


def check_length(request: TrainRequest) -> None:
    """The request's length options, the same for every family."""
    if request.kimg <= 0:
        raise SynthaugError(f"kimg: must be positive, got {request.kimg}")
    if request.snapshot_kimg is not None and request.snapshot_kimg <= 0:
        raise SynthaugError(f"snapshot-kimg: must be positive, got {request.snapshot_kimg}")
    if request.sample_steps is not None and request.sample_steps < 1:
        raise SynthaugError(f"sample-steps: must be at least 1, got {request.sample_steps}")


def open_store(request: TrainRequest, resolution: int | None, preset_name: str) -> SliceStore:
    """The request's store, refused when its fold is missing or its resolution is not the
    preset's (``resolution`` None: any)."""
    store = SliceStore(request.store)
    store.split(request.fold)  # raises for a missing fold
    if resolution is not None and store.resolution != resolution:
        raise SynthaugError(
            f"{request.store}: store resolution {store.resolution} differs from preset "
            f"{preset_name}'s {resolution}; prepare at {resolution} or pick a preset for "
            f"{store.resolution}"
        )
    return store


def new_meta(
    request: TrainRequest, family: str, store: SliceStore, preset: Any, world_size: int = 1
) -> RunMeta:
    """The run.json of a new run: trained on the fold's training patients (or the request's
    nested subset of them)."""
    from dataclasses import asdict

    patients = store.training_patients(request.fold, request.real_patients)
    return RunMeta(
        **trained_on(store, request.fold, patients),
        family=family, variant=request.variant, preset=asdict(preset), seed=request.seed,
        kimg=request.kimg, world_size=world_size,
    )  # fmt: skip


def _explicit(request: TrainRequest, preset: Any) -> dict[str, Any]:
    """The request's options that replace a field of ``preset``, where given."""
    return {
        name: getattr(request, name)
        for name in EXPLICIT_OPTIONS
        if getattr(request, name) is not None and hasattr(preset, name)
    }


def _refuse_other_data(out: Path, previous: RunMeta, meta: RunMeta) -> None:
    for name in IDENTITY_FIELDS:
        old, new = getattr(previous, name), getattr(meta, name)
        if name == "store_fingerprint" and not old:
            continue  # a run from before fingerprints were recorded
        if old != new:
            shown = (
                f"{len(old)} patients, not {len(new)} (or other ones)"
                if name == "train_patients"
                else f"{old!r}, not {new!r}"
            )
            raise SynthaugError(f"{out}: was trained with {name}={shown}")


def resume_checkpoint(trainer: Trainer) -> None:
    """Continue from ``checkpoint.pt`` when there is one; metrics past it are dropped (a
    killed run logged rows its checkpoint does not hold)."""
    if not trainer.layout.checkpoint.exists():
        return
    from synthaug.torch_io import load_torch

    trainer.load_checkpoint_state(load_torch(trainer.layout.checkpoint))
    if trainer.is_main:
        rewrite_metrics(trainer.out, read_metrics(trainer.out, up_to_nimg=trainer.nimg))


def target_images(kimg: float, batch: int) -> int:
    """The images a run of ``kimg`` shows: whole minibatches, at least the length asked."""
    return int(math.ceil(kimg * 1000 / batch)) * batch


def training_rows(trainer: Trainer, target: int) -> Iterator[dict[str, float]]:
    """Train until ``target`` images (or a stop); one metrics row per tick and before every
    snapshot, so a run that stops at a snapshot has its last tick logged."""
    snapshot_every = max(int(trainer.snapshot_kimg * 1000), 1)
    tick_every = int(TICK_KIMG * 1000)
    next_snapshot = (trainer.nimg // snapshot_every + 1) * snapshot_every
    next_tick = (trainer.nimg // tick_every + 1) * tick_every
    losses: dict[str, list[float]] = {}
    tick_start, tick_nimg = time.perf_counter(), trainer.nimg
    while trainer.nimg < target and not trainer.stopped_early:
        started = time.perf_counter()
        for name, value in trainer.train_step().items():
            losses.setdefault(name, []).append(value)
        trainer.elapsed += time.perf_counter() - started
        if trainer.nimg >= min(next_tick, next_snapshot, target):
            now = time.perf_counter()
            row = {
                "nimg": trainer.nimg, "kimg": round(trainer.nimg / 1000, 3), "step": trainer.step,
                **{name: _mean(values) for name, values in losses.items()},
                **trainer.tick_fields(),
                "img_per_s": (trainer.nimg - tick_nimg) / max(now - tick_start, 1e-9),
                "elapsed_s": round(trainer.elapsed, 2),
            }  # fmt: skip
            losses, tick_start, tick_nimg = {}, now, trainer.nimg
            next_tick = (trainer.nimg // tick_every + 1) * tick_every
            warning = trainer.row_warning(row)
            if warning:
                row["warning"] = warning
            yield row
        if trainer.nimg >= next_snapshot or trainer.nimg >= target:
            trainer.snapshot()
            next_snapshot = (trainer.nimg // snapshot_every + 1) * snapshot_every


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]  # a loss not due this tick is NaN
    return sum(finite) / len(finite) if finite else math.nan


def train_run(trainer: Trainer, target: int, label: str) -> TrainingSummary:
    """Train to ``target`` images with a progress bar (``label``); the writing process
    appends ``metrics.jsonl`` and writes ``summary.json``. Returns the summary."""
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    with make_progress() as progress:
        task = progress.add_task(label, total=target, completed=trainer.nimg)
        if not trainer.is_main:
            progress.stop()
        for row in training_rows(trainer, target):
            if trainer.is_main:
                append_metrics(trainer.out, row)
                text = trainer.progress_text(row)
                progress.update(
                    task, completed=row["nimg"], description=f"{label} {text}" if text else label
                )
    warnings = [trainer.stopped_early] if trainer.stopped_early else []
    if trainer.is_main:
        warnings += [r["warning"] for r in read_metrics(trainer.out) if "warning" in r][:20]
    summary = TrainingSummary(
        nimg=trainer.nimg, steps=trainer.step, train_seconds=trainer.elapsed, started=started,
        last_snapshot=trainer.last_snapshot, warnings=warnings,
        stopped_early=trainer.stopped_early, extra=trainer.summary_extra(),
    )  # fmt: skip
    if trainer.is_main:
        summary.write(trainer.out)
    return summary
