"""StyleGAN2 layers checked against their definitions (explicit per-sample computations)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from synthaug.gan.layers import (
    Blur,
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInjection,
    ToRGB,
)


def _binomial_blur(x: torch.Tensor, pad: int, gain: float) -> torch.Tensor:
    """Independent [1, 3, 3, 1] blur: separable taps, zero padding, written out by hand."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype) / 8.0
    x = F.pad(x, (pad, pad, pad, pad))
    h, w = x.shape[-2:]
    rows = sum(taps[i] * x[..., :, i : w - 3 + i] for i in range(4))
    return gain * sum(taps[i] * rows[..., i : h - 3 + i, :] for i in range(4))


def _reference_modulated_conv(
    conv: ModulatedConv2d, x: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """Loop over samples: build w'' = w * s (* d) and run an ordinary convolution."""
    styles = conv.affine(w)
    outputs = []
    for b in range(x.shape[0]):
        weight = conv.weight * conv.weight_gain * styles[b][None, :, None, None]  # [O, I, k, k]
        if conv.demodulate:
            norm = weight.square().sum(dim=(1, 2, 3), keepdim=True)
            weight = weight / torch.sqrt(norm + 1e-8)
        xb = x[b : b + 1]
        if conv.up:
            y = F.conv_transpose2d(xb, weight.transpose(0, 1), stride=2)
            y = _binomial_blur(y, pad=1, gain=4.0)
        else:
            y = F.conv2d(xb, weight, padding=conv.kernel_size // 2)
        outputs.append(y)
    return torch.cat(outputs)


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_per_sample_loop(up: bool, demodulate: bool) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, w_dim=8, demodulate=demodulate, up=up)
    with torch.no_grad():  # non-trivial styles so a missing modulation would show
        conv.affine.weight.normal_()
        conv.affine.bias.uniform_(-1.0, 2.0)
    x = torch.randn(3, 6, 7, 7)
    w = torch.randn(3, 8)
    expected = _reference_modulated_conv(conv, x, w)
    assert expected.shape == (3, 5, 14 if up else 7, 14 if up else 7)

    scaled = conv(x, w)  # activation-scaling path
    torch.testing.assert_close(scaled, expected, atol=1e-5, rtol=1e-5)

    conv.fused = True  # grouped-convolution path
    torch.testing.assert_close(conv(x, w), expected, atol=1e-5, rtol=1e-5)

    channels_last = x.contiguous(memory_format=torch.channels_last)
    conv.fused = False
    torch.testing.assert_close(conv(channels_last, w), expected, atol=1e-5, rtol=1e-5)


def test_demodulation_gives_unit_output_variance() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 64, 3, w_dim=16)
    with torch.no_grad():
        conv.affine.weight.normal_()
    y = conv(torch.randn(4, 64, 16, 16), torch.randn(4, 16))
    assert abs(y[..., 2:-2, 2:-2].std().item() - 1.0) < 0.1


def test_upsampling_equals_bilinear_then_conv_in_the_interior() -> None:
    """Transposed conv + [1,3,3,1] blur == bilinear x2 then the (flipped) 3x3 kernel."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    blur = Blur(3, 1, gain=4.0).double()
    ours = blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
    upsampled = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    reference = F.conv2d(upsampled, weight.flip(2, 3), padding=1)
    torch.testing.assert_close(ours[..., 2:-2, 2:-2], reference[..., 2:-2, 2:-2])


def test_blur_matches_hand_written_filter() -> None:
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(Blur(3, 2)(x), _binomial_blur(x, 2, 1.0), atol=1e-6, rtol=0)


@pytest.mark.parametrize("pad", [1, 2])
def test_blur_gradients_of_first_and_second_order(pad: int) -> None:
    """The hand-written adjoint must match autograd through an ordinary grouped conv."""
    torch.manual_seed(0)
    blur = Blur(2, pad).double()

    def generic(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, blur.kernel, padding=pad, groups=2)

    x = torch.randn(2, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn_like(generic(x), requires_grad=True)
    probe = torch.randn_like(x)
    results = []
    for fn in (blur, generic):
        (grad_x,) = torch.autograd.grad((fn(x) * upstream).sum(), x, create_graph=True)
        # second order: differentiate the input gradient w.r.t. the upstream gradient
        (grad_up,) = torch.autograd.grad((grad_x * probe).sum(), upstream)
        results.append((grad_x.detach(), grad_up))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    assert results[0][1].abs().sum() > 0


def test_torgb_is_per_sample_1x1_conv_without_demodulation() -> None:
    torch.manual_seed(0)
    layer = ToRGB(6, 4, w_dim=8)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 6, 8, 8)
    w = torch.randn(2, 8)
    skip = torch.randn(2, 4, 4, 4)
    styles = layer.affine(w)
    expected = torch.cat(
        [
            F.conv2d(
                x[b : b + 1],
                (layer.weight * layer.weight_gain * styles[b][None, :])[:, :, None, None],
                layer.bias,
            )
            for b in range(2)
        ]
    ) + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(layer(x, w, skip), expected, atol=1e-5, rtol=1e-5)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(layer(x_cl, w, skip), expected, atol=1e-5, rtol=1e-5)


def test_equalised_layers_scale_at_run_time() -> None:
    torch.manual_seed(0)
    linear = EqualLinear(16, 4, bias_init=0.5, lr_multiplier=0.01)
    x = torch.randn(3, 16)
    # stored weights are N(0,1)/lr_mult; effective weight = stored * lr_mult / sqrt(fan_in)
    effective = linear.weight * 0.01 / math.sqrt(16)
    torch.testing.assert_close(linear(x), x @ effective.t() + 0.5)

    lrelu = EqualLinear(16, 4, activation="lrelu")
    pre = x @ (lrelu.weight / 4.0).t()
    torch.testing.assert_close(lrelu(x), F.leaky_relu(pre, 0.2) * math.sqrt(2))

    conv = EqualConv2d(3, 5, 3)
    img = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(conv(img), F.conv2d(img, conv.weight / math.sqrt(27), padding=1))


def test_downsampling_conv_halves_and_keeps_constants() -> None:
    conv = EqualConv2d(2, 3, 3, down=True)
    skip = EqualConv2d(2, 3, 1, bias=False, down=True)
    x = torch.ones(1, 2, 16, 16)
    y = conv(x)
    assert y.shape == (1, 3, 8, 8)
    assert skip(x).shape == (1, 3, 8, 8)
    # blur + stride is centred: a constant input gives a constant interior
    interior = y[..., 1:-1, 1:-1]
    torch.testing.assert_close(interior, interior[..., :1, :1].expand_as(interior))


def test_noise_modes() -> None:
    layer = NoiseInjection(8)
    with torch.no_grad():
        layer.strength.fill_(0.5)
    x = torch.zeros(2, 3, 8, 8)
    torch.testing.assert_close(layer(x, "none"), x)
    const_a, const_b = layer(x, "const"), layer(x, "const")
    torch.testing.assert_close(const_a, const_b)
    assert not torch.equal(layer(x, "random"), layer(x, "random"))
    # one noise map per sample, shared by all channels
    torch.testing.assert_close(const_a[:, 0], const_a[:, 2])


def test_minibatch_stddev_definition_and_channels() -> None:
    torch.manual_seed(0)
    layer = MinibatchStdDev(group_size=2, num_channels=1)
    x = torch.randn(4, 3, 5, 5)
    out = layer(x)
    assert out.shape == (4, 4, 5, 5)
    torch.testing.assert_close(out[:, :3], x)
    for group in ([0, 1], [2, 3]):  # consecutive samples form a group
        std = x[group].std(dim=0, unbiased=False).mean()
        for n in group:
            torch.testing.assert_close(out[n, 3], torch.full((5, 5), std.item()), atol=1e-5, rtol=0)

    assert MinibatchStdDev(group_size=4, num_channels=2)(torch.randn(6, 4, 3, 3)).shape[1] == 6
    # batch 6 with group 4 -> gcd 2; an odd batch falls back to groups of 1
    assert MinibatchStdDev(4)(torch.randn(3, 2, 4, 4)).shape == (3, 3, 4, 4)


def test_minibatch_stddev_segments_do_not_mix() -> None:
    layer = MinibatchStdDev(group_size=4)
    a, b = torch.randn(4, 2, 3, 3), 5 * torch.randn(4, 2, 3, 3)
    joined = layer(torch.cat([a, b]), num_segments=2)
    torch.testing.assert_close(joined, torch.cat([layer(a), layer(b)]))
