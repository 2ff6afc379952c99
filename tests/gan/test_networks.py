"""Generator / discriminator wiring of the three variants, truncation, mixing, mask helpers."""

from __future__ import annotations

import pytest
import torch

from synthaug.gan.networks import (
    Discriminator,
    Generator,
    VariantSpec,
    build_networks,
    generated_to_mask,
    mask_logits_to_d_input,
    masks_to_onehot,
    mix_styles,
    onehot_to_signed,
)

RES = 16
C, K = 3, 2
TINY = dict(z_dim=32, w_dim=32, mapping_layers=2, channel_base=128, channel_max=16)


def _labels(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (batch, RES, RES), generator=g)


@pytest.mark.parametrize(
    ("variant", "g_out", "d_in"),
    [("joint", C + K, C + K), ("mask", K, K), ("conditional", C, C + K)],
)
def test_variant_shapes(variant: str, g_out: int, d_in: int) -> None:
    torch.manual_seed(0)
    G, D = build_networks(variant, RES, C, K, **TINY)
    spec = VariantSpec(variant, C, K)
    assert (spec.g_out_channels, spec.d_in_channels) == (g_out, d_in)
    labels = _labels(3)  # batch 3: minibatch-stddev must fall back to gcd(4, 3) = 1
    cond = spec.generator_condition(labels, torch.float32)
    out, ws = G(torch.randn(3, 32), cond, return_ws=True)
    assert out.shape == (3, g_out, RES, RES)
    assert ws.shape == (3, G.num_ws, 32) and G.num_ws == 2 * 4 - 2
    fake = spec.fake_d_input(out, labels)
    real = spec.real_d_input(
        None if variant == "mask" else torch.rand(3, C, RES, RES) * 2 - 1, labels
    )
    assert fake.shape == real.shape == (3, d_in, RES, RES)
    assert D(fake).shape == (3, 1) and D(real).shape == (3, 1)
    assert real[:, -K:].abs().eq(1).all()  # real mask channels are exactly -1 / +1


def test_conditional_discriminator_concatenates_the_condition() -> None:
    D = Discriminator(RES, C, channel_base=128, channel_max=16, cond_channels=K)
    img, cond = torch.randn(2, C, RES, RES), torch.randn(2, K, RES, RES)
    torch.testing.assert_close(D(img, cond), D(torch.cat([img, cond], dim=1)))
    with pytest.raises(ValueError):
        D(img)


def test_conditional_generator_follows_the_mask() -> None:
    torch.manual_seed(0)
    G, _ = build_networks("conditional", RES, C, K, **TINY)
    G.eval()
    z = torch.randn(2, 32)
    mask_a = masks_to_onehot(_labels(2, seed=1), K)
    mask_b = masks_to_onehot(_labels(2, seed=2), K)
    out_a = G(z, mask_a, noise_mode="const")
    out_a2 = G(z, mask_a, noise_mode="const")
    out_b = G(z, mask_b, noise_mode="const")
    torch.testing.assert_close(out_a, out_a2)  # deterministic given z, mask and const noise
    assert (out_a - out_b).abs().mean() > 1e-3
    with pytest.raises(ValueError):
        G(z)


def test_truncation_psi_zero_gives_w_avg() -> None:
    torch.manual_seed(0)
    G = Generator(32, 32, RES, 2, mapping_layers=2, channel_base=128, channel_max=16)
    G.train()
    for _ in range(3):  # training-mode calls move w_avg away from its zero init
        G.mapping(torch.randn(8, 32))
    assert G.w_avg.abs().sum() > 0
    G.eval()
    before = G.w_avg.clone()
    ws = G.mapping(torch.randn(4, 32), truncation_psi=0.0)
    torch.testing.assert_close(ws, before.expand_as(ws))
    torch.testing.assert_close(G.w_avg, before)  # eval mode leaves the average alone
    cut = G.mapping(torch.randn(4, 32), truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], before.expand(4, 2, 32))
    assert not torch.allclose(cut[:, 2:], before.expand(4, G.num_ws - 2, 32))


def test_style_mixing_takes_two_parts() -> None:
    torch.manual_seed(0)
    ws_a = torch.zeros(16, 6, 4)
    ws_b = torch.ones(16, 6, 4)
    mixed = mix_styles(ws_a, ws_b, probability=1.0)
    for sample in mixed:
        layer_is_b = sample[:, 0].bool()
        crossover = int(layer_is_b.float().argmax())
        assert 1 <= crossover < 6  # both parts non-empty
        assert not layer_is_b[:crossover].any() and layer_is_b[crossover:].all()
    assert len({int(s[:, 0].sum()) for s in mixed}) > 1  # crossover varies per sample
    torch.testing.assert_close(mix_styles(ws_a, ws_b, probability=0.0), ws_a)


def test_generator_memory_format_does_not_change_results() -> None:
    torch.manual_seed(0)
    G = Generator(32, 32, RES, 3, mapping_layers=2, channel_base=128, channel_max=16)
    G_plain = Generator(
        32, 32, RES, 3, mapping_layers=2, channel_base=128, channel_max=16, channels_last=False
    )
    G_plain.load_state_dict(G.state_dict())
    z = torch.randn(2, 32)
    torch.testing.assert_close(
        G.eval()(z, noise_mode="const"), G_plain.eval()(z, noise_mode="const"), atol=1e-5, rtol=1e-5
    )


def test_discriminator_segments_equal_separate_passes() -> None:
    torch.manual_seed(0)
    D = Discriminator(RES, 4, channel_base=128, channel_max=16)
    real, fake = torch.randn(4, 4, RES, RES), torch.randn(4, 4, RES, RES)
    joined = D(torch.cat([real, fake]), num_segments=2)
    torch.testing.assert_close(joined, torch.cat([D(real), D(fake)]), atol=1e-5, rtol=1e-5)


def test_mask_helpers() -> None:
    labels = torch.tensor([[[0, 1], [2, 1]]])
    onehot = masks_to_onehot(labels, 3)
    assert onehot.shape == (1, 3, 2, 2)
    assert onehot.sum(dim=1).eq(1).all()
    torch.testing.assert_close(generated_to_mask(onehot), labels)
    assert set(onehot_to_signed(onehot).unique().tolist()) == {-1.0, 1.0}


def test_straight_through_mask_is_hard_forward_soft_backward() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    hard = mask_logits_to_d_input(logits)
    expected = onehot_to_signed(masks_to_onehot(logits.argmax(1), 3))
    torch.testing.assert_close(hard, expected)  # same values a real mask has
    upstream = torch.randn_like(hard)
    (grad_st,) = torch.autograd.grad((hard * upstream).sum(), logits)
    soft = mask_logits_to_d_input(logits, "softmax")
    (grad_soft,) = torch.autograd.grad((soft * upstream).sum(), logits)
    torch.testing.assert_close(grad_st, grad_soft)  # gradient of the softmax
    assert grad_st.abs().sum() > 0
