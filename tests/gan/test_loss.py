"""Losses and regularisers against independent computations; EMA; one full training step."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from synthaug.gan.augment import AdaptiveAugment
from synthaug.gan.loss import (
    PathLengthRegularizer,
    StyleGAN2Loss,
    d_logistic_loss,
    default_r1_gamma,
    ema_beta,
    g_nonsaturating_loss,
    lazy_regularization_adam,
    r1_penalty,
    update_ema,
)
from synthaug.gan.networks import Discriminator, VariantSpec, build_networks

TINY = dict(z_dim=32, w_dim=32, mapping_layers=2, channel_base=128, channel_max=16)


def test_logistic_losses_closed_form() -> None:
    real = torch.tensor([[2.0], [-1.0]])
    fake = torch.tensor([[0.5], [-3.0]])
    sig = torch.sigmoid
    expected_d = -torch.log(1 - sig(fake)).mean() - torch.log(sig(real)).mean()
    torch.testing.assert_close(d_logistic_loss(real, fake), expected_d)
    torch.testing.assert_close(g_nonsaturating_loss(fake), -torch.log(sig(fake)).mean())


def test_r1_penalty_closed_form() -> None:
    """D(x) = sum(a * x^2) / 2 has gradient a * x, so the penalty is ||a * x||^2 per sample."""
    a = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (a * x.square()).flatten(1).sum(dim=1, keepdim=True) / 2
    penalty = r1_penalty(logits, x)
    expected = (a * x).square().flatten(1).sum(dim=1)
    torch.testing.assert_close(penalty, expected)
    (grad_a,) = torch.autograd.grad(penalty.sum(), a)  # the graph was kept (create_graph)
    torch.testing.assert_close(grad_a, (2 * a * x.square()).sum(dim=0))


def test_r1_penalty_matches_per_sample_autograd_on_the_discriminator() -> None:
    torch.manual_seed(0)
    # group size 1: samples are independent, so per-sample gradients are well defined
    D = Discriminator(16, 3, channel_base=128, channel_max=16, mbstd_group_size=1)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    penalty = r1_penalty(D(x), x)
    for b in range(4):
        xb = x[b : b + 1].detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(xb).sum(), xb)
        torch.testing.assert_close(penalty[b], grad.square().sum(), rtol=1e-4, atol=1e-7)


def test_path_length_penalty_is_finite_and_reaches_generator_weights() -> None:
    torch.manual_seed(0)
    G, _ = build_networks("joint", 16, 2, 2, **TINY)
    regulariser = PathLengthRegularizer(decay=0.01)
    images, ws = G(torch.randn(3, 32), return_ws=True)
    penalty = regulariser(images, ws)
    assert penalty.shape == (3,) and torch.isfinite(penalty).all()
    assert float(regulariser.pl_mean) > 0  # EMA moved from 0 by decay * mean length
    penalty.mean().backward()
    grads = [p.grad for p in G.synthesis.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert G.mapping_network.layers[0].weight.grad is not None


def test_ema_update_and_beta() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model[1].running_mean.fill_(7.0)
    old = [p.clone() for p in ema.parameters()]
    update_ema(ema, model, beta=0.9)
    for p_ema, p_old, p in zip(ema.parameters(), old, model.parameters(), strict=True):
        torch.testing.assert_close(p_ema, 0.9 * p_old + 0.1 * p)
    torch.testing.assert_close(ema[1].running_mean, model[1].running_mean)  # buffers copied

    assert ema_beta(8, cur_nimg=10**7) == pytest.approx(0.5 ** (8 / 10_000))
    assert ema_beta(8, cur_nimg=1000) == pytest.approx(0.5 ** (8 / 50))  # ramp-up: 1000 * 0.05
    assert ema_beta(8, cur_nimg=0) == pytest.approx(0.0)


def test_regularisation_helpers() -> None:
    assert default_r1_gamma(64, 8) == pytest.approx(0.0002 * 64 * 64 / 8)
    lr, betas = lazy_regularization_adam(0.0025, (0.0, 0.99), 16)
    c = 16 / 17
    assert lr == pytest.approx(0.0025 * c) and betas[1] == pytest.approx(0.99**c)
    assert lazy_regularization_adam(0.0025, (0.0, 0.99), None) == (0.0025, (0.0, 0.99))


@pytest.mark.parametrize("variant", ["joint", "mask", "conditional"])
def test_training_step_runs_and_moves_both_networks(variant: str) -> None:
    torch.manual_seed(0)
    C, K, R, B = 2, 3, 16, 4
    G, D = build_networks(variant, R, C, K, **TINY)
    spec = VariantSpec(variant, C, K)
    augment = AdaptiveAugment(initial_p=0.5)
    loss = StyleGAN2Loss(G, D, spec, augment, r1_gamma=default_r1_gamma(R, B), r1_interval=4)
    images = None if variant == "mask" else torch.rand(B, C, R, R) * 2 - 1
    labels = torch.randint(0, K, (B, R, R))
    d_opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99))
    d_before = copy.deepcopy(D.state_dict())
    g_before = copy.deepcopy(G.state_dict())

    d_total = loss.d_loss(images, labels, do_main=True, do_r1=True)
    assert torch.isfinite(d_total)
    assert {"d_main", "r1_penalty", "real_logits", "fake_logits"} <= set(loss.stats)
    g_params_before_backward = [p.grad for p in G.parameters()]
    d_total.backward()
    assert all(g is None for g in g_params_before_backward)
    assert all(p.grad is None for p in G.parameters())  # D step does not touch G
    d_opt.step()

    g_opt.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    g_total = loss.g_loss(labels=labels, batch_size=B, do_main=True, do_pl=True)
    assert torch.isfinite(g_total) and {"g_main", "pl_penalty"} <= set(loss.stats)
    g_total.backward()
    assert all(p.grad is None for p in D.parameters())  # G step skips D's weight grads
    assert all(p.requires_grad for p in D.parameters())  # ...and restores the flags
    g_opt.step()

    assert augment.sign_count == B  # real logits were accumulated for ADA
    changed_d = any(not torch.equal(v, D.state_dict()[k]) for k, v in d_before.items())
    changed_g = any(
        not torch.equal(v, G.state_dict()[k]) for k, v in g_before.items() if "w_avg" not in k
    )
    assert changed_d and changed_g


def test_r1_weighting_is_lazy_gamma_over_two() -> None:
    torch.manual_seed(0)
    G, D = build_networks("mask", 16, 0, 2, **TINY)
    spec = VariantSpec("mask", 0, 2)
    loss = StyleGAN2Loss(G, D, spec, None, r1_gamma=0.5, r1_interval=16)
    labels = torch.randint(0, 2, (4, 16, 16))
    total = loss.d_loss(None, labels, do_main=False, do_r1=True)
    expected = loss.stats["r1_penalty"] * 0.5 / 2 * 16
    torch.testing.assert_close(total.detach(), expected)
    assert not math.isnan(float(total.detach()))


def test_d_main_equals_manual_computation_without_augmentation() -> None:
    """One pass over [reals; fakes] gives the same loss as two separate D calls."""
    torch.manual_seed(0)
    G, D = build_networks("joint", 16, 1, 2, **TINY)
    spec = VariantSpec("joint", 1, 2)
    loss = StyleGAN2Loss(G, D, spec, None, style_mixing_prob=0.0)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    labels = torch.randint(0, 2, (4, 16, 16))
    G.eval()  # keep w_avg fixed so both runs are comparable
    torch.manual_seed(1)
    total = loss.d_loss(images, labels)
    torch.manual_seed(1)
    with torch.no_grad():
        fake = spec.fake_d_input(G(torch.randn(4, 32)), labels)
    expected = d_logistic_loss(D(spec.real_d_input(images, labels)), D(fake))
    torch.testing.assert_close(total, expected, atol=1e-5, rtol=1e-5)


def test_a_training_step_runs_d_then_g_with_lazy_regularisers():
    from types import SimpleNamespace

    from synthaug.gan.train import STEP_PHASES

    assert [p.trains for p in STEP_PHASES] == ["D", "D", "G", "G"]
    # The regularisers are the fp32 phases; the main losses are autocast and logged as totals.
    assert [(p.autocast, p.total) for p in STEP_PHASES] == [
        (True, "d_total"), (False, ""), (True, "g_total"), (False, ""),
    ]  # fmt: skip

    def due(step: int, pl_weight: float = 2.0, regularised: bool = True) -> list[str]:
        trainer = SimpleNamespace(
            step=step,
            preset=SimpleNamespace(r1_interval=16, pl_interval=4, pl_weight=pl_weight),
            loss=SimpleNamespace(d_regularised=regularised),
        )
        return [p.name for p in STEP_PHASES if p.due(trainer)]

    assert due(0) == ["D main", "D R1", "G main", "G path length"]
    assert due(4) == ["D main", "G main", "G path length"]
    assert due(16) == ["D main", "D R1", "G main", "G path length"]
    assert due(5) == ["D main", "G main"]
    assert due(0, pl_weight=0.0, regularised=False) == ["D main", "G main"]
