"""The small-data StyleGAN2 options: each preset field reaches the run, LeCam against a hand
computation, the OASIS discriminator's losses on toy cases, and early stopping on collapse."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from synthaug.errors import SynthaugError
from synthaug.gan.augment import AdaptiveAugment, diff_augment
from synthaug.gan.loss import LeCamRegularizer, StyleGAN2Loss, lecam_penalty
from synthaug.gan.networks import SegmentationDiscriminator, VariantSpec, build_networks
from synthaug.gan.oasis import (
    OasisLoss,
    class_balance_weights,
    label_mix,
    labelmix_penalty,
    oasis_d_loss,
    oasis_g_loss,
    realness,
)
from synthaug.gan.presets import GAN_PRESETS
from synthaug.gan.run import preset_of, read_meta
from synthaug.gan.train import _setup, train
from synthaug.generator import TrainRequest, with_settings
from synthaug.lifecycle import training_rows
from synthaug.runlog import read_metrics

TINY = dict(z_dim=32, w_dim=32, mapping_layers=2, channel_base=128, channel_max=16)


# ------------------------------------------------------------------ LeCam


def test_lecam_penalty_matches_hand_computation() -> None:
    real = torch.tensor([[2.0], [-1.0], [0.5]])
    fake = torch.tensor([[-3.0], [1.0]])
    a_real, a_fake = torch.tensor(1.0), torch.tensor(-0.5)
    # relu(real - a_fake)^2 = (2.5^2, 0, 1^2) -> mean 7.25/3; relu(a_real - fake)^2 = (16, 0)
    expected = (6.25 + 0.0 + 1.0) / 3 + (16.0 + 0.0) / 2
    assert float(lecam_penalty(real, fake, a_real, a_fake)) == pytest.approx(expected)


def test_lecam_anchors_start_at_the_first_batch_then_move_by_ema() -> None:
    reg = LeCamRegularizer(decay=0.9)
    real, fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[-2.0], [-4.0]])
    first = reg(real, fake)
    assert float(reg.anchor_real) == pytest.approx(2.0)
    assert float(reg.anchor_fake) == pytest.approx(-3.0)
    # anchors 2 / -3: relu(1+3)^2, relu(3+3)^2 -> 26; relu(2+2)^2, relu(2+4)^2 -> 26
    assert float(first) == pytest.approx(26.0 + 26.0)
    reg(torch.tensor([[12.0]]), torch.tensor([[-13.0]]))
    assert float(reg.anchor_real) == pytest.approx(0.9 * 2.0 + 0.1 * 12.0)
    assert float(reg.anchor_fake) == pytest.approx(0.9 * -3.0 + 0.1 * -13.0)


def test_lecam_adds_its_weighted_term_to_the_d_loss() -> None:
    torch.manual_seed(0)
    C, K, R, B = 2, 3, 16, 4
    G, D = build_networks("joint", R, C, K, **TINY)
    spec = VariantSpec("joint", C, K)
    images, labels = torch.rand(B, C, R, R) * 2 - 1, torch.randint(0, K, (B, R, R))

    def d_main(weight: float) -> tuple[float, dict]:
        loss = StyleGAN2Loss(G, D, spec, None, lecam_weight=weight, style_mixing_prob=0.0)
        torch.manual_seed(1)
        total = float(loss.d_loss(images, labels).detach())
        return total, loss.stats

    plain, plain_stats = d_main(0.0)
    with_lecam, stats = d_main(2.0)
    assert "lecam_penalty" not in plain_stats and "lecam_penalty" in stats
    assert with_lecam == pytest.approx(plain + 2.0 * float(stats["lecam_penalty"]), rel=1e-5)


# ------------------------------------------------------------------ OASIS


def test_class_balance_weights_give_every_present_class_equal_total_weight() -> None:
    labels = torch.tensor([[[0, 0, 0], [0, 0, 2]]])  # 5 background, 1 of class 2, none of 1
    w = class_balance_weights(labels, 3)
    assert float(w[labels == 0].sum()) == pytest.approx(float(w[labels == 2].sum()))
    assert float(w.mean()) == pytest.approx(1.0)
    assert float(w[0, 1, 2]) == pytest.approx(6 / (2 * 1))  # N / (present * count)


def test_oasis_losses_on_a_toy_case() -> None:
    """A D that labels real pixels right and calls every fake pixel fake has ~0 loss; one
    that swaps them has a large one. G's loss is low only when D finds the mask in the fake."""
    K, big = 3, 20.0
    labels = torch.tensor([[[0, 1], [2, 0]]])

    def logits_for(classes: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(classes, K + 1).permute(0, 3, 1, 2).float() * big

    fake_everywhere = torch.full_like(labels, K)
    right = oasis_d_loss(logits_for(labels), logits_for(fake_everywhere), labels)
    wrong = oasis_d_loss(logits_for(fake_everywhere), logits_for(labels), labels)
    assert float(right) < 1e-6 and float(wrong) > 10.0
    assert float(oasis_g_loss(logits_for(labels), labels)) < 1e-6
    assert float(oasis_g_loss(logits_for(fake_everywhere), labels)) > 10.0
    assert float(realness(logits_for(labels))) > 0 > float(realness(logits_for(fake_everywhere)))


def test_labelmix_takes_whole_classes_and_a_pixelwise_d_has_no_penalty() -> None:
    torch.manual_seed(0)
    B, C, K, R = 3, 2, 3, 8
    labels = torch.randint(0, K, (B, R, R))
    real, fake = torch.ones(B, C, R, R), -torch.ones(B, C, R, R)
    mixed, mask = label_mix(real, fake, labels, K, generator=torch.Generator().manual_seed(3))
    for b in range(B):
        for k in range(K):
            picked = mask[b, 0][labels[b] == k]
            assert picked.numel() == 0 or picked.min() == picked.max()  # one coin per class
    assert torch.equal(mixed, (mask * 2 - 1).expand_as(mixed))
    # A 1x1-convolution D sees each pixel alone, so D(mix) is the mix of D's outputs.
    pixelwise = nn.Conv2d(C, K + 1, 1)
    real_x, fake_x = torch.randn(B, C, R, R), torch.randn(B, C, R, R)
    mixed_x, mask = label_mix(real_x, fake_x, labels, K)
    penalty = labelmix_penalty(pixelwise(mixed_x), pixelwise(real_x), pixelwise(fake_x), mask)
    assert float(penalty.detach()) < 1e-10
    spatial = nn.Conv2d(C, K + 1, 3, padding=1)  # mixes neighbours: a penalty appears
    spread = labelmix_penalty(spatial(mixed_x), spatial(real_x), spatial(fake_x), mask)
    assert float(spread.detach()) > 1e-4


def test_oasis_discriminator_shapes_and_one_training_step() -> None:
    torch.manual_seed(0)
    C, K, R, B = 2, 3, 16, 4
    G, D = build_networks("conditional", R, C, K, d_architecture="oasis", **TINY)
    assert isinstance(D, SegmentationDiscriminator)
    assert D(torch.randn(B, C, R, R)).shape == (B, K + 1, R, R)
    loss = OasisLoss(G, D, VariantSpec("conditional", C, K), AdaptiveAugment(initial_p=0.5))
    images, labels = torch.rand(B, C, R, R) * 2 - 1, torch.randint(0, K, (B, R, R))
    d_total = loss.d_loss(images, labels, do_main=True, do_r1=True)
    assert {"d_main", "labelmix_penalty", "real_logits"} <= set(loss.stats)
    d_total.backward()
    assert all(p.grad is None for p in G.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
    D.zero_grad(set_to_none=True)
    g_total = loss.g_loss(labels=labels, do_pl=True)
    assert {"g_main", "pl_penalty"} <= set(loss.stats)
    g_total.backward()
    assert all(p.grad is None for p in D.parameters())
    with pytest.raises(ValueError, match="conditional"):
        build_networks("joint", R, C, K, d_architecture="oasis", **TINY)


# ------------------------------------------------------------------ presets reach the run


def _trainer(store, tmp_path, variant="joint", **settings):
    opts = TrainRequest(
        store=str(store.path), fold=0, variant=variant, preset="cpu-micro", kimg=0.1,
        out=str(tmp_path / "run"), settings={k: str(v) for k, v in settings.items()},
    )  # fmt: skip
    return _setup(opts)


def test_each_recipe_option_reaches_the_run(toy_store, tmp_path):
    micro = GAN_PRESETS["cpu-micro"]
    t = _trainer(toy_store, tmp_path / "a", lecam_weight=0.3, d_lr_scale=0.5, d_channel_base=256,
                 ema_run_fraction=0.2, augment_policy="diffaugment", augment_p=0.7)  # fmt: skip
    assert t.loss.lecam_weight == 0.3
    c = micro.r1_interval / (micro.r1_interval + 1)
    assert t.opt_D.param_groups[0]["lr"] == pytest.approx(micro.lr * 0.5 * c)
    g_c = micro.pl_interval / (micro.pl_interval + 1)
    assert t.opt_G.param_groups[0]["lr"] == pytest.approx(micro.lr * g_c)
    default_d = build_networks("joint", 32, 2, 3, **{**TINY, "channel_base": micro.channel_base,
                               "channel_max": micro.channel_max})[1]  # fmt: skip
    assert sum(p.numel() for p in t.D.parameters()) < sum(p.numel() for p in default_d.parameters())
    assert t.ema_kimg == pytest.approx(0.2 * 0.1)
    assert not t.augment.adaptive and float(t.augment.p) == pytest.approx(0.7)
    assert t.augment.strengths["cutout"] == 1.0 and t.augment.strengths["rotate"] == 0.0
    assert preset_of(read_meta(tmp_path / "a" / "run")).lecam_weight == 0.3  # recorded
    rows = list(training_rows(t, 40))  # a few steps with every option on
    assert rows and all("lecam_penalty" in r for r in rows)

    oasis = _trainer(toy_store, tmp_path / "b", variant="conditional", d_architecture="oasis")
    assert isinstance(oasis.loss, OasisLoss) and isinstance(oasis.D, SegmentationDiscriminator)
    assert oasis.loss.labelmix_weight == micro.labelmix_weight
    oasis.step = 0  # the lazy D step runs at step 0: LabelMix must be in it
    assert "labelmix_penalty" in oasis.train_step()


def test_fixed_augmentation_keeps_p_while_ada_moves_it():
    ada = AdaptiveAugment(initial_p=0.2, speed_kimg=0.001, interval=1)
    fixed = diff_augment(0.2, interval=1)
    for aug in (ada, fixed):
        aug.accumulate(torch.ones(8, 1))
        aug.update()
    assert float(ada.p) > 0.2 and float(fixed.p) == pytest.approx(0.2)
    x = torch.randn(4, 5, 16, 16)
    out = diff_augment(1.0)(x, 2)
    assert out.shape == x.shape and not torch.equal(out, x)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"augment_policy": "mixup"}, "augment_policy"),
        ({"lecam_weight": "-1"}, "lecam_weight"),
        ({"no_such_setting": "1"}, "no_such_setting"),
        ({"d_architecture": "oasis"}, "conditional"),
    ],
)
def test_bad_recipe_settings_are_refused(toy_store, tmp_path, settings, message):
    with pytest.raises(SynthaugError, match=message):
        _trainer(toy_store, tmp_path, **settings)


def test_settings_parse_to_the_field_types():
    micro = GAN_PRESETS["cpu-micro"]
    p = with_settings(micro, {"lecam_weight": "1", "d_channel_base": "none", "betas": "0,0.9"})
    assert p.lecam_weight == 1.0 and isinstance(p.lecam_weight, float)
    assert p.d_channel_base is None and p.betas == (0.0, 0.9)


# ------------------------------------------------------------------ collapse


def test_training_stops_on_sustained_collapse_and_keeps_its_snapshots(
    toy_store, tmp_path, monkeypatch
):
    """A generator that draws one sample repeatedly (with small noise) is stopped after
    ``collapse_patience`` collapsed snapshots; the run says so and keeps its snapshots."""
    from synthaug.gan.networks import Generator

    def one_sample(self, z, cond=None, noise_mode="random"):
        base = torch.linspace(-1, 1, 32 * 32 * 5).view(1, 5, 32, 32)
        return base.expand(len(z), -1, -1, -1) + 0.01 * torch.randn(len(z), 5, 32, 32)

    monkeypatch.setattr(Generator, "forward", one_sample)
    out = train(TrainRequest(
        store=str(toy_store.path), fold=0, variant="joint", preset="cpu-micro", kimg=2.0,
        out=str(tmp_path / "run"), snapshot_kimg=0.1, settings={"collapse_patience": "2"},
    ))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_early"] and "2 snapshots collapsed" in summary["stopped_early"]
    assert summary["kimg"] < 0.5  # stopped after the second snapshot, not at 2 kimg
    assert all(r["pixel_diversity"] < 0.5 for r in summary["snapshot_diversity"])
    assert summary["warnings"][0] == summary["stopped_early"]
    assert len(list((out / "snapshots").glob("*.pt"))) == 2
    # resuming a stopped run does not train on
    again = train(TrainRequest(
        store=str(toy_store.path), fold=0, variant="joint", preset="cpu-micro", kimg=2.0,
        out=str(out), snapshot_kimg=0.1, resume=True,
    ))  # fmt: skip
    assert json.loads((again / "summary.json").read_text())["nimg"] == summary["nimg"]
    with pytest.raises(SynthaugError, match="collapse_patience: recorded 2, --set 5"):
        train(TrainRequest(
            store=str(toy_store.path), fold=0, variant="joint", preset="cpu-micro", kimg=2.0,
            out=str(out), resume=True, settings={"collapse_patience": "5"},
        ))  # fmt: skip
    assert read_metrics(out)[-1]["nimg"] == summary["nimg"]
    from synthaug.stages.train_generator import is_trained

    assert is_trained(out, 2.0)  # a study does not queue it again


def test_a_varied_generator_is_not_stopped(toy_store, tmp_path, monkeypatch):
    """The same check passes a generator whose masks are as varied as random layouts."""
    from synthaug.gan.networks import Generator

    def varied(self, z, cond=None, noise_mode="random"):
        coarse = torch.randn(len(z), 3, 4, 4, generator=torch.Generator().manual_seed(len(z)))
        return torch.nn.functional.interpolate(coarse * 5, size=32) + torch.randn(len(z), 3, 32, 32)

    monkeypatch.setattr(Generator, "forward", varied)
    out = train(TrainRequest(
        store=str(toy_store.path), fold=0, variant="mask", preset="cpu-micro", kimg=0.2,
        out=str(tmp_path / "run"), snapshot_kimg=0.1, settings={"collapse_patience": "1"},
    ))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_early"] is None and summary["kimg"] >= 0.2
    assert len(summary["snapshot_diversity"]) == 2


def test_presets_stay_valid():
    for preset in GAN_PRESETS.values():
        assert dataclasses.replace(preset).check() is not None
