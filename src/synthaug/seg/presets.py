"""U-Net presets: network size and training schedule of the downstream segmentation model."""

from __future__ import annotations

from dataclasses import dataclass

from synthaug.generator import PresetRegistry


@dataclass(frozen=True)
class SegPreset:
    """U-Net (MONAI) size and training schedule of the downstream segmentation model.

    Training validates on REAL validation patients every ``val_every`` steps, keeps the best
    model by mean foreground Dice and stops after ``patience`` validations without
    improvement. ``max_steps`` is a safety net that early stopping should always beat: a run
    whose best model is at the cap is flagged ``capped`` and no gain or harm is drawn from it
    (with one step budget for every n, a U-Net with more synthetic slices sees each real one
    less often, so the budget alone could make synthetic data look harmful).
    """

    name: str
    channels: tuple[int, ...]
    strides: tuple[int, ...]
    num_res_units: int
    batch: int
    lr: float
    max_steps: int
    val_every: int
    patience: int
    weight_decay: float = 1e-5


SEG_PRESETS: PresetRegistry[SegPreset] = PresetRegistry(
    "segmentation",
    (
        SegPreset(
            "cpu-micro",
            (8, 16, 32),
            (2, 2),
            0,
            batch=8,
            lr=3e-3,
            max_steps=120,
            val_every=40,
            patience=3,
        ),
        SegPreset(
            "cpu-tiny",
            (8, 16, 32, 64),
            (2, 2, 2),
            1,
            # Batch 8 at lr 4e-3 against the earlier 16 at 2e-3 (real-only phantom runs, folds
            # 0-1, benchmarks/seg_budget.py): validation Dice +0.06 on tissue and level on
            # lesion, in 0.55-0.6x the time; early stopping ended them at 600-1500 steps (best
            # 400-1300), so the cap leaves more than twice that.
            batch=8,
            lr=4e-3,
            max_steps=4000,
            val_every=50,
            patience=4,
        ),
        SegPreset(
            "cpu-small",
            (16, 32, 64, 128),
            (2, 2, 2),
            1,
            batch=16,
            lr=1e-3,
            max_steps=8000,
            val_every=100,
            patience=5,
        ),
        SegPreset(
            "gpu-256",
            (32, 64, 128, 256, 512),
            (2, 2, 2, 2),
            2,
            batch=32,
            lr=1e-3,
            max_steps=20000,
            val_every=500,
            patience=8,
        ),
    ),
)


def seg_preset(name: str) -> SegPreset:
    return SEG_PRESETS.named(name)
