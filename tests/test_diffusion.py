"""The diffusion family: it learns to paint masks, resumes after a kill, samples
deterministically, and its presets (GPU ones included) build and run on the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from synthaug.diffusion.augment import augment
from synthaug.diffusion.family import DIFFUSION, DiffusionSampler
from synthaug.diffusion.networks import DiffusionSpec, build_denoiser, training_scheduler
from synthaug.diffusion.presets import DIFFUSION_PRESETS
from synthaug.diffusion.run import build, layout, preset_of, read_meta, spec_of
from synthaug.diffusion.sample import denoise
from synthaug.diffusion.train import train
from synthaug.errors import SynthaugError
from synthaug.generator import RunMeta, TrainRequest
from synthaug.runlog import read_metrics
from synthaug.torch_io import load_torch
from tests.helpers.toy import CLASS_MEANS


def _train(store, out: Path, variant: str = "painter", kimg: float = 0.1, **kw) -> Path:
    return train(TrainRequest(str(store.path), 0, variant, str(out), "cpu-micro", kimg, **kw))


def _error(sampler_model, info: RunMeta, labels: np.ndarray) -> float:
    """Mean |per-class mean intensity − the toy's class mean| of painted images."""
    images, _ = denoise(sampler_model, spec_of(info), preset_of(info), len(labels), 1, labels)
    images = images.numpy()
    return float(
        np.mean(
            [
                abs(images[:, c][labels == k].mean() - CLASS_MEANS[k, c])
                for k in range(3)
                for c in range(2)
            ]
        )
    )


@pytest.mark.slow
def test_the_painter_learns_to_paint_the_mask(toy_store, tmp_path):
    run = _train(toy_store, tmp_path / "painter", kimg=1.2, snapshot_kimg=0.6)
    info = read_meta(run)
    labels = toy_store.arrays(toy_store.split(0).val)[1]
    torch.manual_seed(info.seed)
    untrained = build(info).eval()  # the weights the run started from
    trained = DiffusionSampler(info, layout(run).snapshot_files()[-1]).model
    before, after = _error(untrained, info, labels), _error(trained, info, labels)
    assert after < 0.6 * before, (before, after)


def test_run_artifacts_and_deterministic_samples(toy_store, tmp_path):
    run = _train(toy_store, tmp_path / "p", kimg=0.05, snapshot_kimg=0.024)
    snaps = layout(run).snapshot_files()
    assert len(snaps) >= 2 and len(list((run / "grids").glob("samples-*.png"))) == len(snaps)
    rows = read_metrics(run)
    assert rows and {"loss", "img_per_s"} <= set(rows[-1])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["nimg"] == 56
    assert {"model", "ema", "opt", "rng"} <= set(load_torch(run / "checkpoint.pt"))
    assert (
        DIFFUSION.owns(run) and DIFFUSION.describe(run).store_fingerprint == toy_store.fingerprint
    )
    sampler = DIFFUSION.load(run)
    masks = toy_store.arrays(toy_store.split(0).train)[1][:5]
    a, none = sampler.sample(5, seed=3, masks=masks)
    b, _ = sampler.sample(5, seed=3, masks=masks)
    c, _ = sampler.sample(5, seed=4, masks=masks)
    assert none is None and a.shape == (5, 2, 32, 32) and np.abs(a).max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(SynthaugError, match="paints masks"):
        sampler.sample(2, seed=0)


def test_joint_samples_images_and_masks(toy_store, tmp_path):
    run = _train(toy_store, tmp_path / "j", variant="joint", kimg=0.03)
    images, masks = DIFFUSION.load(run).sample(3, seed=0)
    assert images.shape == (3, 2, 32, 32) and masks.shape == (3, 32, 32)
    assert masks.min() >= 0 and masks.max() <= 2


def test_a_joint_sample_decodes_to_its_images_and_mask():
    # What the joint sampler returns is this split of the denoised channels: the mask is the
    # class whose one-hot channel is largest, the images the modality channels clamped.
    spec = DiffusionSpec("joint", num_modalities=2, num_classes=3)
    mask = torch.tensor([[0, 1, 2], [2, 1, 0], [1, 1, 2]]).unsqueeze(0)
    images = torch.tensor([-3.0, -0.5, 0.25, 2.0]).repeat(9)[:18].reshape(1, 2, 3, 3)
    onehot = torch.nn.functional.one_hot(mask, 3).permute(0, 3, 1, 2).float() * 2 - 1
    noisy = onehot + 0.3 * torch.sin(torch.arange(27.0)).reshape(1, 3, 3, 3)  # still decodable
    got_images, got_mask = spec.split(torch.cat([images, noisy], dim=1))
    assert torch.equal(got_mask, mask)
    assert torch.equal(got_images, images.clamp(-1, 1))
    painter_images, painter_mask = DiffusionSpec("painter", 2, 3).split(images)
    assert painter_mask is None and torch.equal(painter_images, images.clamp(-1, 1))


def test_bad_requests(toy_store, tmp_path):
    with pytest.raises(SynthaugError, match="unknown diffusion variant"):
        _train(toy_store, tmp_path / "x", variant="conditional")
    with pytest.raises(SynthaugError, match="resolution 32"):
        train(TrainRequest(str(toy_store.path), 0, "painter", str(tmp_path / "y"), "cpu-tiny", 0.1))
    run = _train(toy_store, tmp_path / "z", kimg=0.016)
    with pytest.raises(SynthaugError, match="--resume"):
        _train(toy_store, run, kimg=0.016)


def test_sample_steps_are_the_runs_and_fixed_at_its_start(toy_store, tmp_path, monkeypatch):
    run = _train(toy_store, tmp_path / "s", kimg=0.016, sample_steps=3)
    assert read_meta(run).preset["sample_steps"] == 3
    calls = []
    import synthaug.diffusion.sample as sample_module

    original = sample_module.sampling_scheduler

    def counting(preset, steps=None):
        scheduler = original(preset, steps)
        calls.append(len(scheduler.timesteps))
        return scheduler

    monkeypatch.setattr(sample_module, "sampling_scheduler", counting)
    DIFFUSION.load(run).sample(1, seed=0, masks=np.zeros((1, 32, 32), np.int64))
    assert calls == [3]
    with pytest.raises(SynthaugError, match="sample_steps: recorded 3, --set 5"):
        _train(toy_store, run, kimg=0.032, resume=True, sample_steps=5)
    _train(toy_store, run, kimg=0.032, resume=True)  # unchanged steps resume fine
    assert read_meta(run).preset["sample_steps"] == 3


def test_augmentation_moves_image_and_mask_together():
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(8, 32, 32, dtype=torch.long)
    labels[:, 8:16, 4:12] = 1
    images = labels[:, None].float().repeat(1, 2, 1, 1) * 2 - 1  # bright exactly on the mask
    moved, moved_labels = augment(images, labels, p=1.0, generator=g)
    assert not torch.equal(moved_labels, labels)  # something moved
    inside = moved[:, 0][moved_labels == 1]
    outside = moved[:, 0][moved_labels == 0]
    assert inside.mean() > 0.8 and outside.mean() < -0.8  # ...and the image went with the mask


@pytest.mark.parametrize("name", sorted(DIFFUSION_PRESETS))
def test_every_preset_builds_trains_a_step_and_samples_on_the_cpu(name):
    """The GPU presets have never run on a GPU here: at least they must build and run."""
    preset = DIFFUSION_PRESETS[name]
    spec = DiffusionSpec("painter", 2, 3)
    model = build_denoiser(preset, spec)
    r = min(preset.resolution, 64)  # the U-Net is resolution-agnostic; keep the CPU step small
    x0 = torch.rand(2, 2, r, r) * 2 - 1
    cond = spec.condition(torch.randint(0, 3, (2, r, r)))
    sched = training_scheduler(preset)
    t = torch.randint(0, preset.timesteps, (2,))
    noise = torch.randn_like(x0)
    pred = model(torch.cat([sched.add_noise(x0, noise, t), cond], 1), t)
    pred.pow(2).mean().backward()
    assert pred.shape == x0.shape
    small = type(preset)(**{**preset.__dict__, "resolution": r, "sample_steps": 2})
    images, _ = denoise(model, spec, small, 2, seed=0, masks=np.zeros((2, r, r), np.int64))
    assert images.shape == (2, 2, r, r) and torch.isfinite(images).all()


def test_sigkill_then_resume_continues(toy_store, tmp_path):
    run = tmp_path / "killed"
    cmd = [
        sys.executable, "-m", "synthaug", "train-generator", "--family", "diffusion",
        "--variant", "painter", "--store", str(toy_store.path), "--fold", "0",
        "--preset", "cpu-micro", "--kimg", "0.4", "--snapshot-kimg", "0.1", "--out", str(run),
        "--threads", "1", "--no-quality",
    ]  # fmt: skip
    env = {**os.environ, "SYNTHAUG_QUIET": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline and len(layout(run).snapshot_files()) < 2:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_torch(run / "checkpoint.pt")["meta"]["nimg"]
    assert 0 < killed_at < 400
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    nimgs = [r["nimg"] for r in read_metrics(run)]
    assert nimgs == sorted(set(nimgs)) and nimgs[-1] == 400
    assert json.loads((run / "summary.json").read_text())["nimg"] == 400
    assert any(int(p.stem.split("-")[1]) > killed_at for p in layout(run).snapshot_files())
