"""Sampling a trained denoiser with a few-step DDIM sampler through MONAI's DiffusionInferer."""

from __future__ import annotations

import numpy as np
import torch
from monai.inferers import DiffusionInferer

from synthaug.diffusion.networks import (
    NO_MASK,
    DiffusionSpec,
    sampling_scheduler,
)
from synthaug.diffusion.presets import DiffusionPreset
from synthaug.errors import SynthaugError
from synthaug.generator import Outputs
from synthaug.precision import autocast

SAMPLE_BATCH = 64


def variant_outputs(variant: str) -> Outputs:
    """painter: images painted for given masks; joint: images and masks."""
    return Outputs(images=True, masks=variant == "joint")


@torch.no_grad()
def denoise(
    model: torch.nn.Module,
    spec: DiffusionSpec,
    preset: DiffusionPreset,
    count: int,
    seed: int,
    masks: np.ndarray | torch.Tensor | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    precision: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``count`` samples, deterministic for ``seed`` (DDIM with eta = 0: all randomness is the
    starting noise). Painters need ``masks`` [N, R, R]. ``precision`` None: the preset's
    (the run's training precision). Returns (images, masks | None)."""
    if spec.variant == "painter" and masks is None:
        raise SynthaugError("a diffusion painter paints masks: pass the masks")
    device = next(model.parameters()).device
    model.eval()
    g = torch.Generator().manual_seed(seed)
    scale = preset.guidance if guidance is None else guidance
    images, labels = [], []
    r = preset.resolution
    for start in range(0, count, SAMPLE_BATCH):
        n = min(SAMPLE_BATCH, count - start)
        noise = torch.randn(n, spec.denoised_channels, r, r, generator=g).to(device)
        cond = None
        if spec.variant == "painter":
            chunk = torch.as_tensor(np.asarray(masks[start : start + n]), dtype=torch.long)
            cond = spec.condition(chunk).to(device)
        scheduler = sampling_scheduler(preset, steps)
        inferer = DiffusionInferer(scheduler)
        with autocast(precision or preset.precision, device):
            out = inferer.sample(
                input_noise=noise,
                diffusion_model=model,
                scheduler=scheduler,
                conditioning=cond,
                mode="concat" if cond is not None else "crossattn",  # joint: nothing to concat
                verbose=False,
                cfg=scale if cond is not None and scale != 1.0 else None,
                cfg_fill_value=NO_MASK,
            )
        img, lab = spec.split(out.float().cpu())
        images.append(img)
        if lab is not None:
            labels.append(lab)
    return torch.cat(images), torch.cat(labels) if labels else None
