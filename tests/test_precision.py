"""Precision: what auto resolves to, that each family records and uses what it resolved, and
that bad values are refused before anything runs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import synthaug.precision as precision
from synthaug.errors import SynthaugError
from synthaug.precision import autocast, check_precision, resolve_precision


def test_explicit_precisions_pass_through_and_others_are_refused():
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(SynthaugError, match="'fp16' is not one of auto, fp32, bf16"):
        check_precision("fp16")
    with pytest.raises(SynthaugError, match="seg.precision"):
        check_precision("half", "seg.precision")


@pytest.mark.parametrize(
    ("instructions", "speedup", "keeps_quality", "expected"),
    [
        (["avx512_bf16"], 2.0, True, "bf16"),
        (["amx_bf16", "avx512_bf16"], 1.0, True, "fp32"),  # the probe finds no gain
        ([], 3.0, True, "fp32"),  # no native bf16: emulated bf16 is slow
        (["avx512_bf16"], 2.0, False, "fp32"),  # the family's quality did not hold
    ],
)
def test_auto_takes_bf16_only_where_it_is_native_fast_and_keeps_quality(
    monkeypatch, instructions, speedup, keeps_quality, expected
):
    monkeypatch.setattr(precision, "cpu_bf16_instructions", lambda: instructions)
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: speedup)
    assert resolve_precision("auto", "cpu", keeps_quality) == expected
    assert resolve_precision(None, "cpu", keeps_quality) == expected


def test_small_networks_take_bf16_on_the_cpu_only_with_amx(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 2.0)
    monkeypatch.setattr(precision, "cpu_bf16_instructions", lambda: ["avx512_bf16"])
    assert resolve_precision("auto", "cpu", needs_amx=True) == "fp32"
    assert resolve_precision("auto", "cpu", needs_amx=False) == "bf16"
    monkeypatch.setattr(precision, "cpu_bf16_instructions", lambda: ["amx_bf16", "avx512_bf16"])
    assert resolve_precision("auto", "cpu", needs_amx=True) == "bf16"


def test_the_probe_and_the_matmul_figure_are_positive_numbers():
    assert precision.cpu_bf16_speedup() > 0
    assert precision.matmul_gflops(threads=1, size=256) > 0


def test_autocast_runs_convolutions_in_bf16_only_when_asked():
    conv = torch.nn.Conv2d(2, 2, 3)
    x = torch.randn(1, 2, 8, 8)
    with autocast("bf16", "cpu"):
        assert conv(x).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert conv(x).dtype == torch.float32


def test_stylegan2_mapping_trains_under_bf16_autocast():
    # The moving average of w is fp32: a bf16 w from autocast must not break its update.
    from synthaug.gan import build_networks

    G, _ = build_networks("joint", 16, 1, 2, z_dim=16, w_dim=16, mapping_layers=1,
                          channel_base=64, channel_max=16)  # fmt: skip
    G.train()
    before = G.mapping_network.w_avg.clone()
    with autocast("bf16", "cpu"):
        G(torch.randn(2, 16))
    assert G.mapping_network.w_avg.dtype == torch.float32
    assert not torch.equal(G.mapping_network.w_avg, before)


@pytest.mark.parametrize("used", ["fp32", "bf16"])
def test_a_unet_records_its_precision_and_a_resume_keeps_it(study_store, tmp_path, used):
    import json

    import synthaug.seg.train as seg_train
    from synthaug.seg.train import SegOptions, train_seg

    opts = SegOptions(store=str(study_store.path), fold=0, out=str(tmp_path / "s"),
                      preset="cpu-micro", max_steps=80, precision=used)  # fmt: skip
    calls = {"n": 0}
    real_eval = seg_train.evaluate_patients

    def dies_at_second_validation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_eval(*args, **kwargs)

    seg_train.evaluate_patients = dies_at_second_validation
    try:
        with pytest.raises(KeyboardInterrupt):
            train_seg(opts)
    finally:
        seg_train.evaluate_patients = real_eval
    other = "bf16" if used == "fp32" else "fp32"
    r = train_seg(dataclasses.replace(opts, resume=True, precision=other))
    assert r.precision == used  # the run finishes in the precision it started with
    assert json.loads((tmp_path / "s" / "seg.json").read_text())["precision_used"] == used
    assert r.test_mean_dice > 0.3  # it learned in either precision


def test_study_config_refuses_an_unknown_precision(study_store, tmp_path):
    from synthaug.study.config import parse_study

    base = {
        "name": "p", "datasets": [{"name": "toy", "store": str(study_store.path)}],
        "sources": ["real-mask-gmm"], "n_levels": [0, 1], "folds": [0],
    }  # fmt: skip
    assert parse_study({**base, "seg": {"precision": "bf16"}}).seg.precision == "bf16"
    with pytest.raises(SynthaugError, match="seg.precision: 'fp16'"):
        parse_study({**base, "seg": {"precision": "fp16"}})
    with pytest.raises(SynthaugError, match="diffusion.precision: 'half'"):
        parse_study({**base, "diffusion": {"precision": "half"}})
    with pytest.raises(SynthaugError, match="seg.device"):
        parse_study({**base, "seg": {"device": "tpu"}})
    # auto (the default) and the device leave the fingerprint of older studies unchanged
    assert (
        parse_study(base).fingerprint()
        == parse_study({**base, "seg": {"precision": "auto", "device": "auto"}}).fingerprint()
    )
    assert (
        parse_study(base).fingerprint()
        != parse_study({**base, "seg": {"precision": "fp32"}}).fingerprint()
    )


def test_demo_estimate_scales_with_the_machine_figure():
    from synthaug.demo import FULL, QUALITY, QUICK, estimate_seconds

    assert estimate_seconds(QUICK, QUICK.measured_gflops) == pytest.approx(QUICK.measured_seconds)
    assert estimate_seconds(FULL, 2 * FULL.measured_gflops) == pytest.approx(
        FULL.measured_seconds / 2
    )
    assert estimate_seconds(QUALITY, 100.0) is None  # never measured: no figure is invented
