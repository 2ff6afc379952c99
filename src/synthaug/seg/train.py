"""``train-seg``: a U-Net on real (+ n synthetic) patients, selected on REAL validation
patients, evaluated on REAL test patients. Resumable; ``results.json`` marks a finished run."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from synthaug.atomic import write_json
from synthaug.data.provenance import check_patients, check_provenance, provenance
from synthaug.data.store import SliceStore
from synthaug.data.synthetic import read_synthetic, synthetic_provenance
from synthaug.errors import SynthaugError
from synthaug.precision import autocast, resolve_device, resolve_precision
from synthaug.progress import make_progress
from synthaug.seg.evaluate import evaluate_patients, mean_foreground_dice
from synthaug.seg.network import build_unet
from synthaug.seg.presets import seg_preset
from synthaug.torch_io import load_torch, save_torch

RESULTS = "results.json"
MODEL = "model.pt"  # the best weights (state dict), written when the run ends
SEG_CHECKPOINT = "checkpoint.pt"
SEG_META = "seg.json"


RESULTS_VERSION = 1


@dataclass
class SegResults:
    """A finished U-Net run's ``results.json``: what it trained on, how training ended and
    its Dice (and HD95, NSD) on each REAL test patient and class (``test``: one row each).
    Read and written here only; older runs without a field read with its default."""

    fold: int
    seed: int
    n_patients: int
    test: list[dict]
    test_mean_dice: float
    steps: int
    best_step: int
    real_train_slices: int
    synthetic_slices: int
    train_seconds: float
    repeat: int = 0
    synthetic: str | None = None
    real_train_patients: int | None = None
    real_val_patients: int | None = None
    real_patients: int | None = None  # the subset level; None: the fold's every patient
    synthetic_fraction: float | None = None
    nsd_tolerance: float = 1.0
    precision: str = "fp32"  # runs from before precision were fp32
    max_steps: int | None = None  # None: a run from before the step-cap check
    stopped_by: str = ""
    capped: bool | None = None
    val_dice: float | None = None
    test_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    version: int = RESULTS_VERSION

    def write(self, out: Path | str) -> None:
        write_json(Path(out) / RESULTS, asdict(self))

    @classmethod
    def read(cls, out: Path | str) -> SegResults:
        path = Path(out) / RESULTS
        try:
            raw = json.loads(path.read_text())
            if int(raw.get("version", 0)) > RESULTS_VERSION:
                raise SynthaugError(f"{path}: written by a newer synthaug; upgrade to read it")
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise SynthaugError(f"{path}: not a readable U-Net result ({exc})") from exc


@dataclass
class SegOptions:
    """One U-Net training run (one study cell)."""

    store: str
    fold: int
    out: str
    seed: int = 0
    synthetic: str | None = None
    n_patients: int = 0
    preset: str = "cpu-tiny"
    device: str = "cpu"
    resume: bool = False
    max_steps: int | None = None
    # Share of every minibatch drawn from the synthetic slices (None: uniform over all slices).
    # Holding it fixed keeps the real slices' exposure per step the same for every n.
    synthetic_fraction: float | None = None
    nsd_tolerance: float = 1.0  # pixels: normalised surface Dice on the test patients
    # auto: bf16 autocast where the CPU/GPU runs it fast (synthaug.precision), else fp32.
    # Only the forward pass is autocast; loss, gradients and Adam state stay fp32.
    precision: str | None = "auto"
    # Train on this many of the fold's training patients (the nested subset a study's
    # real-patients level uses); None: all. Validation and test patients are the fold's.
    real_patients: int | None = None


def is_capped(best_step: int, max_steps: int, val_every: int) -> bool:
    """Whether the step cap, not early stopping, decided the model: its best checkpoint is in
    the last validation window before the cap, so validation Dice may still have been rising
    and nothing about the cell's data can be read from it."""
    return best_step > max_steps - val_every


@dataclass(frozen=True)
class TrainingData:
    """A cell's training slices: the fold's real ones and the added synthetic ones."""

    real_images: torch.Tensor  # [N, C, R, R] in [-1, 1]
    real_labels: torch.Tensor  # [N, R, R] class indices
    synthetic_images: torch.Tensor  # [M, C, R, R]; M = 0 for real only
    synthetic_labels: torch.Tensor  # [M, R, R]

    @property
    def synthetic_slices(self) -> int:
        return len(self.synthetic_images)

    @cached_property
    def pooled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and synthetic slices in one (images, labels) pair, built once."""
        return (
            torch.cat([self.real_images, self.synthetic_images]),
            torch.cat([self.real_labels, self.synthetic_labels]),
        )


def _training_set(opts: SegOptions, store: SliceStore, real: list[str]) -> TrainingData:
    """Real training slices of the fold (or its subset) and the first n synthetic patients'
    slices; a synthetic set made from other real patients than these is refused."""
    images, labels = store.training_arrays(real)
    if opts.n_patients < 0:
        raise SynthaugError(f"n-patients: must be 0 or more, got {opts.n_patients}")
    fraction = opts.synthetic_fraction
    if fraction is not None and not 0.0 < fraction < 1.0:
        raise SynthaugError(f"synthetic-fraction: must lie in (0, 1), got {fraction}")
    syn_images = np.zeros((0, *images.shape[1:]), dtype=images.dtype)
    syn_labels = np.zeros((0, *labels.shape[1:]), dtype=labels.dtype)
    if opts.n_patients > 0:
        if opts.synthetic is None:
            raise SynthaugError("synthetic: --n-patients > 0 needs --synthetic DIR")
        recorded = synthetic_provenance(opts.synthetic)
        if recorded is not None:  # a set generated by synthaug: it must be this fold's
            check_provenance(opts.synthetic, "synthetic set", recorded, store, opts.fold)
            check_patients(opts.synthetic, "synthetic set", recorded.get("train_patients"), real)
        synthetic = read_synthetic(opts.synthetic, store, limit=opts.n_patients)
        syn_images = np.concatenate([p.images for p in synthetic])
        syn_labels = np.concatenate([p.labels for p in synthetic])
    return TrainingData(
        torch.from_numpy(images),
        torch.from_numpy(labels),
        torch.from_numpy(syn_images),
        torch.from_numpy(syn_labels),
    )


def _draw(data: TrainingData, batch: int, fraction: float | None, g: torch.Generator):
    """One minibatch's (images, labels): uniform over all slices, or with ``fraction`` of it
    drawn from the synthetic slices and the rest from the real ones."""
    if data.synthetic_slices == 0 or fraction is None:
        pool_x, pool_y = data.pooled
        idx = torch.randint(len(pool_x), (batch,), generator=g)
        return pool_x[idx], pool_y[idx]
    n_syn = min(max(int(round(fraction * batch)), 1), batch - 1)
    real = torch.randint(len(data.real_images), (batch - n_syn,), generator=g)
    syn = torch.randint(data.synthetic_slices, (n_syn,), generator=g)
    x = torch.cat([data.real_images[real], data.synthetic_images[syn]])
    y = torch.cat([data.real_labels[real], data.synthetic_labels[syn]])
    return x, y


def _flip(
    images: torch.Tensor, labels: torch.Tensor, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random left–right flips, the same for image and mask."""
    flip = torch.rand(len(images), generator=g) < 0.5
    images, labels = images.clone(), labels.clone()
    images[flip] = images[flip].flip(-1)
    labels[flip] = labels[flip].flip(-1)
    return images, labels


class _Run:
    """One U-Net run's model, optimiser, data order and progress (what a checkpoint holds)."""

    def __init__(self, opts: SegOptions, store: SliceStore, device: torch.device) -> None:
        self.preset = seg_preset(opts.preset)
        self.out, self.device = Path(opts.out), device
        # The cpu-tiny U-Net's 8-64-channel convolutions gained 1.2x per step from bf16 with
        # AVX512-BF16 alone and lost in the whole loop (benchmarks/precision.py): auto takes
        # bf16 on the CPU only with AMX (1.41x measured there, issue 22).
        self.precision = resolve_precision(opts.precision, device, needs_amx=True)
        torch.manual_seed(opts.seed)
        # channels_last: 1.2x per training step on the CPU in fp32 (benchmarks/precision.py)
        self.model = build_unet(store.num_channels, store.num_classes, self.preset).to(
            device, memory_format=torch.channels_last
        )
        self.optimiser = torch.optim.Adam(
            self.model.parameters(), lr=self.preset.lr, weight_decay=self.preset.weight_decay
        )
        self.loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        self.g = torch.Generator().manual_seed(opts.seed)
        self.state = {
            "step": 0,
            "best_dice": -math.inf,
            "best_step": 0,
            "bad_rounds": 0,
            "history": [],
            "elapsed": 0.0,
            "precision": self.precision,
        }
        self.best_weights = {k: v.clone() for k, v in self.model.state_dict().items()}

    def resume(self) -> None:
        ckpt = load_torch(self.out / SEG_CHECKPOINT)
        self.model.load_state_dict(ckpt["model"])
        self.optimiser.load_state_dict(ckpt["optimiser"])
        self.best_weights = ckpt["best_model"]
        self.g.set_state(ckpt["rng"])
        self.state = ckpt["meta"]
        # a resumed run keeps the precision it started with (auto may resolve otherwise here)
        self.precision = self.state.setdefault("precision", "fp32")

    def checkpoint(self) -> None:
        save_torch(
            self.out / SEG_CHECKPOINT,
            {
                "meta": self.state,
                "model": self.model.state_dict(),
                "optimiser": self.optimiser.state_dict(),
                "best_model": self.best_weights,
                "rng": self.g.get_state(),
            },
        )

    def step(self, data: TrainingData, fraction: float | None) -> float:
        """One minibatch; returns its loss."""
        t0 = time.perf_counter()
        self.model.train()
        x, y = _flip(*_draw(data, self.preset.batch, fraction, self.g), self.g)
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, self.device):
            logits = self.model(x)
        loss = self.loss_fn(logits.float(), y.unsqueeze(1).to(self.device))
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.state["step"] += 1
        self.state["elapsed"] += time.perf_counter() - t0
        return loss.item()

    def validate(self, store: SliceStore, val: list[str], loss: float) -> None:
        """Mean foreground Dice on the REAL validation patients; keeps the best weights."""
        t1 = time.perf_counter()
        state = self.state
        dice = (
            mean_foreground_dice(
                evaluate_patients(self.model, store, val, self.device, surface=False)
            )
            if val
            else -state["step"]
        )
        state["elapsed"] += time.perf_counter() - t1
        state["history"].append({"step": state["step"], "loss": loss, "val_dice": dice})
        if dice > state["best_dice"]:
            state.update(best_dice=dice, best_step=state["step"], bad_rounds=0)
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            state["bad_rounds"] += 1
        self.checkpoint()


def _train(run: _Run, opts: SegOptions, store: SliceStore, data: TrainingData) -> None:
    """Minibatches until the early-stopping patience (or, as a safety net, the step cap) runs
    out."""
    preset, state = run.preset, run.state
    max_steps = opts.max_steps or preset.max_steps
    val = store.split(opts.fold).val
    with make_progress() as progress:
        task = progress.add_task(
            f"train-seg fold {opts.fold} n={opts.n_patients}",
            total=max_steps,
            completed=state["step"],
        )
        while state["step"] < max_steps and state["bad_rounds"] < preset.patience:
            loss = run.step(data, opts.synthetic_fraction)
            progress.advance(task)
            if state["step"] % preset.val_every == 0 or state["step"] == max_steps:
                run.validate(store, val, loss)


def train_seg(opts: SegOptions) -> SegResults:
    """Train, select and evaluate one U-Net; returns (and writes) its results."""
    out = Path(opts.out)
    if (out / RESULTS).is_file():
        return SegResults.read(out)
    if (out / SEG_CHECKPOINT).exists() and not opts.resume:
        raise SynthaugError(f"{out}: unfinished run exists; pass --resume to continue it")
    preset = seg_preset(opts.preset)
    store = SliceStore(opts.store)
    split = store.split(opts.fold)
    real = store.training_patients(opts.fold, opts.real_patients)
    data = _training_set(opts, store, real)
    run = _Run(opts, store, resolve_device(opts.device))
    if (out / SEG_CHECKPOINT).exists():
        run.resume()
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / SEG_META,
        {
            **asdict(opts),
            **provenance(store, opts.fold),
            "preset_values": asdict(preset),
            "synthetic_slices": data.synthetic_slices,
            "precision_used": run.precision,
        },
    )
    _train(run, opts, store, data)
    run.model.load_state_dict(run.best_weights)
    t2 = time.perf_counter()
    rows = evaluate_patients(run.model, store, split.test, run.device, opts.nsd_tolerance)
    state = run.state
    max_steps = opts.max_steps or preset.max_steps
    capped = is_capped(state["best_step"], max_steps, preset.val_every)
    results = SegResults(
        fold=opts.fold,
        repeat=getattr(split, "repeat", 0),
        seed=opts.seed,
        n_patients=opts.n_patients,
        synthetic=opts.synthetic,
        real_train_patients=len(real),
        real_patients=opts.real_patients,
        real_val_patients=len(split.val),
        real_train_slices=len(data.real_images),
        synthetic_slices=data.synthetic_slices,
        synthetic_fraction=opts.synthetic_fraction,
        nsd_tolerance=opts.nsd_tolerance,
        precision=run.precision,
        steps=state["step"],
        best_step=state["best_step"],
        max_steps=max_steps,
        stopped_by="early stopping" if state["step"] < max_steps else "step cap",
        capped=capped,
        val_dice=state["best_dice"] if split.val else None,
        test_mean_dice=mean_foreground_dice(rows),
        train_seconds=round(state["elapsed"], 2),
        test_seconds=round(time.perf_counter() - t2, 2),
        history=state["history"],
        test=rows,
    )
    torch.save(run.best_weights, out / f"{MODEL}.tmp")
    (out / f"{MODEL}.tmp").replace(out / MODEL)
    results.write(out)
    (out / SEG_CHECKPOINT).unlink(missing_ok=True)
    return results
