"""Training a mask-conditional (or joint) diffusion model on one fold's training patients.

Per minibatch: a mask-aligned augmentation, a random timestep per sample, noise added by the
DDPM schedule, the denoiser's prediction through MONAI's ``DiffusionInferer`` (the mask
concatenated to the noisy image; replaced by "no mask" with probability ``cond_dropout``), an
MSE loss against the preset's target (ε, v or x0), an AdamW step and the EMA update.
Snapshots hold the EMA weights; the run folder, resume, NaN stop, metrics, progress and
summary are the lifecycle's (``synthaug.lifecycle``).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.inferers import DiffusionInferer

from synthaug.data.store import SliceStore
from synthaug.diffusion.augment import augment
from synthaug.diffusion.networks import NO_MASK, VARIANTS, training_scheduler
from synthaug.diffusion.presets import (
    DIFFUSION_PRESETS,
    PREDICTIONS,
    DiffusionPreset,
    diffusion_preset,
)
from synthaug.diffusion.run import FAMILY, build, layout, preset_of, spec_of
from synthaug.diffusion.sample import denoise
from synthaug.errors import SynthaugError
from synthaug.generator import RunMeta, TrainRequest, with_settings
from synthaug.lifecycle import (
    Trainer,
    check_length,
    new_meta,
    open_run,
    open_store,
    resume_checkpoint,
    target_images,
    train_run,
)
from synthaug.precision import check_precision, resolve_device, resolve_precision

# Whether ``auto`` may pick bf16 for the denoiser (benchmarks/precision.py, docs/performance.md).
BF16_KEEPS_QUALITY = True
GRID_SAMPLES = 16


def _validate(opts: TrainRequest) -> tuple[DiffusionPreset, SliceStore]:
    if opts.variant not in VARIANTS:
        raise SynthaugError(
            f"variant: unknown diffusion variant {opts.variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    check_length(opts)
    preset = with_settings(diffusion_preset(opts.preset), opts.settings)
    if preset.prediction not in PREDICTIONS:
        raise SynthaugError(f"preset {preset.name}: prediction {preset.prediction!r} is unknown")
    if opts.snapshot_kimg is not None:
        preset = replace(preset, snapshot_kimg=opts.snapshot_kimg)
    requested = check_precision(opts.precision) or preset.precision
    preset = replace(
        preset, precision=resolve_precision(requested, opts.device, BF16_KEEPS_QUALITY)
    )
    if opts.sample_steps is not None:
        preset = replace(preset, sample_steps=opts.sample_steps)
    return preset, open_store(opts, preset.resolution, preset.name)


class _Trainer(Trainer):
    """The denoiser, its EMA, the optimiser and the data of one run."""

    def __init__(self, meta: RunMeta, store: SliceStore, out: Path, device: torch.device):
        self.preset = preset_of(meta)
        super().__init__(layout(out), meta, self.preset.snapshot_kimg)
        self.device = device
        self.spec = spec_of(meta)
        torch.manual_seed(meta.seed)
        self.model = build(meta).to(device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=self.preset.lr, weight_decay=self.preset.weight_decay
        )
        self.scheduler = training_scheduler(self.preset)
        self.inferer = DiffusionInferer(self.scheduler)
        images, labels = store.training_arrays(meta.train_patients)
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)
        self.rng = torch.Generator().manual_seed(meta.seed * 65537 + 1)
        idx = torch.linspace(0, len(self.labels) - 1, GRID_SAMPLES).round().long()
        self.grid_masks = self.labels[idx]

    # ------------------------------------------------------------------ state
    def family_state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "data": self.rng.get_state()},
        }

    def load_family_state(self, state: dict) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["opt"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise SynthaugError(
                f"{self.layout.checkpoint}: does not fit this run's denoiser ({str(exc)[:160]})"
            ) from exc
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

    def train_step(self) -> dict[str, float]:
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
        self.check_finite({"loss": loss})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.nimg += len(x0)
        self.step += 1
        self._update_ema(len(x0))
        return {"loss": loss.item()}

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        beta = 0.5 ** (batch / max(self.preset.ema_halflife_kimg * 1000, 1e-8))
        for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - beta)

    # ------------------------------------------------------------------ artifacts
    def save_snapshot(self, path: Path) -> None:
        from synthaug.torch_io import save_torch
        from synthaug.viz import save_pair_grid

        images, masks = denoise(
            self.ema, self.spec, self.preset, GRID_SAMPLES, seed=7919, masks=self.grid_masks
        )
        masks = self.grid_masks if masks is None else masks
        save_pair_grid(self.layout.grid(self.nimg), images.numpy(), masks.numpy(), 4)
        meta = {"variant": self.meta.variant, "resolution": self.meta.resolution, "nimg": self.nimg}
        save_torch(path, {"meta": meta, "ema": self.ema.state_dict()})


def train(opts: TrainRequest) -> Path:
    """Train (or resume) a diffusion run; returns the run folder."""
    preset, store = _validate(opts)
    out = Path(opts.out)
    meta = open_run(
        opts, layout(out), new_meta(opts, FAMILY, store, preset), DIFFUSION_PRESETS.from_record
    )
    trainer = _Trainer(meta, store, out, resolve_device(opts.device))
    resume_checkpoint(trainer)
    train_run(
        trainer, target_images(opts.kimg, trainer.preset.batch), f"train diffusion {opts.variant}"
    )
    return out
