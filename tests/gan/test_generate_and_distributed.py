"""generate (synthetic patients on disk) and multi-process training under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synthaug.data.synthetic import read_synthetic
from synthaug.errors import SynthaugError
from synthaug.gan.checkpoint import CHECKPOINT
from synthaug.gan.sample import generate
from synthaug.gan.train import TrainOptions, train


@pytest.fixture(scope="module")
def runs(toy_store, tmp_path_factory) -> dict[str, Path]:
    """One briefly trained run per variant on fold 0 (shared, read-only)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for variant in ("joint", "mask", "conditional"):
        opts = TrainOptions(
            store=str(toy_store.path),
            fold=0,
            variant=variant,
            preset="cpu-micro",
            kimg=0.016,
            out=str(root / variant),
        )
        out[variant] = train(opts)
    return out


@pytest.mark.parametrize("source", ["joint", "mask-conditional", "real-mask-conditional"])
def test_generate_writes_msd_patients(runs, toy_store, tmp_path, source):
    run = runs["joint"] if source == "joint" else runs["conditional"]
    mask_run = runs["mask"] if source == "mask-conditional" else None
    out = generate(run, source, patients=3, out=tmp_path / "syn", seed=5, mask_run=mask_run)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["modality"] == {"0": "A", "1": "B"}
    assert meta["labels"] == {"0": "background", "1": "disc", "2": "square"}
    assert meta["numTraining"] == 3 and meta["synthaug"]["source"] == source
    assert (out / "preview.png").stat().st_size > 0
    patients = read_synthetic(out, toy_store)
    s = toy_store.median_slices(toy_store.split(0).train)
    assert [p.images.shape for p in patients] == [(s, 2, 32, 32)] * 3
    assert all(p.labels.min() >= 0 and p.labels.max() <= 2 for p in patients)
    assert all(np.abs(p.images).max() <= 1.0 for p in patients)


def test_generate_is_deterministic_for_a_seed(runs, tmp_path):
    a = read_synthetic(generate(runs["joint"], "joint", 2, tmp_path / "a", seed=3))
    b = read_synthetic(generate(runs["joint"], "joint", 2, tmp_path / "b", seed=3))
    c = read_synthetic(generate(runs["joint"], "joint", 2, tmp_path / "c", seed=4))
    assert all(
        np.array_equal(x.images, y.images) and np.array_equal(x.labels, y.labels)
        for x, y in zip(a, b, strict=True)
    )
    assert not np.array_equal(a[0].images, c[0].images)


def test_real_mask_conditional_uses_training_masks_only(runs, toy_store, tmp_path):
    split = toy_store.split(0)
    patients = read_synthetic(
        generate(runs["conditional"], "real-mask-conditional", len(split.train), tmp_path / "s")
    )
    train_masks = {m.tobytes() for m in toy_store.arrays(split.train)[1].astype(np.int64)}
    held_out = {m.tobytes() for m in toy_store.arrays(split.val + split.test)[1].astype(np.int64)}
    used = {m.tobytes() for p in patients for m in p.labels}
    assert used <= train_masks
    assert not used & (held_out - train_masks)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run": "joint", "source": "sideways"}, "unknown source"),
        ({"run": "joint", "source": "joint", "patients": 0}, "at least 1"),
        ({"run": "joint", "source": "joint", "patients": -2}, "at least 1"),
        ({"run": "mask", "source": "joint"}, "needs a joint run"),
        ({"run": "conditional", "source": "mask-conditional"}, "--mask-run"),
        (
            {"run": "conditional", "source": "mask-conditional", "mask_run": "joint"},
            "must be a mask run",
        ),
    ],
)
def test_generate_bad_requests(runs, tmp_path, kwargs, message):
    args = {"patients": 2, **kwargs}
    args["run"] = runs[args["run"]]
    if "mask_run" in args:
        args["mask_run"] = runs[args["mask_run"]]
    with pytest.raises(SynthaugError, match=message):
        generate(out=tmp_path / "syn", **args)
    assert not (tmp_path / "syn").exists()


def test_corrupt_checkpoint_is_a_clear_error(runs, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(runs["joint"], broken)
    shutil.rmtree(broken / "snapshots")
    data = (broken / CHECKPOINT).read_bytes()
    (broken / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.raises(SynthaugError, match="corrupt checkpoint"):
        generate(broken, "joint", 1, tmp_path / "syn")
    assert not (tmp_path / "syn").exists()


def test_mask_run_with_other_labels_is_refused(runs, tmp_path):
    import shutil

    other = tmp_path / "other-mask"
    shutil.copytree(runs["mask"], other)
    meta = json.loads((other / "run.json").read_text())
    meta["labels"] = ["background", "disc", "triangle"]
    (other / "run.json").write_text(json.dumps(meta))
    with pytest.raises(SynthaugError, match="labels"):
        generate(runs["conditional"], "mask-conditional", 1, tmp_path / "syn", mask_run=other)


def test_torchrun_two_processes_end_with_identical_weights(toy_store, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "synthaug",
        "train-gan",
        "--store",
        str(toy_store.path),
        "--fold",
        "0",
        "--variant",
        "conditional",
        "--preset",
        "cpu-micro",
        "--kimg",
        "0.048",
        "--out",
        str(run),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-quality",
    ]
    env = {**os.environ, "SYNTHAUG_QUIET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["nimg"] == 48  # the global batch of 8 is split 4 + 4
    assert summary["rank_max_param_diff"] == 0.0


@pytest.mark.parametrize(
    "args",
    [
        ["train-gan", "--variant", "both", "--fold", "0"],
        ["train-gan", "--variant", "joint", "--fold", "9"],
        ["generate", "--source", "joint", "--patients", "0"],
    ],
)
def test_cli_errors_are_one_line(runs, toy_store, tmp_path, args):
    out = tmp_path / "out"
    extra = (
        ["--store", str(toy_store.path), "--preset", "cpu-micro"]
        if args[0] == "train-gan"
        else ["--run", str(runs["joint"])]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "synthaug", *args, *extra, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert not out.exists()
