"""The ``synthaug`` command: help, info, prepare/phantom/demo wiring, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthaug import __version__
from synthaug.data import SliceStore
from synthaug.data.splits import kfold_splits
from tests.helpers.data import leftovers


def _run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTHAUG_QUIET": "1"}
    return subprocess.run(
        [sys.executable, "-m", "synthaug", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_help_lists_the_commands(tmp_path):
    proc = _run_module("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for command in ("phantom", "prepare", "info", "demo"):
        assert command in proc.stdout


def test_error_is_one_line_and_exit_2_in_a_real_process(tmp_path):
    proc = _run_module("info", str(tmp_path / "no_store"), cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "no_store" in lines[0] and "not a slice store" in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_version(run_cli):
    result = run_cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"synthaug {__version__}"


def test_info_prints_the_summary_as_json(run_cli, tiny_store):
    result = run_cli("info", tiny_store.path)
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary == json.loads(json.dumps(tiny_store.summary()))
    assert summary["patients"] == 4
    assert summary["modalities"] == ["T1", "T2"]
    assert summary["labels"] == ["background", "alpha", "beta"]
    assert summary["folds"] == 2


def test_info_on_a_plain_folder(run_cli, tmp_path):
    result = run_cli("info", tmp_path)
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("error: ")
    assert str(tmp_path) in result.err_lines[0]
    assert result.out == ""


def test_prepare_passes_the_options_through(run_cli, tiny_msd, tmp_path):
    out = tmp_path / "store"
    result = run_cli(
        "prepare",
        "--dataset",
        tiny_msd,
        "--out",
        out,
        "--resolution",
        "16",
        "--axis",
        "coronal",
        "--folds",
        "3",
        "--seed",
        "5",
        "--val-fraction",
        "0.25",
        "--normalization",
        "mr,ct",
        "--ct-window",
        "-50,150",
        "--crop",
        "none",
        "--drop-edge",
        "0.1",
        "--workers",
        "1",
    )
    assert result.code == 0, result.err
    assert "prepare: 4 patients" in result.err
    store = SliceStore(out)
    opts = store.meta["options"]
    assert opts["resolution"] == 16 and opts["axis"] == "coronal"
    assert opts["folds"] == 3 and opts["seed"] == 5 and opts["val_fraction"] == 0.25
    assert opts["normalization"] == ["mr", "ct"] and opts["ct_window"] == [-50.0, 150.0]
    assert opts["crop"] == "none" and opts["drop_edge"] == 0.1
    assert store.meta["patients"][0]["normalization"] == ["mr", "ct"]
    # coronal slices of a 12 x 14 x 10 volume: 14 along y, all kept; training skips 1 at
    # each end
    assert store.slice_counts() == [14] * 4
    assert [len(store.training_indices([p])) for p in store.patients] == [12] * 4
    assert store.images.shape[2:] == (16, 16)
    expected = kfold_splits(store.patients, 3, 5, 0.25)
    assert [f["test"] for f in store.meta["folds"]] == [s["test"] for s in expected]
    assert leftovers(out) == []


@pytest.mark.parametrize(
    ("option", "value", "mentions"),
    [
        ("--axis", "diagonal", "axis"),
        ("--ct-window", "abc", "ct_window"),
        ("--mr-percentiles", "60,10", "mr_percentiles"),
        ("--resolution", "4", "resolution"),
        ("--folds", "1", "folds"),
        ("--crop", "tight", "crop"),
        ("--layout", "decathlon2", "layout"),
        ("--normalization", "mr,ct,ct", "normalization"),
        ("--normalization", "zscore", "normalization"),
        ("--val-fraction", "1.5", "val_fraction"),
        ("--drop-edge", "0.5", "drop_edge"),
        ("--workers", "0", "workers"),
    ],
)
def test_prepare_bad_option_is_one_line(run_cli, tiny_msd, tmp_path, option, value, mentions):
    out = tmp_path / "store"
    result = run_cli("prepare", "--dataset", tiny_msd, "--out", out, "--folds", "2", option, value)
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("error: ")
    assert mentions in result.err_lines[0]
    assert not out.exists() and leftovers(out) == []


def test_phantom_bad_task(run_cli, tmp_path):
    result = run_cli("phantom", "--out", tmp_path / "ph", "--task", "bones")
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("error: ") and "bones" in result.err_lines[0]
    assert not (tmp_path / "ph").exists()


def test_phantom_command_writes_a_dataset(run_cli, tmp_path):
    out = tmp_path / "ph"
    result = run_cli(
        "phantom",
        "--out",
        out,
        "--patients",
        "1",
        "--task",
        "lesion",
        "--seed",
        "3",
        "--workers",
        "1",
    )
    assert result.code == 0, result.err
    meta = json.loads((out / "dataset.json").read_text())
    assert (
        meta["name"] == "phantom-lesion"
        and meta["numTraining"] == 1
        and meta["release"] == "seed 3"
    )
    again = run_cli("phantom", "--out", out, "--patients", "1")
    assert again.code == 2 and "already exists" in again.err_lines[0]


@pytest.mark.slow
def test_demo_quick_runs_the_whole_study_and_resumes(run_cli, tmp_path):
    from synthaug.demo import QUICK
    from synthaug.study.records import read_results

    out = tmp_path / "run"
    result = run_cli("demo", "--quick", "--out", out)
    assert result.code == 0, result.err
    report = out / "report" / "index.html"
    assert f"report: {report.resolve()}" in result.err
    for task in ("tissue", "lesion"):
        store = SliceStore(out / "stores" / f"phantom-{task}")
        assert store.num_channels == 3 and store.resolution == QUICK.resolution
    df = read_results(out / "study" / "results.csv")
    cells = df.drop_duplicates(["dataset", "source", "n", "fold", "seed"])
    sources = len(QUICK.sources)
    assert {"real-mask-diffusion", "mask-diffusion"} <= set(QUICK.sources)  # both families
    planned = 2 * len(QUICK.study_folds) * (1 + sources * (len(QUICK.n_levels) - 1))
    assert len(cells) == planned  # a row for every planned cell
    for figure in ("dice_vs_n.png", "fid_over_training.png"):
        assert (out / "report" / figure).is_file(), figure
    # 2 datasets × 3 n levels: no Friedman test over datasets can reject, so no ranking is
    # drawn, the verdict says why, and the demo said so before it ran.
    assert not list((out / "report").glob("cd_diagram*.png"))
    assert "no evidence of any difference between n levels" in report.read_text()
    assert "demo: note: folds:" in result.err
    stats = json.loads((out / "study" / "stats.json").read_text())
    assert stats["design"] == "per-source" and stats["comparisons"]
    # Quality: every synthetic set scored, the consistency and its real ceiling printed.
    assert (
        len(list(out.glob("study/quality/*/fold*/*.json"))) == 2 * len(QUICK.study_folds) * sources
    )
    assert "real-mask-conditional: mask–image consistency" in result.err
    assert "Synthetic data quality" in report.read_text()
    # a second run reuses every artifact: no cell is recomputed
    cell_files = sorted(out.glob("study/cells/**/results.json"))
    stamps = [p.stat().st_mtime_ns for p in cell_files]
    again = run_cli("demo", "--quick", "--out", out)
    assert again.code == 0, again.err
    assert [p.stat().st_mtime_ns for p in cell_files] == stamps


@pytest.mark.parametrize("name", ["scans[x]", "scans[/x]"])
def test_error_message_with_brackets_is_printed_verbatim(run_cli, tmp_path, name):
    path = tmp_path / name
    result = run_cli("info", path)
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert str(path) in result.err_lines[0]
