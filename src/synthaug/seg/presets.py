"""U-Net presets: network size and training schedule of the downstream segmentation model."""

from __future__ import annotations

from dataclasses import dataclass

from synthaug.errors import SynthaugError


@dataclass(frozen=True)
class SegPreset:
    """U-Net (MONAI) size and training schedule of the downstream segmentation model.

    Training runs ``max_steps`` minibatches at most, validates on REAL validation patients every
    ``val_every`` steps, keeps the best model by mean foreground Dice and stops early after
    ``patience`` validations without improvement.
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


SEG_PRESETS: dict[str, SegPreset] = {
    p.name: p
    for p in (
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
            batch=16,
            lr=2e-3,
            max_steps=400,
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
            max_steps=2000,
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
    )
}


def seg_preset(name: str) -> SegPreset:
    try:
        return SEG_PRESETS[name]
    except KeyError:
        raise SynthaugError(
            f"preset: unknown segmentation preset {name!r}; choose one of {', '.join(SEG_PRESETS)}"
        ) from None
