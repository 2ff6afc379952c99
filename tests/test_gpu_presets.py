"""Every ``gpu-*`` preset of every family trains one step and samples on the CPU at batch 2.

No GPU has ever run these presets in this project's CI; this keeps them from rotting unseen
(a width that no longer divides, an attention level that no longer fits, a resolution the
trainer rejects). The presets run through the real trainers and samplers, at batch 2 and in
fp32 (bf16 autocast is a GPU setting)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import synthaug.diffusion.train as diffusion_train
import synthaug.gan.train as gan_train
from synthaug.diffusion.presets import DIFFUSION_PRESETS
from synthaug.gan.presets import GAN_PRESETS
from synthaug.generator import TrainRequest
from synthaug.stages.families import family
from tests.helpers.toy import make_toy_store

GPU_PRESETS = [
    ("stylegan2", name, variant)
    for name in sorted(GAN_PRESETS)
    if name.startswith("gpu-")
    for variant in ("joint", "mask", "conditional")
] + [
    ("diffusion", name, variant)
    for name in sorted(DIFFUSION_PRESETS)
    if name.startswith("gpu-")
    for variant in ("painter", "joint")
]


@pytest.fixture(scope="module")
def store_256(tmp_path_factory):
    """The toy store prepared at 256×256 (4 patients × 2 slices, 2 folds) for the GPU presets."""
    return make_toy_store(tmp_path_factory.mktemp("toy256"), patients=4, slices=2, resolution=256)


def test_every_family_has_a_gpu_preset():
    assert {f for f, _, _ in GPU_PRESETS} == {"stylegan2", "diffusion"}


@pytest.mark.slow
@pytest.mark.parametrize(("family_name", "preset", "variant"), GPU_PRESETS)
def test_gpu_preset_trains_a_step_and_samples_on_the_cpu(
    family_name, preset, variant, store_256, tmp_path, monkeypatch
):
    presets = GAN_PRESETS if family_name == "stylegan2" else DIFFUSION_PRESETS
    small = replace(presets[preset], name=f"{preset}-b2", batch=2, precision="fp32")
    if family_name == "diffusion":
        small = replace(small, sample_steps=2)
    monkeypatch.setitem(presets, small.name, small)
    # the snapshot's preview grid (16 samples at 256 px) would cost more than the step itself
    monkeypatch.setattr(gan_train, "GRID_SAMPLES", 2)
    monkeypatch.setattr(gan_train, "COLLAPSE_SAMPLES", 4)  # the snapshot's collapse check
    monkeypatch.setattr(diffusion_train, "GRID_SAMPLES", 2)
    assert small.resolution == store_256.resolution == 256
    fam = family(family_name)
    request = TrainRequest(
        store=str(store_256.path), fold=0, variant=variant, out=str(tmp_path / "run"),
        preset=small.name, kimg=0.002, device="cpu",
    )  # fmt: skip
    run = fam.train(request)
    health = fam.health(run)
    assert health is not None and health.nimg == 2  # exactly one optimiser step
    snapshots = fam.snapshots(run)
    assert snapshots
    sampler = fam.load(run, snapshots[-1].path)
    masks = (
        store_256.arrays(store_256.split(0).train)[1][:2] if sampler.outputs.paints_masks else None
    )
    images, labels = sampler.sample(2, seed=0, masks=masks)
    channels = len(store_256.modalities)
    if images is not None:
        assert images.shape == (2, channels, 256, 256) and np.isfinite(images).all()
    if labels is not None:
        assert labels.shape == (2, 256, 256) and labels.max() < len(store_256.label_names)
