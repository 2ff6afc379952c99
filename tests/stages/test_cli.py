"""The stage commands on the command line: what they write and print, and one-line errors.

In-process (``run_cli``): a real process's exit code and stderr are tests/test_cli.py's."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from synthaug.stages import GenerateOptions, generate
from synthaug.stages.train_generator import SNAPSHOT_SCORES


def test_cli_quality_writes_every_metric(run_cli, runs, toy_store, tmp_path):
    options = GenerateOptions(
        str(runs["conditional"]), "real-mask-conditional", 3, str(tmp_path / "syn")
    )
    syn = generate(options).path
    out = tmp_path / "q.json"
    result = run_cli(
        "quality", "--store", str(toy_store.path), "--fold", "0", "--synthetic", str(syn),
        "--out", str(out), "--unet-preset", "cpu-micro", "--cache", str(tmp_path / "cache"),
    )  # fmt: skip
    assert result.code == 0, result.err[-2000:]
    quality = json.loads(out.read_text())
    assert set(quality["modalities"]) == {"A", "B"} and quality["joint"]["fid"] >= 0
    assert quality["real_baseline"]["joint"]["n_synthetic"] == len(
        toy_store.arrays(toy_store.split(0).val)[0]
    )
    assert 0 <= quality["consistency"]["synthetic"]["mean"] <= 1
    assert "class_frequency" in quality["labels"]
    assert "held-out real" in result.out and "consistency" in result.out


def test_cli_quality_refuses_a_synthetic_set_with_other_channels(run_cli, toy_store, tmp_path):
    from synthaug.data.synthetic import SyntheticPatient, write_synthetic_dataset

    r = toy_store.resolution
    one_channel = [SyntheticPatient("p", np.zeros((4, 1, r, r), np.float32), np.zeros((4, r, r)))]
    syn = write_synthetic_dataset(tmp_path / "syn", one_channel, ["A"], toy_store.label_names)
    result = run_cli(
        "quality", "--store", str(toy_store.path), "--fold", "0", "--synthetic", str(syn),
        "--out", str(tmp_path / "q.json"),
    )  # fmt: skip
    assert result.code == 2
    assert str(syn) in result.err and "modality" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "q.json").exists()


def test_cli_generate_with_a_bad_filter_is_one_line(run_cli, runs, tmp_path):
    result = run_cli(
        "generate", "--run", str(runs["joint"]), "--source", "joint", "--patients", "1",
        "--out", str(tmp_path / "s"), "--filter", "consistency>=1.5",
    )  # fmt: skip
    assert result.code == 2 and "filter" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_cli_quality_snapshots_prints_the_table(run_cli, runs, tmp_path):
    run = tmp_path / "mask"
    shutil.copytree(runs["mask"], run)
    result = run_cli("quality-snapshots", str(run))
    assert result.code == 0, result.err[-2000:]
    assert "too close" in result.out and "best (*)" in result.out
    assert "against real validation slices" in result.out
    assert (run / SNAPSHOT_SCORES).is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["train-gan", "--variant", "both", "--fold", "0"],
        ["train-gan", "--variant", "joint", "--fold", "9"],
        ["generate", "--source", "joint", "--patients", "0"],
    ],
)
def test_cli_errors_are_one_line(run_cli, runs, toy_store, tmp_path, args):
    out = tmp_path / "out"
    extra = (
        ["--store", str(toy_store.path), "--preset", "cpu-micro"]
        if args[0] == "train-gan"
        else ["--run", str(runs["joint"])]
    )
    result = run_cli(*args, *extra, "--out", out)
    assert result.code == 2
    assert len(result.err_lines) == 1 and result.err_lines[0].startswith("error:")
    assert not out.exists()
