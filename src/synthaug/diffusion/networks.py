"""The denoiser (MONAI's ``DiffusionModelUNet``), its noise schedules and the two variants.

Value conventions: images in [-1, 1]; a mask enters as ``2 · onehot − 1`` (K channels in
[-1, 1]); "no mask" (classifier-free guidance) is all −1 — MONAI's ``cfg_fill_value``.

=========  ==========================================  ==================  ===============
variant    denoises                                    condition (concat)  emits
=========  ==========================================  ==================  ===============
painter    C image channels                            K mask channels     C images
joint      C image + K mask channels together          none                images + argmax
=========  ==========================================  ==================  ===============
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from synthaug.diffusion.presets import DiffusionPreset

VARIANTS: tuple[str, ...] = ("painter", "joint")
NO_MASK = -1.0  # the condition's value for "no mask"


@dataclass(frozen=True)
class DiffusionSpec:
    """Channel bookkeeping of a variant with C modalities and K classes."""

    variant: str
    num_modalities: int
    num_classes: int

    @property
    def denoised_channels(self) -> int:
        return self.num_modalities + (self.num_classes if self.variant == "joint" else 0)

    @property
    def condition_channels(self) -> int:
        return self.num_classes if self.variant == "painter" else 0

    def targets(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The clean sample x0: images, plus the ±1 one-hot mask for the joint variant."""
        if self.variant == "painter":
            return images
        return torch.cat([images, signed_onehot(labels, self.num_classes)], dim=1)

    def condition(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if self.variant != "painter":
            return None
        return signed_onehot(labels, self.num_classes)

    def split(self, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A denoised sample → (images clamped to [-1, 1], masks [N, R, R] or None)."""
        images = sample[:, : self.num_modalities].clamp(-1, 1)
        if self.variant != "joint":
            return images, None
        return images, sample[:, self.num_modalities :].argmax(dim=1)


def signed_onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[N, R, R] labels → [N, K, R, R] in {−1, 1}."""
    return F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float() * 2 - 1


def build_denoiser(preset: DiffusionPreset, spec: DiffusionSpec) -> DiffusionModelUNet:
    return DiffusionModelUNet(
        spatial_dims=2,
        in_channels=spec.denoised_channels + spec.condition_channels,
        out_channels=spec.denoised_channels,
        channels=preset.channels,
        attention_levels=preset.attention_levels,
        num_res_blocks=preset.num_res_blocks,
        norm_num_groups=preset.norm_num_groups,
        num_head_channels=preset.num_head_channels,
        # torch's scaled-dot-product attention: the same result without materialising the
        # [tokens × tokens] matrix, which at gpu-256's 64×64 attention level is 4096² per head
        # and sample (the naive path ran a 24 GiB machine out of memory at batch 2).
        use_flash_attention=True,
    )


def training_scheduler(preset: DiffusionPreset) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=preset.timesteps,
        schedule=preset.schedule,
        prediction_type=preset.prediction,
    )


def sampling_scheduler(preset: DiffusionPreset, steps: int | None = None) -> DDIMScheduler:
    """DDIM (deterministic, eta = 0) over ``steps`` (default the preset's) timesteps."""
    scheduler = DDIMScheduler(
        num_train_timesteps=preset.timesteps,
        schedule=preset.schedule,
        prediction_type=preset.prediction,
        clip_sample=True,
    )
    scheduler.set_timesteps(steps or preset.sample_steps)
    return scheduler
