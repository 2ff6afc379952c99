"""The study: config validation, resume after a kill, the Ray executor, the report, the demo."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthaug.errors import SynthaugError
from synthaug.report.html import make_report
from synthaug.stages.sources import GeneratorRef
from synthaug.study.config import load_study, parse_study
from synthaug.study.layout import StudyLayout
from synthaug.study.records import read_results
from synthaug.study.runner import run_study

FILTERED = "real-mask-conditional[consistency>=0]"  # the filter's wiring; its logic: tests/gan
OUTCOME_COLUMNS = [
    "dataset",
    "source",
    "n",
    "fold",
    "seed",
    "class_name",
    "dice",
    "slice_dice",
    "steps",
    "best_step",
]


def _config(store, **over) -> dict:
    raw = {
        "name": "toy",
        "datasets": [{"name": "toy", "store": str(store.path)}],
        "sources": ["joint", "real-mask-conditional", FILTERED],
        "n_levels": [0, 1, 2],
        "folds": [0],
        "seeds": [0],
        # Generators this short are flagged unusable: study them anyway (their cells flagged).
        "gan": {"preset": "cpu-micro", "kimg": 0.024, "allow_unusable": True},
        "seg": {"preset": "cpu-micro", "max_steps": 30},
    }
    raw.update(over)
    return raw


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"datasets": [{"name": "x", "store": "/nowhere/store"}]}, "datasets[0].store"),
        ({"sources": ["joint", "diffusion"]}, "sources[1]"),
        ({"gan": {"preset": "gpu-9000"}}, "gan.preset"),
        ({"seg": {"preset": "huge"}}, "seg.preset"),
        ({"n_levels": [0, -2]}, "n_levels"),
        ({"n_levels": [0, 4, 2]}, "n_levels"),
        ({"n_levels": [2, 4]}, "n_levels"),
        ({"folds": "all"}, "folds"),
        ({"colour": "blue"}, "colour"),
        ({"gan": {"preset": "cpu-micro", "kimg": -1}}, "gan.kimg"),
        ({"gan": {"preset": "cpu-micro", "snapshot_kimg": 0}}, "gan.snapshot_kimg"),
        ({"sources": ["joint", "joint"]}, "sources"),
        ({"sources": ["joint[consistency>=2]"]}, "sources[0]"),
        ({"sources": ["joint[dice>=0.5]"]}, "sources[0]"),
        ({"quality": {"enabled": "yes"}}, "quality"),
        ({"gan": {"preset": "cpu-micro", "kimg": {"joint": 1}}}, "gan.kimg"),
        ({"gan": {"preset": "cpu-micro", "kimg": {"joint": 1, "cond": 1}}}, "gan.kimg"),
        ({"gan": {"preset": "cpu-micro", "kimg": {"joint": 1, "conditional": 0}}}, "gan.kimg"),
        ({"diffusion": {"preset": "cpu-micro", "sample_steps": 0}}, "diffusion.sample_steps"),
        ({"diffusion": {"preset": "gpu-9000"}}, "diffusion.preset"),
    ],
)
def test_bad_study_configs_name_the_field(study_store, tmp_path, change, field):
    path = _write(tmp_path, _config(study_store, **change))
    with pytest.raises(SynthaugError) as info:
        load_study(path)
    message = str(info.value)
    assert str(path) in message and field in message
    assert "\n" not in message


def test_missing_fold_is_refused_before_any_work(study_store, tmp_path):
    config = parse_study(_config(study_store, folds=[0, 5]))
    with pytest.raises(SynthaugError, match=r"folds \[5\]"):
        run_study(config, tmp_path / "out")
    assert not (tmp_path / "out" / "gans").exists()


def test_gan_kimg_per_variant(study_store, tmp_path):
    from synthaug.study.grid import plan_study

    kimg = {"joint": 0.5, "mask": 0.25, "conditional": 1.5}
    config = parse_study(_config(study_store, gan={"preset": "cpu-micro", "kimg": kimg}))
    plan = plan_study(config, tmp_path)
    kimgs = {job.request.variant: job.request.kimg for job in plan.generators}
    assert kimgs == {"joint": 0.5, "conditional": 1.5}


def test_generators_of_different_folds_start_side_by_side(study_store, tmp_path):
    from synthaug.study.grid import plan_study

    plan = plan_study(parse_study(_config(study_store, folds=[0, 1])), tmp_path)
    folds = [job.request.fold for job in plan.generators]
    assert sorted(folds) == [0, 0, 1, 1]  # joint and conditional, for each fold
    # Neighbours (the jobs two workers start together) are of different folds, so they do
    # not both train one fold's feature encoder.
    assert all(a != b for a, b in zip(folds, folds[1:], strict=False))


def test_quality_needs_validation_patients(tmp_path):
    from synthaug.data import prepare
    from synthaug.data.options import PrepareOptions
    from tests.helpers.toy import write_toy_msd

    opts = PrepareOptions(
        resolution=32, folds=2, normalization=["none"], crop="none", workers=1, val_fraction=0.0
    )
    store = prepare(write_toy_msd(tmp_path / "ds", patients=4, slices=2), tmp_path / "s", opts)
    with pytest.raises(SynthaugError, match=r"no validation patients.*quality: \{enabled: false\}"):
        run_study(parse_study(_config(store)), tmp_path / "out")
    assert not (tmp_path / "out" / "gans").exists()


def test_cli_study_error_is_one_line(study_store, tmp_path, run_cli):
    path = _write(tmp_path, _config(study_store, sources=["nope"]))
    result = run_cli("study", "--config", path)
    assert result.code == 2
    assert result.err_lines == [result.err.strip()]
    assert "sources[0]" in result.err


@pytest.fixture(scope="module")
def finished_study(study_store, tmp_path_factory) -> Path:
    """The toy grid run once, uninterrupted, with local workers (once per pytest-xdist
    worker that runs a test of it)."""
    out = tmp_path_factory.mktemp("study") / "out"
    return run_study(parse_study(_config(study_store)), out, workers=2)


def _copy_without_cells(finished: Path, root: Path, cells: list[str] | None = None) -> Path:
    """A copy of the finished study with the named cells (``SOURCE-nN`` folders of fold 0,
    seed 0; None: all) and its results table removed, as if it had stopped before them."""
    shutil.copytree(finished.parent, root)
    fold = root / "cells" / "toy" / "fold0" / "seed0"
    for cell in cells if cells is not None else [p.name for p in fold.iterdir()]:
        shutil.rmtree(fold / cell)
    (root / "results.csv").unlink()
    return root


def test_results_table_has_a_row_per_cell_and_class(finished_study):
    df = read_results(finished_study)
    # 1 shared baseline + 3 sources × 2 n levels, × (2 classes + mean)
    assert len(df) == 7 * 3
    assert set(df["source"]) == {"none", "joint", "real-mask-conditional", FILTERED}
    assert set(df["class_name"]) == {"disc", "square", "mean"}
    assert df["dice"].between(0, 1).all()


def test_timings_have_one_entry_per_kind_of_phase(finished_study):
    timings = json.loads((finished_study.parent / "timings.json").read_text())
    # Both U-Net phases add up under train-seg; generators of every family under one label.
    assert set(timings) == {"train-generators", "train-seg", "reference", "generate", "quality"}
    assert all(seconds > 0 for seconds in timings.values())


def test_results_of_another_study_are_refused(study_store, finished_study):
    other = parse_study(_config(study_store, n_levels=[0, 1, 3]))
    before = finished_study.read_bytes()
    with pytest.raises(SynthaugError, match="different study"):
        run_study(other, finished_study.parent)
    assert finished_study.read_bytes() == before


def test_rerun_recomputes_nothing(study_store, finished_study):
    cells = sorted(finished_study.parent.glob("cells/**/results.json"))
    stamps = [p.stat().st_mtime_ns for p in cells]
    run_study(parse_study(_config(study_store)), finished_study.parent)
    assert [p.stat().st_mtime_ns for p in cells] == stamps


@pytest.mark.slow
def test_killed_study_resumes_without_recomputing(study_store, finished_study, tmp_path):
    path = _write(tmp_path, _config(study_store))
    # Its generators, references and synthetic sets are done: the kill lands in the cells,
    # where a fresh study's kill after two cells landed too.
    out = _copy_without_cells(finished_study, tmp_path / "killed")
    cmd = [
        sys.executable,
        "-m",
        "synthaug",
        "study",
        "--config",
        str(path),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "SYNTHAUG_QUIET": "1"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and len(list(out.glob("cells/**/results.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = {p: p.stat().st_mtime_ns for p in out.glob("cells/**/results.json")}
    assert 2 <= len(survivors) < 5, "the kill should land mid-grid"

    done = subprocess.run(
        cmd, env={**os.environ, "SYNTHAUG_QUIET": "1"}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(p.stat().st_mtime_ns == t for p, t in survivors.items()), (
        "a finished cell was recomputed"
    )
    resumed = read_results(out / "results.csv")[OUTCOME_COLUMNS]
    reference = read_results(finished_study)[OUTCOME_COLUMNS]
    pd.testing.assert_frame_equal(resumed.reset_index(drop=True), reference.reset_index(drop=True))


@pytest.mark.slow
def test_ray_executor_on_a_local_instance(study_store, finished_study, tmp_path):
    # Two cells left to run (the real-only baseline and one with synthetic patients): both
    # run as Ray tasks on two Ray workers, and give the local workers' numbers.
    root = _copy_without_cells(finished_study, tmp_path / "ray", ["none-n0", "joint-n2"])
    results = run_study(parse_study(_config(study_store)), root, executor="ray", workers=2)
    assert (root / "cells" / "toy" / "fold0" / "seed0" / "joint-n2" / "results.json").is_file()
    on_ray = read_results(results)[OUTCOME_COLUMNS]
    local = read_results(finished_study)[OUTCOME_COLUMNS]
    pd.testing.assert_frame_equal(on_ray.reset_index(drop=True), local.reset_index(drop=True))


def test_report_files_exist_and_links_resolve(study_store, finished_study, tmp_path):
    html_path = make_report(finished_study, tmp_path / "report")
    text = html_path.read_text()
    links = re.findall(r"src='([^']+)'", text)
    assert "dice_vs_n.png" in links
    # A sample grid for the real data and for every source, the filtered one included.
    config = parse_study(_config(study_store))
    for spec in config.source_specs():
        assert f"samples-toy-{spec.slug}.png" in links, spec.name
        assert f"closest-toy-{spec.slug}.png" in links, spec.name  # memorisation pairs
        assert html.escape(f"synthetic pairs from {spec.name}") in text
    assert "samples-toy-real.png" in links
    for link in links:
        assert (html_path.parent / link).stat().st_size > 0, link
    md = (html_path.parent / "report.md").read_text()
    for link in re.findall(r"\]\(([^)]+)\)", md):
        assert (html_path.parent / link).is_file(), link
    stats = json.loads((html_path.parent / "stats.json").read_text())
    assert {r["n"] for r in stats["summary"]} == {0, 1, 2}
    # One dataset: no Friedman test over datasets, and the report says why.
    assert stats["omnibus"] == [] and len(stats["omnibus_notes"]) == 3
    assert {c["n_pairs"] for c in stats["comparisons"]} == {1}  # one fold: one pair
    assert "cannot show a significant difference" in text
    assert "Verdict" in text and "REAL test patients" in text
    assert "How Dice is computed" in text and "test patients without it" in text
    assert "fid_over_training.png" in links
    assert "Synthetic data quality" in text and "consistency real val" in text
    assert "Generators over training" in text


def test_study_scores_generators_and_synthetic_sets(finished_study):
    root = finished_study.parent
    for variant in ("joint", "conditional"):
        run = StudyLayout(root).generator_run("toy", 0, GeneratorRef("stylegan2", variant))
        q = json.loads((run / "quality.json").read_text())
        assert q["snapshots"] and q["best"]["snapshot"]
    slug = "real-mask-conditional.consistency-ge-0"
    meta = json.loads((root / "synthetic" / "toy" / "fold0" / slug / "dataset.json").read_text())
    assert meta["synthaug"]["filter"]["acceptance_rate"] == 1.0
    for source in ("joint", "real-mask-conditional", slug):
        q = json.loads((root / "quality" / "toy" / "fold0" / f"{source}.json").read_text())
        assert q["joint"]["fid"] >= 0 and 0 <= q["consistency"]["synthetic"]["mean"] <= 1
        # The reference U-Net is the study's own real-only cell of fold 0.
        assert q["consistency"]["real_val"]["mean"] > 0


def test_stats_cli_prints_friedman_and_wilcoxon(finished_study, run_cli):
    result = run_cli("stats", finished_study)
    assert result.code == 0, result.err
    assert "toy / joint: n=0:" in result.out
    assert "Friedman" in result.out and "Wilcoxon" in result.out


def test_stats_on_a_non_results_file_is_a_clear_error(tmp_path, run_cli):
    bad = tmp_path / "results.csv"
    bad.write_text("a,b\n1,2\n")
    result = run_cli("stats", bad)
    assert result.code == 2 and "lacks column" in result.err


def test_paper_config_is_valid_once_stores_exist(study_store, tmp_path):
    raw = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "configs" / "paper.yaml").read_text()
    )
    assert len(raw["datasets"]) == 6 and len(raw["n_levels"]) == 26
    for entry in raw["datasets"]:
        entry["store"] = str(study_store.path)
    config = parse_study(raw)
    assert config.gan.preset == "gpu-256" and config.folds == [0, 1, 2, 3, 4]
    assert [g.variant for g in config.generators()] == ["joint", "mask", "conditional"]


def _flag_unusable(run: Path) -> None:
    """Mark every snapshot of a scored run collapsed, as the detector would."""
    path = run / "quality.json"
    scores = json.loads(path.read_text())
    for row in scores["snapshots"]:
        row.update(collapsed=True, failure="collapsed")
    scores["usable"] = False
    path.write_text(json.dumps(scores))


def test_an_unusable_generator_stops_the_study_unless_allowed(
    study_store, finished_study, tmp_path
):
    root = tmp_path / "copy"
    shutil.copytree(finished_study.parent, root)
    for variant in ("joint", "conditional"):
        _flag_unusable(root / "gans" / "toy" / "fold0" / variant)
    strict = _config(study_store, gan={"preset": "cpu-micro", "kimg": 0.024})
    with pytest.raises(SynthaugError) as info:
        run_study(parse_study(strict), root)  # resuming: the check runs after train-gan
    message = str(info.value)
    assert "toy fold 0 stylegan2 joint (every snapshot collapsed)" in message
    assert "toy fold 0 stylegan2 conditional (every snapshot collapsed)" in message
    assert "allow_unusable" in message and "\n" not in message
    df = read_results(run_study(parse_study(_config(study_store)), root))  # allowed
    usable = df.drop_duplicates(["source", "n", "fold", "seed"]).set_index("source")
    for source in ("joint", "real-mask-conditional"):
        assert (usable.loc[source, "generator_usable"] == False).all()  # noqa: E712
    assert pd.isna(usable.loc["none", "generator_usable"])  # one baseline cell, no generator
    html_text = make_report(root / "results.csv", tmp_path / "report").read_text()
    assert "generators flagged unusable" in html_text


def test_a_filtered_set_is_judged_by_another_u_net_than_its_filter(finished_study):
    root = finished_study.parent
    slug = "real-mask-conditional.consistency-ge-0"
    meta = json.loads((root / "synthetic" / "toy" / "fold0" / slug / "dataset.json").read_text())
    filter_unet = meta["synthaug"]["filter"]["unet"]
    quality = json.loads((root / "quality" / "toy" / "fold0" / f"{slug}.json").read_text())
    assert quality["judge"] != filter_unet
    for unet in (filter_unet, quality["judge"]):
        assert "/references/toy/fold0/" in unet and "/cells/" not in unet  # not study cells
    assert quality["consistency"]["synthetic"]["slices"] > 0
