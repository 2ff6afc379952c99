"""Diffusion presets: denoiser widths, noise schedule, prediction target, sampler, optimiser."""

from __future__ import annotations

from dataclasses import dataclass

from synthaug.generator import PresetRegistry

SAMPLERS = ("ddim",)
PREDICTIONS = ("epsilon", "v_prediction", "sample")


@dataclass(frozen=True)
class DiffusionPreset:
    """A mask-conditional (or joint) denoiser and how it is trained and sampled.

    channels / attention_levels / num_res_blocks / norm_num_groups / num_head_channels: MONAI's
    ``DiffusionModelUNet``. timesteps, schedule, prediction: the DDPM training process
    (``prediction`` one of epsilon, v_prediction, sample). sampler / sample_steps: the
    few-step sampler used by ``generate`` and snapshot scoring. ema_halflife_kimg: the EMA
    weights halve their memory every that many thousand images. cond_dropout: the share of
    training steps whose mask is replaced by "no mask" (enables classifier-free guidance);
    guidance: the CFG scale at sampling (1 = plain conditional sampling).
    """

    name: str
    resolution: int
    channels: tuple[int, ...]
    attention_levels: tuple[bool, ...]
    num_res_blocks: int
    norm_num_groups: int
    batch: int
    lr: float
    num_head_channels: int = 8
    weight_decay: float = 0.0
    timesteps: int = 1000
    schedule: str = "cosine"
    prediction: str = "v_prediction"
    sampler: str = "ddim"
    sample_steps: int = 10
    ema_halflife_kimg: float = 0.5
    cond_dropout: float = 0.0
    guidance: float = 1.0
    snapshot_kimg: float = 2.0
    precision: str = "fp32"  # auto, fp32 or bf16 (synthaug.precision); a run records what it used
    augment_p: float = 0.5  # probability of a mask-aligned flip / small affine per sample


DIFFUSION_PRESETS: PresetRegistry[DiffusionPreset] = PresetRegistry(
    "diffusion",
    (
        # Smoke tests on 32×32 stores.
        DiffusionPreset(
            name="cpu-micro", resolution=32, channels=(16, 32), attention_levels=(False, False),
            num_res_blocks=1, norm_num_groups=8, batch=8, lr=1e-3, prediction="sample",
            sample_steps=4,
            ema_halflife_kimg=0.02, snapshot_kimg=0.25,
        ),
        # 64×64 on a CPU: small widths, no attention, x0-prediction, lr 2e-3, EMA half-life
        # 0.25 kimg, 10 DDIM steps — chosen by measurement (docs/generators.md): at 8 kimg and
        # lr 3e-4, x0 reached FID 16× the real baseline where v stayed at 120× and ε at 204×.
        DiffusionPreset(
            name="cpu-tiny", resolution=64, channels=(16, 32, 64),
            attention_levels=(False, False, False), num_res_blocks=1, norm_num_groups=16,
            batch=16, lr=2e-3, prediction="sample", sample_steps=10, ema_halflife_kimg=0.25,
            snapshot_kimg=4.0,
            # auto: bf16 autocast where the CPU has native bf16 (1.5x per step with AVX512-BF16,
            # held-out denoising error within the seed spread; benchmarks/precision.py)
            precision="auto",
        ),
        # MONAI's 2-D tutorial widths with attention at the two lowest resolutions; bf16 on GPU.
        DiffusionPreset(
            name="gpu-256", resolution=256, channels=(64, 128, 256, 256),
            attention_levels=(False, False, True, True), num_res_blocks=2, norm_num_groups=32,
            num_head_channels=32, batch=32, lr=1e-4, sample_steps=25, ema_halflife_kimg=10.0,
            cond_dropout=0.1, snapshot_kimg=50.0, precision="bf16",
        ),
    ),
)  # fmt: skip


def diffusion_preset(name: str) -> DiffusionPreset:
    return DIFFUSION_PRESETS.named(name)
