"""``train-seg``: a U-Net on real (+ n synthetic) patients, selected on REAL validation
patients, evaluated on REAL test patients. Resumable; ``results.json`` marks a finished run."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from synthaug.atomic import write_json
from synthaug.data.store import SliceStore
from synthaug.data.synthetic import read_synthetic
from synthaug.errors import SynthaugError
from synthaug.progress import make_progress
from synthaug.seg.evaluate import evaluate_patients, mean_foreground_dice
from synthaug.seg.network import build_unet
from synthaug.seg.presets import seg_preset
from synthaug.torch_io import load_torch, save_torch

RESULTS = "results.json"
SEG_CHECKPOINT = "checkpoint.pt"
SEG_META = "seg.json"


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


def _training_set(opts: SegOptions, store: SliceStore) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Real training slices of the fold + the first n synthetic patients' slices."""
    images, labels = store.arrays(store.split(opts.fold).train)
    n_synthetic_slices = 0
    if opts.n_patients < 0:
        raise SynthaugError(f"n-patients: must be 0 or more, got {opts.n_patients}")
    if opts.n_patients > 0:
        if opts.synthetic is None:
            raise SynthaugError("synthetic: --n-patients > 0 needs --synthetic DIR")
        synthetic = read_synthetic(opts.synthetic, store, limit=opts.n_patients)
        syn_images = np.concatenate([p.images for p in synthetic])
        syn_labels = np.concatenate([p.labels for p in synthetic])
        n_synthetic_slices = len(syn_images)
        images = np.concatenate([images, syn_images])
        labels = np.concatenate([labels, syn_labels])
    return torch.from_numpy(images), torch.from_numpy(labels), n_synthetic_slices


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
        torch.manual_seed(opts.seed)
        self.model = build_unet(store.num_channels, store.num_classes, self.preset).to(device)
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
        }
        self.best_weights = {k: v.clone() for k, v in self.model.state_dict().items()}

    def resume(self) -> None:
        ckpt = load_torch(self.out / SEG_CHECKPOINT)
        self.model.load_state_dict(ckpt["model"])
        self.optimiser.load_state_dict(ckpt["optimiser"])
        self.best_weights = ckpt["best_model"]
        self.g.set_state(ckpt["rng"])
        self.state = ckpt["meta"]

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

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One minibatch; returns its loss."""
        t0 = time.perf_counter()
        self.model.train()
        idx = torch.randint(len(images), (self.preset.batch,), generator=self.g)
        x, y = _flip(images[idx], labels[idx], self.g)
        loss = self.loss_fn(self.model(x.to(self.device)), y.unsqueeze(1).to(self.device))
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
            mean_foreground_dice(evaluate_patients(self.model, store, val, self.device))
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


def _train(run: _Run, opts: SegOptions, store: SliceStore, data: tuple[torch.Tensor, ...]) -> None:
    """Minibatches until the step budget or the early-stopping patience runs out."""
    images, labels = data
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
            loss = run.step(images, labels)
            progress.advance(task)
            if state["step"] % preset.val_every == 0 or state["step"] == max_steps:
                run.validate(store, val, loss)


def train_seg(opts: SegOptions) -> dict:
    """Train, select and evaluate one U-Net; returns (and writes) its results."""
    out = Path(opts.out)
    if (out / RESULTS).is_file():
        return json.loads((out / RESULTS).read_text())
    if (out / SEG_CHECKPOINT).exists() and not opts.resume:
        raise SynthaugError(f"{out}: unfinished run exists; pass --resume to continue it")
    preset = seg_preset(opts.preset)
    store = SliceStore(opts.store)
    split = store.split(opts.fold)
    images, labels, n_syn = _training_set(opts, store)
    run = _Run(opts, store, torch.device(opts.device))
    if (out / SEG_CHECKPOINT).exists():
        run.resume()
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / SEG_META, {**asdict(opts), "preset_values": asdict(preset), "synthetic_slices": n_syn}
    )
    _train(run, opts, store, (images, labels))
    run.model.load_state_dict(run.best_weights)
    t2 = time.perf_counter()
    rows = evaluate_patients(run.model, store, split.test, run.device)
    state = run.state
    results = {
        "fold": opts.fold,
        "seed": opts.seed,
        "n_patients": opts.n_patients,
        "synthetic": opts.synthetic,
        "real_train_patients": len(split.train),
        "real_val_patients": len(split.val),
        "real_train_slices": int(len(images) - n_syn),
        "synthetic_slices": n_syn,
        "steps": state["step"],
        "best_step": state["best_step"],
        "val_dice": state["best_dice"] if split.val else None,
        "test_mean_dice": mean_foreground_dice(rows),
        "train_seconds": round(state["elapsed"], 2),
        "test_seconds": round(time.perf_counter() - t2, 2),
        "history": state["history"],
        "test": rows,
    }
    torch.save(run.best_weights, out / "model.pt.tmp")
    (out / "model.pt.tmp").replace(out / "model.pt")
    write_json(out / RESULTS, results)
    (out / SEG_CHECKPOINT).unlink(missing_ok=True)
    return results
