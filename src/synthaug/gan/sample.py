"""Sampling a trained StyleGAN2 generator: load a snapshot's G_ema, draw slices from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthaug.errors import SynthaugError
from synthaug.gan.networks import Generator, masks_to_onehot
from synthaug.gan.run import build, layout, read_meta, spec_of
from synthaug.generator import Outputs, RunMeta
from synthaug.precision import autocast
from synthaug.torch_io import load_torch


@dataclass
class LoadedGenerator:
    """A run's G_ema in eval mode with its metadata."""

    generator: Generator
    info: RunMeta
    snapshot: Path


def latest_snapshot(run: Path | str) -> Path:
    """The run's newest snapshot (else its training checkpoint)."""
    files = layout(run)
    snaps = files.snapshot_files()
    return snaps[-1] if snaps else files.checkpoint


def load_generator(run: Path | str, snapshot: Path | str | None = None) -> LoadedGenerator:
    """Load G_ema of a run: the named snapshot, else the latest one (else checkpoint.pt)."""
    run = Path(run)
    info = read_meta(run)
    snapshot = Path(snapshot) if snapshot is not None else latest_snapshot(run)
    state = load_torch(snapshot)
    meta = state["meta"]
    if meta.get("variant") != info.variant or meta.get("resolution") != info.resolution:
        raise SynthaugError(
            f"{snapshot}: checkpoint is {meta.get('variant')} at {meta.get('resolution')} px, "
            f"but {run} is a {info.variant} run at {info.resolution} px"
        )
    generator, _ = build(info)
    try:
        generator.load_state_dict(state["G_ema"])
    except (RuntimeError, KeyError) as exc:
        raise SynthaugError(
            f"{snapshot}: weights do not fit the run's network ({str(exc)[:160]})"
        ) from exc
    generator.eval().requires_grad_(False)
    return LoadedGenerator(generator, info, snapshot)


@torch.no_grad()
def generate_slices(
    gen: LoadedGenerator,
    count: int,
    seed: int,
    labels: np.ndarray | None = None,
    truncation_psi: float = 1.0,
    batch: int = 64,
    precision: str = "fp32",
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``count`` slices from one generator, deterministic for ``seed``.

    Returns (images [N, C, R, R] float32 | None, labels [N, R, R] int64 | None); for the
    conditional variant ``labels`` [N, R, R] are the masks to paint.
    """
    spec = spec_of(gen.info)
    torch.manual_seed(seed)  # also seeds the per-layer noise inputs
    g = torch.Generator().manual_seed(seed)
    images, masks = [], []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        z = torch.randn(n, gen.generator.z_dim, generator=g)
        cond = None
        if spec.variant == "conditional":
            if labels is None:
                raise SynthaugError("a conditional generator paints masks: pass the masks")
            cond = masks_to_onehot(torch.from_numpy(labels[start : start + n]), spec.num_classes)
        with autocast(precision, z.device):
            out = gen.generator(z, cond, truncation_psi=truncation_psi, noise_mode="random")
        out = out.float()
        img, lab = spec.split_generated(out)
        if img is not None:
            images.append(img.clamp(-1, 1).numpy())
        if lab is not None:
            masks.append(lab.numpy())
    return (
        np.concatenate(images) if images else None,
        np.concatenate(masks) if masks else None,
    )


def variant_outputs(variant: str) -> Outputs:
    """joint: images and masks; mask: masks; conditional: images painted for given masks."""
    return Outputs(images=variant in ("joint", "conditional"), masks=variant in ("joint", "mask"))


class StyleGAN2Sampler:
    """A loaded StyleGAN2 snapshot behind the family-neutral ``synthaug.generator.Sampler``."""

    def __init__(self, loaded: LoadedGenerator) -> None:
        self.loaded = loaded
        self.variant = loaded.info.variant
        self.outputs = variant_outputs(self.variant)
        self.precision = str(loaded.info.preset.get("precision", "fp32"))

    def sample(
        self, count: int, seed: int, masks: np.ndarray | None = None, truncation: float = 1.0
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        return generate_slices(
            self.loaded, count, seed, labels=masks, truncation_psi=truncation,
            precision=self.precision,
        )  # fmt: skip
