"""StyleGAN2 training (``train-gan``): the family's trainer on the shared lifecycle.

Reads as a schedule: per minibatch a D step (+ lazy R1 every ``r1_interval``), a G step
(+ path length every ``pl_interval``), the G_ema update and the ADA p update. The objective
itself lives in ``loss.py``, the networks in ``networks.py``, the augmentation in ``augment.py``;
the run folder, resume rule, snapshots' schedule, NaN stop, metrics, progress and summary in
``synthaug.lifecycle``.

Multi-process training runs under ``torchrun`` (gloo on CPU, nccl on GPU): every rank draws
its own share of the global batch, and gradients are averaged with ``torch.distributed``
all-reduce before each optimiser step. That is the collective DDP itself uses; the DDP
wrapper is not used because R1 and path length take double-backward gradients
(``autograd.grad(create_graph=True)``), which DDP's reducer does not support. Rank 0 writes
every artifact.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from synthaug.data.store import SliceStore
from synthaug.diversity import collapsed, pixel_diversity
from synthaug.errors import SynthaugError
from synthaug.gan.augment import AdaptiveAugment, diff_augment
from synthaug.gan.data import TrainingSlices
from synthaug.gan.layers import tune_cpu_allocator
from synthaug.gan.loss import StyleGAN2Loss, ema_beta, lazy_regularization_adam, update_ema
from synthaug.gan.networks import VARIANTS
from synthaug.gan.oasis import OasisLoss
from synthaug.gan.presets import GAN_PRESETS, GanPreset, gan_preset
from synthaug.gan.run import FAMILY, build, layout, preset_of, spec_of
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
from synthaug.torch_io import save_torch

GRID_SAMPLES = 16
COLLAPSE_SAMPLES = 64  # fixed samples per snapshot for the pixel-space collapse check
# D's loss on a tick below this means real and fake are separated almost perfectly (logits
# around ±4 or beyond): G's gradient vanishes and small-data runs collapse or stall next.
D_SEPARATION_LOSS = 0.1


def health_warning(row: dict[str, float]) -> str | None:
    """A warning for a metrics tick whose discriminator has won outright (None if healthy)."""
    d = row.get("d_main", math.nan)
    if not d < D_SEPARATION_LOSS:
        return None
    return (
        f"D separates real from fake almost completely at {row['kimg']:.2f} kimg (D loss "
        f"{d:.3f}, real logit {row.get('real_logits', math.nan):+.1f}, fake logit "
        f"{row.get('fake_logits', math.nan):+.1f}, ADA p {row.get('ada_p', 0):.2f}): the "
        "generator gets little gradient; expect collapse unless augmentation catches up"
    )


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _distributed_from_env(device: torch.device) -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    )


def _average_gradients(module: torch.nn.Module, ddp: Distributed) -> None:
    """All-reduce (mean) the gradients of ``module`` across ranks, in one flat buffer."""
    if ddp.world <= 1:
        return
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= ddp.world
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def _broadcast_state(modules: list[torch.nn.Module], ddp: Distributed) -> None:
    if ddp.world <= 1:
        return
    for module in modules:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def _validate(opts: TrainRequest) -> tuple[GanPreset, SliceStore]:
    if opts.variant not in VARIANTS:
        raise SynthaugError(
            f"variant: unknown variant {opts.variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    check_length(opts)
    preset = with_settings(gan_preset(opts.preset).for_variant(opts.variant), opts.settings)
    if preset.d_architecture == "oasis" and opts.variant != "conditional":
        raise SynthaugError(
            f"d_architecture: the OASIS discriminator labels the pixels of an image with the "
            f"classes of the mask it was painted for; it needs the conditional variant, not "
            f"{opts.variant}"
        )
    if preset.d_architecture == "oasis" and preset.lecam_weight > 0:
        raise SynthaugError(
            "lecam_weight: LeCam acts on a single real/fake logit; the OASIS discriminator "
            "has per-pixel class scores (use LabelMix's labelmix_weight instead)"
        )
    # auto stays fp32 for StyleGAN2 on the CPU: its quality under bf16 is not measured there
    # (benchmarks/precision.py measures the speed); the GPU presets ask for bf16 themselves.
    requested = check_precision(opts.precision) or preset.precision
    preset = replace(
        preset, precision=resolve_precision(requested, opts.device, bf16_keeps_quality=False)
    )
    if opts.snapshot_kimg is not None:
        preset = replace(preset, snapshot_kimg=opts.snapshot_kimg)
    return preset, open_store(opts, preset.resolution, preset.name)


def _grid_inputs(
    data: TrainingSlices, info: RunMeta, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed z and (for the conditional variant) fixed real masks, so grids are comparable."""
    g = torch.Generator().manual_seed(seed + 7919)
    z = torch.randn(GRID_SAMPLES, preset_of(info).z_dim, generator=g)
    return z, data.labels[_grid_reals_index(data)]


@torch.no_grad()
def _save_grid(
    path: Path, G: torch.nn.Module, info: RunMeta, z: torch.Tensor, labels: torch.Tensor
) -> None:
    from synthaug.viz import save_pair_grid

    spec = spec_of(info)
    device = next(G.parameters()).device
    cond = spec.generator_condition(labels.to(device), torch.float32)
    torch.manual_seed(0)
    out = G(z.to(device), cond, noise_mode="const")
    images, masks = spec.split_generated(out.float())
    masks = labels if masks is None else masks
    img = (
        images.clamp(-1, 1).cpu().numpy()
        if images is not None
        else np.zeros((len(z), 0, *labels.shape[1:]), np.float32)
    )
    save_pair_grid(path, img, masks.cpu().numpy(), columns=4)


def _save_reals_grid(path: Path, data: TrainingSlices, labels_idx: torch.Tensor) -> None:
    from synthaug.viz import save_pair_grid

    save_pair_grid(
        path, data.images[labels_idx].numpy(), data.labels[labels_idx].numpy(), columns=4
    )


def _augment(preset: GanPreset) -> AdaptiveAugment:
    """The augmentation every D input goes through, by the preset's policy."""
    if preset.augment_policy == "diffaugment":
        return diff_augment(preset.augment_p, interval=preset.ada_interval)
    return AdaptiveAugment(
        initial_p=preset.ada_p_init,
        target=preset.ada_target,
        speed_kimg=preset.ada_kimg,
        interval=preset.ada_interval,
        cutout=preset.cutout,
    )


def _loss(preset: GanPreset, info: RunMeta, G, D, augment: AdaptiveAugment) -> StyleGAN2Loss:
    """The objective for the preset's discriminator architecture."""
    common = dict(
        r1_gamma=preset.gamma(),
        r1_interval=preset.r1_interval,
        pl_weight=preset.pl_weight,
        pl_interval=preset.pl_interval,
        style_mixing_prob=preset.style_mixing,
    )
    if preset.d_architecture == "oasis":
        return OasisLoss(
            G, D, spec_of(info), augment, labelmix_weight=preset.labelmix_weight, **common
        )
    return StyleGAN2Loss(
        G,
        D,
        spec_of(info),
        augment,
        lecam_weight=preset.lecam_weight,
        lecam_decay=preset.lecam_decay,
        **common,
    )


@dataclass(frozen=True)
class StepPhase:
    """One phase of a training step, as in stylegan2-ada's loop: which network it steps, its
    loss, when it is due (the regularisers are lazy) and whether the loss is autocast (the
    main losses; R1 and path length stay fp32). ``total``: its metrics name, "" for none."""

    name: str
    trains: str  # "D" or "G"
    loss: Callable[[_Trainer, torch.Tensor | None, torch.Tensor], torch.Tensor]
    due: Callable[[_Trainer], bool]
    autocast: bool
    total: str = ""


# In this order: D first, each network's main loss before its regulariser.
STEP_PHASES = (
    StepPhase("D main", "D", lambda t, x, y: t.loss.d_loss(x, y), lambda t: True, True, "d_total"),
    StepPhase(
        "D R1", "D", lambda t, x, y: t.loss.d_loss(x, y, do_main=False, do_r1=True),
        lambda t: t.loss.d_regularised and t.step % t.preset.r1_interval == 0, False,
    ),
    StepPhase(
        "G main", "G", lambda t, x, y: t.loss.g_loss(labels=y, batch_size=t.batch_per_rank),
        lambda t: True, True, "g_total",
    ),
    StepPhase(
        "G path length", "G",
        lambda t, x, y: t.loss.g_loss(
            labels=y, batch_size=t.batch_per_rank, do_main=False, do_pl=True
        ),
        lambda t: t.preset.pl_weight > 0 and t.step % t.preset.pl_interval == 0, False,
    ),
)  # fmt: skip


class _Trainer(Trainer):
    """The networks, optimisers, augmentation and data of one run (the lifecycle's hooks)."""

    divergence_hint = "Lower the learning rate or raise R1 gamma."

    def __init__(
        self,
        opts: TrainRequest,
        info: RunMeta,
        data: TrainingSlices,
        device: torch.device,
        ddp: Distributed,
    ) -> None:
        preset = preset_of(info)
        super().__init__(layout(opts.out), info, preset.snapshot_kimg)
        self.opts, self.preset, self.info, self.data = opts, preset, info, data
        self.device, self.ddp, self.is_main = device, ddp, ddp.is_main
        self.spec = spec_of(info)
        torch.manual_seed(opts.seed)  # identical initial weights on every rank
        G, D = build(info)
        self.G, self.D = G.to(device), D.to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.augment = _augment(preset).to(device)
        self.loss = _loss(preset, info, self.G, self.D, self.augment)
        self.loss.path_length.to(device)
        self.loss.lecam.to(device)
        g_lr, g_betas = lazy_regularization_adam(
            preset.lr, preset.betas, preset.pl_interval if preset.pl_weight > 0 else None
        )
        d_lr, d_betas = lazy_regularization_adam(
            preset.lr * preset.d_lr_scale,
            preset.betas,
            preset.r1_interval if self.loss.d_regularised else None,
        )
        self.ema_kimg = (
            preset.ema_run_fraction * opts.kimg if preset.ema_run_fraction else preset.ema_kimg
        )
        # Fused Adam: one kernel per step instead of a loop over parameters; 3-10 % more
        # training img/s on the CPU (benchmarks/gan_throughput.py --ab, docs/gan_architectures.md).
        fused = device.type == "cpu"
        self.opt_G = torch.optim.Adam(
            self.G.parameters(), lr=g_lr, betas=g_betas, eps=1e-8, fused=fused
        )
        self.opt_D = torch.optim.Adam(
            self.D.parameters(), lr=d_lr, betas=d_betas, eps=1e-8, fused=fused
        )
        self.batch_per_rank = preset.batch // ddp.world
        self.data_rng = torch.Generator().manual_seed(opts.seed * 65537 + ddp.rank)
        self.grid_z, self.grid_labels = _grid_inputs(data, info, opts.seed)
        self.diversity_log: list[dict[str, float]] = []

    # ---------------------------------------------------------------- state
    def family_state(self) -> dict:
        return {
            "meta": {  # the lifecycle adds variant, nimg and step
                "resolution": self.info.resolution,
                "labels": self.info.labels,
                "modalities": self.info.modalities,
            },
            "G": self.G.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "augment": self.augment.state_dict(),
            "augment_steps": self.augment.steps_since_update,
            "pl": self.loss.path_length.state_dict(),
            "lecam": self.loss.lecam.state_dict(),
            "diversity_log": self.diversity_log,
            "rng": {"torch": torch.get_rng_state(), "data": self.data_rng.get_state()},
        }

    def load_family_state(self, state: dict) -> None:
        meta = state["meta"]
        if (
            meta.get("variant") != self.info.variant
            or meta.get("resolution") != self.info.resolution
        ):
            raise SynthaugError(
                f"{self.layout.checkpoint}: checkpoint is {meta.get('variant')} at {meta.get('resolution')} px, "
                f"this run is {self.info.variant} at {self.info.resolution} px"
            )
        try:
            self.G.load_state_dict(state["G"])
            self.G_ema.load_state_dict(state["G_ema"])
            self.D.load_state_dict(state["D"])
            self.opt_G.load_state_dict(state["opt_G"])
            self.opt_D.load_state_dict(state["opt_D"])
            self.augment.load_state_dict(state["augment"])
            self.augment.steps_since_update = int(state.get("augment_steps", 0))
            self.loss.path_length.load_state_dict(state["pl"])
            if "lecam" in state:  # checkpoints from before LeCam have none
                self.loss.lecam.load_state_dict(state["lecam"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise SynthaugError(
                f"{self.layout.checkpoint}: does not fit this run's networks ({str(exc)[:160]})"
            ) from exc
        self.diversity_log = list(state.get("diversity_log", []))
        if self.ddp.world == self.info.world_size:
            torch.set_rng_state(state["rng"]["torch"])
            self.data_rng.set_state(state["rng"]["data"])

    # ---------------------------------------------------------------- one minibatch
    def train_step(self) -> dict[str, float]:
        images, labels = self.data.sample(self.batch_per_rank, self.data_rng, self.device)
        img_in = None if self.info.variant == "mask" else images
        stats: dict[str, torch.Tensor] = {}
        for phase in STEP_PHASES:
            if phase.due(self):
                loss = self._run_phase(phase, img_in, labels)
                stats.update(self.loss.stats)
                if phase.total:
                    stats[phase.total] = loss
        self.check_finite(stats)  # before G_ema takes a step

        self.nimg += self.preset.batch
        self.step += 1
        update_ema(
            self.G_ema,
            self.G,
            ema_beta(self.preset.batch, self.nimg, self.ema_kimg, self.preset.ema_rampup),
        )
        if self.augment.update_due:
            if self.ddp.world > 1:
                dist.all_reduce(self.augment.sign_sum)
                dist.all_reduce(self.augment.sign_count)
            p, r_t = self.augment.update()
            stats["ada_rt"] = torch.tensor(r_t)
        return {k: float(v) for k, v in stats.items()}

    def _run_phase(
        self, phase: StepPhase, images: torch.Tensor | None, labels: torch.Tensor
    ) -> torch.Tensor:
        """One optimiser step of D or G on one phase's loss; returns the loss (detached)."""
        net, other, opt = (
            (self.D, self.G, self.opt_D) if phase.trains == "D" else (self.G, self.D, self.opt_G)
        )
        other.requires_grad_(False)
        net.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        bf16 = phase.autocast and self.preset.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = phase.loss(self, images, labels)
        loss.backward()
        _average_gradients(net, self.ddp)
        opt.step()
        return loss.detach()

    # ---------------------------------------------------------------- collapse
    @torch.no_grad()
    def check_collapse(self) -> None:
        """Score G_ema's pixel diversity on fixed samples; after ``collapse_patience``
        collapsed snapshots in a row, set ``stopped_early`` (the loop then ends)."""
        spec, data = self.spec, self.data
        g = torch.Generator().manual_seed(self.opts.seed + 104729)
        z = torch.randn(COLLAPSE_SAMPLES, self.G.z_dim, generator=g).to(self.device)
        index = torch.linspace(0, len(data) - 1, COLLAPSE_SAMPLES).round().long()
        real_images, real_labels = data.images[index], data.labels[index]
        cond = spec.generator_condition(real_labels.to(self.device), torch.float32)
        images, masks = spec.split_generated(self.G_ema(z, cond, noise_mode="const").float())
        diversity = pixel_diversity(
            None if images is None else images.cpu(),
            None if masks is None else masks.cpu(),
            None if images is None else real_images,
            None if masks is None else real_labels,
            spec.num_classes,
        )
        self.diversity_log.append({"kimg": self.nimg / 1000, "pixel_diversity": diversity})
        patience = self.preset.collapse_patience
        recent = self.diversity_log[-patience:] if patience else []
        if (
            patience
            and len(recent) == patience
            and all(collapsed(r["pixel_diversity"]) for r in recent)
        ):
            values = ", ".join(f"{r['pixel_diversity']:.2f}" for r in recent)
            self.stopped_early = (
                f"stopped at {self.nimg / 1000:.2f} kimg: the last {patience} snapshots collapsed "
                f"(pixel diversity {values} of real slices); earlier snapshots are kept and the "
                "best usable one is chosen"
            )

    # ---------------------------------------------------------------- lifecycle hooks
    def before_snapshot(self) -> None:
        self.check_collapse()

    def save_snapshot(self, path: Path) -> None:
        _save_grid(
            self.layout.grid(self.nimg), self.G_ema, self.info, self.grid_z, self.grid_labels
        )
        meta = {"variant": self.info.variant, "resolution": self.info.resolution, "nimg": self.nimg}
        save_torch(path, {"meta": meta, "G_ema": self.G_ema.state_dict()})

    def after_snapshot(self) -> None:
        if self.ddp.world > 1:  # every rank stops together
            flag = torch.tensor([float(self.stopped_early is not None)], device=self.device)
            dist.broadcast(flag, src=0)
            if flag.item() and self.stopped_early is None:
                self.stopped_early = "stopped by rank 0 (collapse)"

    def tick_fields(self) -> dict[str, float]:
        return {"ada_p": float(self.augment.p)}

    def row_warning(self, row: dict[str, float]) -> str | None:
        return health_warning(row)

    def progress_text(self, row: dict[str, float]) -> str:
        return (
            f"[dim]D {row.get('d_main', math.nan):.2f} G {row.get('g_main', math.nan):.2f} "
            f"p {row['ada_p']:.2f} {row['img_per_s']:.0f} img/s[/]"
        )

    def summary_extra(self) -> dict:
        extra = {"world_size": self.ddp.world, "snapshot_diversity": self.diversity_log}
        if self.ddp.world > 1:  # a collective: every rank takes part
            extra["rank_max_param_diff"] = _rank_param_spread(self.G, self.ddp)
        return extra


def _setup(opts: TrainRequest) -> _Trainer:
    """The run's trainer, resumed from its checkpoint when asked; run.json written."""
    preset, store = _validate(opts)
    device = resolve_device(opts.device)
    if device.type == "cpu":
        tune_cpu_allocator()  # keep large activations on glibc's heap (see its docstring)
    ddp = _distributed_from_env(device)
    if device.type == "cuda":
        torch.cuda.set_device(ddp.local_rank)
        device = torch.device("cuda", ddp.local_rank)
    if preset.batch % ddp.world:
        raise SynthaugError(f"batch: {preset.batch} is not divisible by {ddp.world} processes")
    out = Path(opts.out)
    meta = new_meta(opts, FAMILY, store, preset, ddp.world)
    if ddp.is_main:  # rank 0 applies the resume rule and writes run.json …
        meta = open_run(opts, layout(out), meta, GAN_PRESETS.from_record)
    if ddp.world > 1:
        dist.barrier()  # … and the other ranks read what it decided (never race it)
        if not ddp.is_main:
            meta = RunMeta.read(out, FAMILY)
    data = TrainingSlices.of(store, meta.train_patients)
    trainer = _Trainer(opts, meta, data, device, ddp)
    if opts.resume:
        resume_checkpoint(trainer)
    if ddp.is_main and trainer.nimg == 0:
        _save_reals_grid(trainer.layout.grids / "reals.png", data, _grid_reals_index(data))
    _broadcast_state([trainer.G, trainer.D, trainer.G_ema], ddp)
    return trainer


def train(opts: TrainRequest) -> Path:
    """Train a generator for ``opts.variant`` on fold ``opts.fold``'s training patients.

    Writes the run directory ``opts.out`` (``synthaug.lifecycle``); with ``opts.resume``
    continues from its last checkpoint. Returns the run directory.
    """
    trainer = _setup(opts)
    label = f"train-gan {opts.variant}"
    train_run(trainer, target_images(opts.kimg, trainer.preset.batch), label)
    return trainer.out


def _grid_reals_index(data: TrainingSlices) -> torch.Tensor:
    """GRID_SAMPLES training slices spread over the set, preferring slices with foreground."""
    has_fg = torch.nonzero((data.labels > 0).flatten(1).any(dim=1)).flatten()
    pool = has_fg if len(has_fg) >= GRID_SAMPLES else torch.arange(len(data))
    return pool[torch.linspace(0, len(pool) - 1, GRID_SAMPLES).round().long()]


def _rank_param_spread(module: torch.nn.Module, ddp: Distributed) -> float:
    """Largest absolute difference of any parameter between this rank and any other."""
    flat = torch.cat([p.detach().flatten() for p in module.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(ddp.world)]
    dist.all_gather(gathered, flat)
    return float(max((g - flat).abs().max() for g in gathered))
