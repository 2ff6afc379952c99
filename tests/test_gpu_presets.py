"""Every ``gpu-*`` preset of every family trains one step and samples on the CPU.

No GPU has ever run these presets in this project's CI; this keeps them from rotting unseen
(a width that no longer divides, an attention level that no longer fits, a resolution the
trainer rejects). The presets run through the real trainers and samplers with their
architecture and resolution, but the smallest batch each trainer takes (2 for StyleGAN2, whose
path-length regulariser halves it; 1 for diffusion), one sampling step, and in fp32 (bf16
autocast is a GPU setting)."""

from __future__ import annotations

import numpy as np
import pytest

import synthaug.diffusion.train as diffusion_train
import synthaug.gan.train as gan_train
from synthaug.generator import TrainRequest
from synthaug.stages.families import BUILTIN, FAMILIES, family
from tests.helpers.toy import make_toy_store

# The settings each family's step runs with (``--set``; the architecture is the preset's).
SETTINGS = {
    "stylegan2": {"batch": "2", "precision": "fp32"},
    "diffusion": {"batch": "1", "precision": "fp32", "sample_steps": "1"},
}
GPU_PRESETS = [
    (fam.name, preset, variant)
    for fam in BUILTIN  # each family's own preset registry (gmm: no networks, no GPU presets)
    for preset in sorted(fam.presets)
    if preset.startswith("gpu-")
    for variant in fam.variants
]


def test_every_gpu_preset_of_every_family_is_stepped():
    """Both network families have GPU presets and each variant is stepped with each (a
    renamed prefix or a dropped preset would silently empty the parametrisation)."""
    covered = {name for name, _, _ in GPU_PRESETS}
    assert covered == {"stylegan2", "diffusion"} == set(SETTINGS)
    for name in covered:
        for variant in FAMILIES[name].variants:
            assert any(f == name and v == variant for f, _, v in GPU_PRESETS), (name, variant)


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
    settings = SETTINGS[family_name]
    batch = int(settings["batch"])
    # the snapshot's preview grid (16 samples at 256 px) would cost more than the step itself
    monkeypatch.setattr(gan_train, "GRID_SAMPLES", 2)
    monkeypatch.setattr(gan_train, "COLLAPSE_SAMPLES", 4)  # the snapshot's collapse check
    monkeypatch.setattr(diffusion_train, "GRID_SAMPLES", 1)
    assert family(family_name).presets[preset].resolution == store_256.resolution == 256
    fam = family(family_name)
    request = TrainRequest(
        store=str(store_256.path), fold=0, variant=variant, out=str(tmp_path / "run"),
        preset=preset, kimg=batch / 1000, device="cpu", settings=settings,
    )  # fmt: skip
    run = fam.train(request)
    health = fam.health(run)
    assert health is not None and health.nimg == batch  # exactly one optimiser step
    snapshots = fam.snapshots(run)
    assert snapshots
    sampler = fam.load(run, snapshots[-1].path)
    masks = (
        store_256.arrays(store_256.split(0).train)[1][:batch]
        if sampler.outputs.paints_masks
        else None
    )
    images, labels = sampler.sample(batch, seed=0, masks=masks)
    channels = len(store_256.modalities)
    if images is not None:
        assert images.shape == (batch, channels, 256, 256) and np.isfinite(images).all()
    if labels is not None:
        assert labels.shape == (batch, 256, 256) and labels.max() < len(store_256.label_names)
