"""The stage commands on the command line: what they write and print, and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from synthaug.stages import GenerateOptions, generate
from synthaug.stages.train_generator import SNAPSHOT_SCORES


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synthaug", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SYNTHAUG_QUIET": "1"},
    )


def test_cli_quality_writes_every_metric(runs, toy_store, tmp_path):
    options = GenerateOptions(
        str(runs["conditional"]), "real-mask-conditional", 3, str(tmp_path / "syn")
    )
    syn = generate(options).path
    out = tmp_path / "q.json"
    proc = _cli(
        "quality", "--store", str(toy_store.path), "--fold", "0", "--synthetic", str(syn),
        "--out", str(out), "--unet-preset", "cpu-micro", "--cache", str(tmp_path / "cache"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["modalities"]) == {"A", "B"} and result["joint"]["fid"] >= 0
    assert result["real_baseline"]["joint"]["n_synthetic"] == len(
        toy_store.arrays(toy_store.split(0).val)[0]
    )
    assert 0 <= result["consistency"]["synthetic"]["mean"] <= 1
    assert "class_frequency" in result["labels"]
    assert "held-out real" in proc.stdout and "consistency" in proc.stdout


def test_cli_quality_refuses_a_synthetic_set_with_other_channels(toy_store, tmp_path):
    from synthaug.data.synthetic import SyntheticPatient, write_synthetic_dataset

    r = toy_store.resolution
    one_channel = [SyntheticPatient("p", np.zeros((4, 1, r, r), np.float32), np.zeros((4, r, r)))]
    syn = write_synthetic_dataset(tmp_path / "syn", one_channel, ["A"], toy_store.label_names)
    proc = _cli(
        "quality", "--store", str(toy_store.path), "--fold", "0", "--synthetic", str(syn),
        "--out", str(tmp_path / "q.json"),
    )  # fmt: skip
    assert proc.returncode == 2
    assert str(syn) in proc.stderr and "modality" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "q.json").exists()


def test_cli_generate_with_a_bad_filter_is_one_line(runs, tmp_path):
    proc = _cli(
        "generate", "--run", str(runs["joint"]), "--source", "joint", "--patients", "1",
        "--out", str(tmp_path / "s"), "--filter", "consistency>=1.5",
    )  # fmt: skip
    assert proc.returncode == 2 and "filter" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_cli_quality_snapshots_prints_the_table(runs, tmp_path):
    run = tmp_path / "mask"
    shutil.copytree(runs["mask"], run)
    proc = _cli("quality-snapshots", str(run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "too close" in proc.stdout and "best (*)" in proc.stdout
    assert "against real validation slices" in proc.stdout
    assert (run / SNAPSHOT_SCORES).is_file()


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
