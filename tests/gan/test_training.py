"""Training-loop behaviour: learning on a toy store, snapshots, resume after SIGKILL, errors."""

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

from synthaug.data.store import class_frequencies
from synthaug.errors import SynthaugError
from synthaug.gan.run import build, layout, preset_of, read_meta
from synthaug.gan.sample import LoadedGenerator, generate_slices, load_generator
from synthaug.gan.train import train
from synthaug.generator import CHECKPOINT, TrainRequest
from synthaug.runlog import read_metrics
from synthaug.torch_io import load_torch
from tests.helpers.toy import CLASS_MEANS


def _untrained(run: Path) -> LoadedGenerator:
    """The run's generator as it was at step 0 (same seed → same initial weights)."""
    info = read_meta(run)
    torch.manual_seed(info.seed)
    generator, _ = build(info)
    return LoadedGenerator(generator.eval(), info, run)


def _train(
    store, tmp_path: Path, variant: str, kimg: float, preset: str = "cpu-micro", **kw
) -> Path:
    out = tmp_path / f"run-{variant}"
    opts = TrainRequest(
        store=str(store.path),
        fold=0,
        variant=variant,
        preset=preset,
        kimg=kimg,
        out=str(out),
        **kw,
    )
    return train(opts)


@pytest.mark.slow
def test_joint_learns_class_frequencies(toy_store, tmp_path):
    run = _train(toy_store, tmp_path, "joint", kimg=0.6)
    real = toy_store.label_frequencies(toy_store.split(0).train)

    def distance(gen: LoadedGenerator) -> float:
        _, labels = generate_slices(gen, 128, seed=1)
        return float(np.abs(class_frequencies(labels, 3) - real).sum())

    before, after = distance(_untrained(run)), distance(load_generator(run))
    assert after < 0.6 * before, (before, after)


@pytest.mark.slow
def test_conditional_images_follow_the_mask(toy_store, tmp_path):
    run = _train(toy_store, tmp_path, "conditional", kimg=0.6)
    _, labels = toy_store.arrays(toy_store.split(0).train)

    def error(gen: LoadedGenerator) -> float:
        images, _ = generate_slices(gen, len(labels), seed=1, labels=labels)
        return float(
            np.mean(
                [
                    abs(images[:, c][labels == k].mean() - CLASS_MEANS[k, c])
                    for k in range(3)
                    for c in range(2)
                ]
            )
        )

    before, after = error(_untrained(run)), error(load_generator(run))
    assert after < 0.75 * before, (before, after)


def test_run_artifacts(toy_store, tmp_path):
    run = _train(toy_store, tmp_path, "mask", kimg=0.05, snapshot_kimg=0.024)
    snaps = layout(run).snapshot_files()
    assert len(snaps) >= 2
    assert (run / "grids" / "reals.png").stat().st_size > 0
    assert len(list((run / "grids").glob("fakes-*.png"))) == len(snaps)
    rows = read_metrics(run)
    assert rows and {
        "d_main",
        "g_main",
        "ada_p",
        "img_per_s",
        "r1_penalty",
        "pl_penalty",
    } <= set().union(*rows)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["nimg"] == 56 and summary["last_snapshot"] == str(snaps[-1])
    state = load_torch(run / CHECKPOINT)
    assert state["meta"]["nimg"] == 56 and {
        "G",
        "G_ema",
        "D",
        "opt_G",
        "opt_D",
        "augment",
        "rng",
    } <= set(state)


def test_existing_run_needs_resume(toy_store, tmp_path):
    _train(toy_store, tmp_path, "mask", kimg=0.016)
    with pytest.raises(SynthaugError, match="--resume"):
        _train(toy_store, tmp_path, "mask", kimg=0.016)


def test_resume_with_other_variant_is_refused(toy_store, tmp_path):
    run = _train(toy_store, tmp_path, "mask", kimg=0.016)
    with pytest.raises(SynthaugError, match="variant"):
        train(
            TrainRequest(
                store=str(toy_store.path),
                fold=0,
                variant="joint",
                preset="cpu-micro",
                kimg=0.03,
                out=str(run),
                resume=True,
            )
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variant": "both"}, "variant"),
        ({"preset": "cpu-huge"}, "preset"),
        ({"fold": 7}, "fold 7"),
        ({"preset": "cpu-tiny"}, "resolution"),
        ({"kimg": 0}, "kimg"),
    ],
)
def test_bad_training_requests(toy_store, tmp_path, change, message):
    fields = {
        "store": str(toy_store.path),
        "fold": 0,
        "variant": "joint",
        "preset": "cpu-micro",
        "kimg": 0.01,
        "out": str(tmp_path / "run"),
    }
    with pytest.raises(SynthaugError, match=message):
        train(TrainRequest(**{**fields, **change}))
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_with_clear_message_and_keeps_snapshot(toy_store, tmp_path, monkeypatch):
    run = _train(toy_store, tmp_path, "mask", kimg=0.016)
    good = load_torch(run / CHECKPOINT)
    from synthaug.gan import loss as loss_module

    monkeypatch.setattr(
        loss_module, "g_nonsaturating_loss", lambda logits: logits.mean() * float("nan")
    )
    with pytest.raises(SynthaugError, match="diverged.*g_main"):
        train(
            TrainRequest(
                store=str(toy_store.path),
                fold=0,
                variant="mask",
                preset="cpu-micro",
                kimg=0.05,
                out=str(run),
                resume=True,
            )
        )
    after = load_torch(run / CHECKPOINT)
    assert after["meta"]["nimg"] == good["meta"]["nimg"]
    assert all(torch.isfinite(v).all() for v in after["G"].values() if v.is_floating_point())


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "synthaug", *args]


@pytest.mark.slow
def test_sigkill_then_resume_continues(toy_store, tmp_path):
    run = tmp_path / "killed"
    cmd = _cli(
        "train-gan",
        "--store",
        str(toy_store.path),
        "--fold",
        "0",
        "--variant",
        "joint",
        "--preset",
        "cpu-micro",
        "--kimg",
        "0.4",
        "--snapshot-kimg",
        "0.08",
        "--out",
        str(run),
        "--threads",
        "1",
        "--no-quality",
    )
    env = {**os.environ, "SYNTHAUG_QUIET": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(layout(run).snapshot_files()) < 2:
        time.sleep(0.05)
    time.sleep(0.3)  # land somewhere between snapshots
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_torch(run / CHECKPOINT)["meta"]["nimg"]  # loads: not corrupted
    assert 0 < killed_at < 400
    for snap in layout(run).snapshot_files():  # every snapshot a later stage would pick up is whole
        assert load_torch(snap)["meta"]["nimg"] <= killed_at

    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_metrics(run)
    nimgs = [r["nimg"] for r in rows]
    assert nimgs == sorted(set(nimgs)), "metrics rows duplicated or out of order after resume"
    assert nimgs[-1] == 400
    summary = json.loads((run / "summary.json").read_text())
    assert summary["nimg"] == 400
    assert any(int(p.stem.split("-")[1]) > killed_at for p in layout(run).snapshot_files())
    gen = load_generator(run)
    images, labels = generate_slices(gen, 4, seed=0)
    assert images.shape == (4, 2, 32, 32) and labels.shape == (4, 32, 32)


def test_preset_augmentation_settings_reach_the_run(toy_store, tmp_path, monkeypatch):
    """A preset's starting ADA p and cutout strength are what the run trains with."""
    import dataclasses

    from synthaug.gan.presets import GAN_PRESETS

    fixed = dataclasses.replace(
        GAN_PRESETS["cpu-micro"], name="aug-test", ada_p_init=0.4, ada_kimg=1e6, cutout=1.0
    )
    monkeypatch.setitem(GAN_PRESETS, "aug-test", fixed)
    out = _train(toy_store, tmp_path, "joint", kimg=0.05, preset="aug-test")
    rows = read_metrics(out)
    assert abs(rows[-1]["ada_p"] - 0.4) < 1e-3  # started at 0.4; ADA this slow leaves it there
    assert preset_of(read_meta(out)).cutout == 1.0


def test_a_variant_can_have_its_own_width(toy_store, tmp_path, monkeypatch):
    """``variant_settings`` widens one variant's networks; the run records (and sampling
    rebuilds) the width it trained with, the other variants keep the preset's."""
    import dataclasses

    from synthaug.gan.presets import GAN_PRESETS

    micro = GAN_PRESETS["cpu-micro"]
    wide = dataclasses.replace(
        micro, name="wide-joint", variant_settings={"joint": {"channel_base": 1024}}
    )
    monkeypatch.setitem(GAN_PRESETS, "wide-joint", wide)
    widths = {}
    for variant in ("joint", "mask"):
        out = _train(toy_store, tmp_path, variant, kimg=0.02, preset="wide-joint")
        widths[variant] = preset_of(read_meta(out)).channel_base
        n_params = sum(p.numel() for p in load_generator(out).generator.parameters())
        widths[variant + "_params"] = n_params
    assert widths["joint"] == 1024 and widths["mask"] == micro.channel_base
    assert widths["joint_params"] > widths["mask_params"]


def test_training_warns_when_d_wins_outright():
    from synthaug.gan.train import health_warning

    healthy = {"kimg": 1.0, "d_main": 0.9, "real_logits": 0.4, "fake_logits": -0.3, "ada_p": 0.1}
    assert health_warning(healthy) is None
    won = {**healthy, "d_main": 0.02, "real_logits": 6.0, "fake_logits": -7.5}
    message = health_warning(won)
    assert message and "1.00 kimg" in message and "+6.0" in message and "-7.5" in message
