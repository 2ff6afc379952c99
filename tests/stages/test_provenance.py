"""Artifacts of another fold or store are refused wherever a user can hand one in: such a
generator or U-Net has seen this fold's test patients."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from synthaug.errors import SynthaugError
from synthaug.gan.train import train
from synthaug.generator import TrainRequest
from synthaug.seg.train import SegOptions, train_seg
from synthaug.stages import AssessOptions, GenerateOptions, assess_synthetic, generate


@pytest.fixture(scope="module")
def other_fold(toy_store, tmp_path_factory) -> dict[str, Path]:
    """A mask generator and a real-only U-Net of fold 1 (the shared runs are fold 0's)."""
    root = tmp_path_factory.mktemp("fold1")
    mask = train(
        TrainRequest(str(toy_store.path), 1, "mask", str(root / "mask"), "cpu-micro", 0.016)
    )
    unet = root / "unet"
    train_seg(SegOptions(str(toy_store.path), 1, str(unet), preset="cpu-micro", max_steps=2))
    return {"mask": mask, "unet": unet / "model.pt"}


@pytest.fixture(scope="module")
def fold0_set(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fold0_set") / "syn"
    return generate(GenerateOptions(str(runs["joint"]), "joint", 2, str(out))).path


def _refused(call, out: Path, *words: str) -> None:
    with pytest.raises(SynthaugError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "fold 1" in message and "fold 0" in message, message
    assert all(w in message for w in words), message
    assert not out.exists()


def test_generate_refuses_a_mask_generator_of_another_fold(runs, other_fold, tmp_path):
    out = tmp_path / "syn"
    options = GenerateOptions(
        str(runs["conditional"]), "mask-conditional", 1, str(out), mask_run=str(other_fold["mask"])
    )
    _refused(lambda: generate(options), out, "mask generator", "test patients")


def test_generate_refuses_a_filter_u_net_of_another_fold(runs, other_fold, tmp_path):
    out = tmp_path / "syn"
    options = GenerateOptions(
        str(runs["joint"]), "joint", 1, str(out), filter="consistency>=0.1",
        reference_unet=str(other_fold["unet"]), unet_preset="cpu-micro",
    )  # fmt: skip
    _refused(lambda: generate(options), out, "U-Net")


def test_quality_refuses_a_judge_of_another_fold(toy_store, other_fold, fold0_set, tmp_path):
    out = tmp_path / "q.json"
    options = AssessOptions(
        str(toy_store.path), 0, (str(fold0_set),), (str(out),),
        reference_unet=str(other_fold["unet"]), unet_preset="cpu-micro",
    )  # fmt: skip
    _refused(lambda: assess_synthetic(options), out, "U-Net")


def test_quality_refuses_a_synthetic_set_of_another_fold(toy_store, fold0_set, tmp_path):
    out = tmp_path / "q.json"
    options = AssessOptions(str(toy_store.path), 1, (str(fold0_set),), (str(out),))
    _refused(lambda: assess_synthetic(options), out, "synthetic set")


def test_train_seg_refuses_a_synthetic_set_of_another_fold(toy_store, fold0_set, tmp_path):
    out = tmp_path / "cell"
    options = SegOptions(
        str(toy_store.path), 1, str(out), synthetic=str(fold0_set), n_patients=1,
        preset="cpu-micro", max_steps=2,
    )  # fmt: skip
    _refused(lambda: train_seg(options), out, "synthetic set")


def test_a_u_net_without_provenance_is_refused(runs, other_fold, tmp_path):
    bare = tmp_path / "elsewhere" / "model.pt"
    bare.parent.mkdir()
    shutil.copy(other_fold["unet"], bare)  # weights without their run's seg.json
    options = GenerateOptions(
        str(runs["joint"]), "joint", 1, str(tmp_path / "syn"), filter="consistency>=0.1",
        reference_unet=str(bare), unet_preset="cpu-micro",
    )  # fmt: skip
    with pytest.raises(SynthaugError, match="records no store and fold"):
        generate(options)


def test_a_generator_whose_store_changed_is_refused(runs, tmp_path):
    run = tmp_path / "joint"
    shutil.copytree(runs["joint"], run)
    meta = json.loads((run / "run.json").read_text())
    meta["store_fingerprint"] = "0" * 16  # as if the store had been prepared again
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(SynthaugError, match="generator belongs to fold 0"):
        generate(GenerateOptions(str(run), "joint", 1, str(tmp_path / "syn")))
    assert not (tmp_path / "syn").exists()


def test_the_same_fold_is_accepted_and_recorded(runs, toy_store, tmp_path):
    unet = tmp_path / "unet"
    train_seg(SegOptions(str(toy_store.path), 0, str(unet), preset="cpu-micro", max_steps=2))
    options = GenerateOptions(
        str(runs["joint"]), "joint", 1, str(tmp_path / "syn"), filter="consistency>=0",
        reference_unet=str(unet / "model.pt"), unet_preset="cpu-micro",
    )  # fmt: skip
    made = generate(options)
    recorded = json.loads((made.path / "dataset.json").read_text())["synthaug"]
    assert recorded["fold"] == 0 and recorded["store_fingerprint"] == toy_store.fingerprint
    assert recorded["filter"]["unet"] == str((unet / "model.pt").resolve())
