"""ADA: image/mask alignment under geometric ops, colour ops only on images, p adaptation."""

from __future__ import annotations

import torch

from synthaug.gan.augment import AdaptiveAugment

GEOMETRIC_ONLY = dict(brightness=0.0, contrast=0.0)
COLOUR_ONLY = dict(xflip=0.0, rotate90=0.0, xint=0.0, scale=0.0, rotate=0.0, aniso=0.0, xfrac=0.0)


def _blob_batch(batch: int = 8, res: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """An off-centre, asymmetric blob per sample: (foreground mask [B,1,R,R], one-hot [B,2,R,R])."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    masks = []
    for _ in range(batch):
        cy, cx = torch.randint(6, res - 6, (2,), generator=g).tolist()
        blob = ((yy - cy) ** 2 / 16 + (xx - cx) ** 2 / 36) < 1
        blob |= (yy >= 2) & (yy < 6) & (xx >= 3) & (xx < 12)  # a bar breaks the symmetry
        masks.append(blob.float())
    fg = torch.stack(masks)[:, None]
    return fg, torch.cat([1 - fg, fg], dim=1)


def test_geometric_ops_keep_image_and_mask_aligned() -> None:
    torch.manual_seed(0)
    fg, onehot = _blob_batch()
    image = fg * 2 - 1  # the image IS the mask, in [-1, 1]
    x = torch.cat([image, onehot * 2 - 1], dim=1)
    augment = AdaptiveAugment(initial_p=1.0, **GEOMETRIC_ONLY)
    out = augment(x, num_image_channels=1)

    assert out.shape == x.shape
    moved = (out - x).abs().flatten(1).amax(dim=1) > 0.5
    assert moved.sum() >= 6  # the ops really transformed most samples
    # Same resampling for every channel: the image channel still equals the foreground
    # mask channel (bilinear + reflection padding are affine-preserving, so exactly).
    torch.testing.assert_close(out[:, 0], out[:, 2], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 1], -out[:, 2], atol=1e-5, rtol=0)  # one-hot stays one-hot
    # thresholded masks agree pixel for pixel
    assert torch.equal(out[:, 0] > 0, out[:, 2] > 0)


def test_integer_ops_are_exact_permutations() -> None:
    """Flips, 90-degree rotations and integer shifts move pixels without interpolating."""
    torch.manual_seed(1)
    _, onehot = _blob_batch()
    ops = dict(GEOMETRIC_ONLY, scale=0.0, rotate=0.0, aniso=0.0, xfrac=0.0)
    out = AdaptiveAugment(initial_p=1.0, **ops)(onehot, num_image_channels=0)
    near_binary = (out.abs() < 1e-5) | ((out - 1).abs() < 1e-5)
    assert near_binary.all()
    assert (out - onehot).abs().amax() > 0.5  # and something did move


def test_colour_ops_touch_only_image_channels() -> None:
    torch.manual_seed(0)
    fg, onehot = _blob_batch()
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    images[:, 1] = images[:, 0]  # two identical modality channels
    x = torch.cat([images, onehot * 2 - 1], dim=1)
    out = AdaptiveAugment(initial_p=1.0, **COLOUR_ONLY)(x, num_image_channels=3)
    torch.testing.assert_close(out[:, 3:], x[:, 3:], rtol=0, atol=0)  # masks untouched
    assert (out[:, :3] - x[:, :3]).abs().amax() > 0.05
    # each modality channel gets its own brightness / contrast draw
    assert (out[:, 0] - out[:, 1]).abs().amax() > 1e-3


def test_zero_probability_is_identity_and_differentiable() -> None:
    x = torch.randn(4, 5, 16, 16, requires_grad=True)
    assert AdaptiveAugment(initial_p=0.0)(x, 3) is x
    out = AdaptiveAugment(initial_p=0.7)(x, 3)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_p_rises_when_d_overfits_and_falls_when_it_does_not() -> None:
    augment = AdaptiveAugment(initial_p=0.0, target=0.6, speed_kimg=1.0, interval=4)
    history = []
    for _ in range(10):
        for _ in range(augment.interval):
            augment.accumulate(torch.full((8, 1), 3.0))  # D sure every real is real: r_t = 1
        assert augment.update_due
        p, r_t = augment.update()
        assert r_t == 1.0
        history.append(p)
    # each update moves p by images / (speed_kimg * 1000) = 32 / 1000
    assert all(b > a for a, b in zip(history, history[1:], strict=False))
    torch.testing.assert_close(torch.tensor(history[0]), torch.tensor(0.032))

    high = history[-1]
    for _ in range(3):
        for _ in range(augment.interval):
            augment.accumulate(-torch.ones(8, 1))  # r_t = -1 < target
        p, r_t = augment.update()
        assert r_t == -1.0
    assert p < high

    for _ in range(100):  # clamped at 0
        augment.accumulate(-torch.ones(8, 1))
        augment.update()
    assert float(augment.p) == 0.0
    for _ in range(100):  # and at 1
        augment.accumulate(torch.ones(100, 1))
        augment.update()
    assert float(augment.p) == 1.0


def test_cutout_zeroes_one_square_in_every_channel() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 4, 32, 32) + 1.0  # no zeros before cutout
    off = dict(COLOUR_ONLY, brightness=0.0, contrast=0.0)
    out = AdaptiveAugment(initial_p=1.0, cutout=1.0, cutout_size=0.5, **off)(x, 3)
    holes = out == 0
    # the same pixels go in every channel (image and mask stay paired)
    assert torch.equal(holes, holes[:, :1].expand_as(holes))
    area = holes[:, 0].flatten(1).sum(1)
    assert (area > 0).all() and (area <= 16 * 16).all()
    assert torch.equal(out[~holes], x[~holes])  # the rest untouched
    rows, cols = holes[:, 0].any(2), holes[:, 0].any(1)  # a square (clipped at the border)
    assert torch.equal(area, rows.sum(1) * cols.sum(1))
    assert torch.equal(AdaptiveAugment(initial_p=1.0, **off)(x, 3), x)  # cutout off by default
