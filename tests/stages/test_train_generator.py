"""The train-generator stage: snapshot scoring, the best snapshot, and whether a run is usable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from synthaug.gan.run import layout
from synthaug.generator import TrainRequest
from synthaug.quality import snapshots as snap_quality
from synthaug.quality.features import DomainEncoderConfig
from synthaug.quality.snapshots import unusable_reason
from synthaug.stages.train_generator import (
    SNAPSHOT_SCORES,
    chosen_snapshot,
    is_scored,
    is_trained,
    score_run,
    train_generator,
)
from synthaug.torch_io import load_torch, save_torch

FAST_ENCODER = DomainEncoderConfig(widths=(8, 16, 32), steps=30)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


def _collapse(snapshot: Path) -> None:
    """Make a generator ignore its latent: zero the mapping network's last layer (w = its
    bias) and every noise strength, so all samples are the same image."""
    state = load_torch(snapshot)
    g = state["G_ema"]
    mapping = [k for k in g if k.startswith("mapping_network.layers.") and k.endswith("weight")]
    last = max(mapping, key=lambda k: int(k.split(".")[2]))
    g[last] = torch.zeros_like(g[last])
    for key in g:
        if key.endswith("noise.strength"):
            g[key] = torch.zeros_like(g[key])
    save_torch(snapshot, state)


def test_score_snapshots_flags_a_collapsed_generator(runs, tmp_path, cache):
    run = tmp_path / "joint"
    shutil.copytree(runs["joint"], run)
    for snap in layout(run).snapshot_files():
        _collapse(snap)
    result = score_run(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    assert all(r["collapsed"] and r["failure"] == "collapsed" for r in result["snapshots"])
    assert result["usable"] is False and len(result["warnings"]) == 2
    assert all(": collapsed — " in w for w in result["warnings"])
    assert unusable_reason(result) == "every snapshot collapsed"
    assert all(r["image"]["diversity"] < 0.05 for r in result["snapshots"])


@pytest.mark.parametrize("variant", ["joint", "mask", "conditional"])
def test_score_snapshots_scores_every_snapshot_and_picks_the_best(
    runs, tmp_path, cache, variant, monkeypatch
):
    run = tmp_path / variant
    shutil.copytree(runs[variant], run)
    result = score_run(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    rows = result["snapshots"]
    assert [r["snapshot"] for r in rows] == [p.name for p in layout(run).snapshot_files()]
    space = "mask" if variant == "mask" else "image"
    assert result["space"] == space
    assert set(result["baseline"]) >= {space, "what"}
    assert "validation" in result["reference"]
    candidates = [r for r in rows if not r["collapsed"]] or rows
    if variant == "conditional":  # ranked by how well images follow their masks
        assert all(0 <= r["consistency"] <= 1 for r in rows)
        assert 0 < result["baseline"]["consistency"] <= 1
        best = max(candidates, key=lambda r: r["consistency"])
        assert "consistency" in result["ranked_by"]
    else:
        best = min(candidates, key=lambda r: r[space]["fid"])
    assert result["best"]["snapshot"] == best["snapshot"]
    # generate's default weights are now the best snapshot, not the latest.
    assert chosen_snapshot(run).name == best["snapshot"]
    on_disk = json.loads((run / SNAPSHOT_SCORES).read_text())
    assert on_disk["best"] == result["best"]

    # A second call reuses the scores instead of regenerating.
    def boom(*args, **kwargs):
        raise AssertionError("re-scored a snapshot that was already scored")

    monkeypatch.setattr(snap_quality, "_score_one", boom)
    again = score_run(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    assert again["snapshots"] == rows


def test_named_snapshot_wins_over_the_best(runs, tmp_path, cache):
    run = tmp_path / "joint"
    shutil.copytree(runs["joint"], run)
    score_run(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    first = layout(run).snapshot_files()[0]
    assert chosen_snapshot(run, first) == first
    (run / SNAPSHOT_SCORES).write_text("{not json")  # a torn file: fall back to the latest
    assert chosen_snapshot(run) == layout(run).snapshot_files()[-1]


def test_scores_say_whether_the_run_is_usable_and_leave_the_run_alone(
    runs, toy_store, tmp_path, cache
):
    run = tmp_path / "joint"
    shutil.copytree(runs["joint"], run)
    request = TrainRequest(
        str(toy_store.path), 0, "joint", str(run), preset="cpu-micro", kimg=0.032,
        snapshot_kimg=0.016, resume=True,
    )  # fmt: skip
    result = train_generator(request, score=False)  # finished: resuming trains nothing more
    assert result.health is not None and result.health.nimg == 32
    assert result.scores is None and result.usable is None
    assert is_trained(run, 0.032) and not is_trained(run, 0.05) and not is_scored(run)
    scores = score_run(run, cache_dir=cache, encoder_config=FAST_ENCODER)
    assert is_scored(run)
    assert scores["final_snapshot_usable"] == (not scores["snapshots"][-1]["collapsed"])
    best = next(r for r in scores["snapshots"] if r["snapshot"] == scores["best"]["snapshot"])
    assert scores["usable"] == (not best["collapsed"])
    # The scores are the stage's file: the family's summary.json does not carry them.
    assert "usable" not in json.loads((run / "summary.json").read_text())
