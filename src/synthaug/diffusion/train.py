"""Training a mask-conditional (or joint) diffusion model on one fold's training patients.

Per minibatch: a mask-aligned augmentation, a random timestep per sample, noise added by the
DDPM schedule, the denoiser's prediction through MONAI's ``DiffusionInferer`` (the mask
concatenated to the noisy image; replaced by "no mask" with probability ``cond_dropout``), an
MSE loss against the preset's target (ε, v or x0), an AdamW step and the EMA update.
Snapshots hold the EMA weights; resume, atomic files, NaN stop and progress follow
``train-gan``'s conventions.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import DiffusionInferer

from synthaug.atomic import write_json
from synthaug.data.provenance import trained_on
from synthaug.data.store import SliceStore
from synthaug.diffusion.augment import augment
from synthaug.diffusion.networks import NO_MASK, VARIANTS, training_scheduler
from synthaug.diffusion.presets import PREDICTIONS, DiffusionPreset, diffusion_preset
from synthaug.diffusion.run import (
    CHECKPOINT,
    GRID_DIR,
    RUN_META,
    SUMMARY,
    DiffusionRunInfo,
    snapshot_path,
)
from synthaug.diffusion.sample import denoise
from synthaug.errors import SynthaugError
from synthaug.generator import TrainRequest, refuse_changed_settings, with_settings
from synthaug.precision import check_precision, resolve_device, resolve_precision
from synthaug.progress import make_progress
from synthaug.runlog import append_metrics, read_metrics, rewrite_metrics
from synthaug.torch_io import load_torch, save_torch

TICK_KIMG = 0.25
# Whether ``auto`` may pick bf16 for the denoiser (benchmarks/precision.py, docs/performance.md).
BF16_KEEPS_QUALITY = True
GRID_SAMPLES = 16


def _validate(opts: TrainRequest) -> tuple[DiffusionPreset, SliceStore]:
    if opts.variant not in VARIANTS:
        raise SynthaugError(
            f"variant: unknown diffusion variant {opts.variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    preset = with_settings(diffusion_preset(opts.preset), opts.settings)
    if preset.prediction not in PREDICTIONS:
        raise SynthaugError(f"preset {preset.name}: prediction {preset.prediction!r} is unknown")
    if opts.kimg <= 0:
        raise SynthaugError(f"kimg: must be positive, got {opts.kimg}")
    if opts.snapshot_kimg is not None:
        if opts.snapshot_kimg <= 0:
            raise SynthaugError(f"snapshot-kimg: must be positive, got {opts.snapshot_kimg}")
        preset = replace(preset, snapshot_kimg=opts.snapshot_kimg)
    requested = check_precision(opts.precision) or preset.precision
    preset = replace(
        preset, precision=resolve_precision(requested, opts.device, BF16_KEEPS_QUALITY)
    )
    if opts.sample_steps is not None:
        if opts.sample_steps < 1:
            raise SynthaugError(f"sample-steps: must be at least 1, got {opts.sample_steps}")
        preset = replace(preset, sample_steps=opts.sample_steps)
    store = SliceStore(opts.store)
    store.split(opts.fold)  # raises for a missing fold
    if store.resolution != preset.resolution:
        raise SynthaugError(
            f"{opts.store}: store resolution {store.resolution} differs from preset "
            f"{preset.name}'s {preset.resolution}; pick a preset for {store.resolution}"
        )
    return preset, store


def _run_info(opts: TrainRequest, preset: DiffusionPreset, store: SliceStore) -> DiffusionRunInfo:
    return DiffusionRunInfo(
        variant=opts.variant,
        preset=asdict(preset),
        **trained_on(store, opts.fold, store.split(opts.fold).train),
        seed=opts.seed,
        kimg=opts.kimg,
    )


class _Trainer:
    """The denoiser, its EMA, the optimiser, the data and the progress of one run."""

    def __init__(self, info: DiffusionRunInfo, store: SliceStore, out: Path, device: torch.device):
        self.info, self.out, self.device = info, out, device
        self.preset = info.diffusion_preset()
        self.spec = info.spec
        torch.manual_seed(info.seed)
        self.model = info.build().to(device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=self.preset.lr, weight_decay=self.preset.weight_decay
        )
        self.scheduler = training_scheduler(self.preset)
        self.inferer = DiffusionInferer(self.scheduler)
        images, labels = store.training_arrays(info.train_patients)
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)
        self.rng = torch.Generator().manual_seed(info.seed * 65537 + 1)
        self.nimg, self.step, self.elapsed = 0, 0, 0.0
        self.last_snapshot: str | None = None
        idx = torch.linspace(0, len(self.labels) - 1, GRID_SAMPLES).round().long()
        self.grid_masks = self.labels[idx]

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {
            "meta": {"variant": self.info.variant, "nimg": self.nimg, "step": self.step},
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "elapsed": self.elapsed,
            "last_snapshot": self.last_snapshot,
            "rng": {"torch": torch.get_rng_state(), "data": self.rng.get_state()},
        }

    def load(self, state: dict) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["opt"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise SynthaugError(
                f"{self.out / CHECKPOINT}: does not fit this run's denoiser ({str(exc)[:160]})"
            ) from exc
        self.nimg, self.step = int(state["meta"]["nimg"]), int(state["meta"]["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.last_snapshot = state.get("last_snapshot")
        torch.set_rng_state(state["rng"]["torch"])
        self.rng.set_state(state["rng"]["data"])

    # ------------------------------------------------------------------ one minibatch
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(len(self.images), (self.preset.batch,), generator=self.rng)
        images, labels = augment(
            self.images[idx], self.labels[idx], self.preset.augment_p, self.rng
        )
        x0 = self.spec.targets(images, labels)
        cond = self.spec.condition(labels)
        if cond is not None and self.preset.cond_dropout > 0:
            drop = torch.rand(len(cond), generator=self.rng) < self.preset.cond_dropout
            cond[drop] = NO_MASK
        return x0.to(self.device), None if cond is None else cond.to(self.device)

    def _target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.preset.prediction == "epsilon":
            return noise
        if self.preset.prediction == "v_prediction":
            return self.scheduler.get_velocity(x0, noise, t)
        return x0

    def train_step(self) -> float:
        x0, cond = self._batch()
        noise = torch.randn(x0.shape, generator=self.rng).to(self.device)
        t = torch.randint(0, self.preset.timesteps, (len(x0),), generator=self.rng).to(self.device)
        autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.preset.precision == "bf16"
        )
        with autocast:
            pred = self.inferer(
                inputs=x0, diffusion_model=self.model, noise=noise, timesteps=t, condition=cond,
                mode="concat" if cond is not None else "crossattn",
            )  # fmt: skip
        loss = F.mse_loss(pred.float(), self._target(x0, noise, t))
        if not torch.isfinite(loss):
            kept = self.last_snapshot or "no snapshot was written yet"
            raise SynthaugError(
                f"training diverged at {self.nimg / 1000:.2f} kimg: loss is {float(loss)}; "
                f"the last good snapshot ({kept}) is kept. Lower the learning rate."
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.nimg += len(x0)
        self.step += 1
        self._update_ema(len(x0))
        return loss.item()

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        beta = 0.5 ** (batch / max(self.preset.ema_halflife_kimg * 1000, 1e-8))
        for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - beta)

    # ------------------------------------------------------------------ artifacts
    def snapshot(self) -> None:
        from synthaug.viz import save_pair_grid

        images, masks = denoise(
            self.ema, self.spec, self.preset, GRID_SAMPLES, seed=7919, masks=self.grid_masks
        )
        masks = self.grid_masks if masks is None else masks
        save_pair_grid(
            self.out / GRID_DIR / f"samples-{self.nimg:09d}.png", images.numpy(), masks.numpy(), 4
        )
        snap = snapshot_path(self.out, self.nimg)
        meta = {"variant": self.info.variant, "resolution": self.info.resolution, "nimg": self.nimg}
        save_torch(snap, {"meta": meta, "ema": self.ema.state_dict()})
        self.last_snapshot = str(snap)
        save_torch(self.out / CHECKPOINT, self.state())  # last: a resume point implies its snapshot

    def run(self, target: int) -> Iterator[dict]:
        """Train until ``target`` images; yields one metrics row per tick."""
        snapshot_every = int(self.preset.snapshot_kimg * 1000)
        tick_every = int(TICK_KIMG * 1000)
        next_snapshot = (self.nimg // snapshot_every + 1) * snapshot_every
        next_tick = (self.nimg // tick_every + 1) * tick_every
        losses: list[float] = []
        tick_start, tick_nimg = time.perf_counter(), self.nimg
        while self.nimg < target:
            t0 = time.perf_counter()
            losses.append(self.train_step())
            self.elapsed += time.perf_counter() - t0
            if self.nimg >= next_tick or self.nimg >= target:
                now = time.perf_counter()
                yield {
                    "nimg": self.nimg, "kimg": round(self.nimg / 1000, 3), "step": self.step,
                    "loss": float(np.mean(losses)),
                    "img_per_s": (self.nimg - tick_nimg) / max(now - tick_start, 1e-9),
                    "elapsed_s": round(self.elapsed, 2),
                }  # fmt: skip
                losses, tick_start, tick_nimg = [], now, self.nimg
                next_tick += tick_every
            if self.nimg >= next_snapshot or self.nimg >= target:
                self.snapshot()
                next_snapshot += snapshot_every


def _setup(opts: TrainRequest) -> _Trainer:
    preset, store = _validate(opts)
    out = Path(opts.out)
    if (out / RUN_META).exists() and not opts.resume:
        raise SynthaugError(
            f"{out}: run already exists; pass --resume to continue it or choose another --out"
        )
    info = _run_info(opts, preset, store)
    if opts.resume and (out / RUN_META).exists():
        previous = DiffusionRunInfo.read(out)
        for field in ("variant", "fold", "store", "resolution", "store_fingerprint"):
            if getattr(previous, field) != getattr(info, field):
                raise SynthaugError(
                    f"{out}: was trained with {field}={getattr(previous, field)!r}, "
                    f"not {getattr(info, field)!r}"
                )
        steps = previous.preset.get("sample_steps")
        if opts.sample_steps is not None and opts.sample_steps != steps:
            # its snapshots were scored with the run's sampler: another would make them stale
            raise SynthaugError(
                f"{out}: was started with sample_steps={steps}, not {opts.sample_steps}"
            )
        refuse_changed_settings(out, previous.diffusion_preset(), opts.settings)
        info.preset = previous.preset  # the run's hyper-parameters stay those it started with
    trainer = _Trainer(info, store, out, resolve_device(opts.device))
    if opts.resume and (out / CHECKPOINT).exists():
        trainer.load(load_torch(out / CHECKPOINT))
        rewrite_metrics(out, read_metrics(out, up_to_nimg=trainer.nimg))
    info.kimg = opts.kimg
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_META, info.to_dict())
    return trainer


def train(opts: TrainRequest) -> Path:
    """Train (or resume) a diffusion run; returns the run folder."""
    trainer = _setup(opts)
    out, batch = trainer.out, trainer.preset.batch
    target = int(math.ceil(opts.kimg * 1000 / batch)) * batch
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    with make_progress() as progress:
        task = progress.add_task(f"train diffusion {opts.variant}", total=target,
                                 completed=trainer.nimg)  # fmt: skip
        for row in trainer.run(target):
            append_metrics(out, row)
            progress.update(task, completed=row["nimg"])
    write_json(
        out / SUMMARY,
        {
            "kimg": trainer.nimg / 1000, "nimg": trainer.nimg, "steps": trainer.step,
            "train_seconds": round(trainer.elapsed, 1), "started": started,
            "img_per_s": round(trainer.nimg / max(trainer.elapsed, 1e-9), 2),
            "last_snapshot": trainer.last_snapshot, "warnings": [],
        },
    )  # fmt: skip
    return out
