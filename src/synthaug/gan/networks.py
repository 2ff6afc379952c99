"""StyleGAN2 generator and discriminator, and the three synthaug variants.

Value conventions (shared with ``loss.py`` and the data layer):

* Modality images are float in roughly ``[-1, 1]``.
* A label mask is ``long [B, H, W]`` with values ``0..K-1``.
* The generator's spatial condition (``cond``, conditional variant) is the one-hot mask
  in ``{0, 1}``, ``[B, K, R, R]`` (``masks_to_onehot``). Area pooling of it gives class
  fractions at every lower resolution.
* Everything the DISCRIMINATOR sees is in ``[-1, 1]``: images as they are, mask channels
  as ``2 * onehot - 1`` (``onehot_to_signed``). For generated masks (joint / mask variants)
  the raw logits go through ``mask_logits_to_d_input``: by default a straight-through
  softmax, i.e. the forward value is the exact one-hot of the argmax (so D cannot tell a
  fake mask from a real one by its soft, fractional values -- the easy shortcut that would
  otherwise make D win and stall G) while the gradient is that of the softmax.

Variants (see ``build_networks`` and ``docs/gan_architectures.md``):

=============  ==========================  ==========================  ====================
variant        G emits                     G condition                 D sees
=============  ==========================  ==========================  ====================
joint          C images + K mask logits    none                        C + K
mask           K mask logits               none                        K
conditional    C images                    one-hot mask [B, K, R, R]   C images + K mask
=============  ==========================  ==========================  ====================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthaug.gan.layers import (
    LRELU_GAIN,
    LRELU_SLOPE,
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInjection,
    NoiseMode,
    ToRGB,
)

Variant = Literal["joint", "mask", "conditional"]
VARIANTS: tuple[str, ...] = ("joint", "mask", "conditional")
MaskToD = Literal["straight_through", "softmax"]


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature width at a resolution: ``min(channel_base // resolution, channel_max)``."""
    return max(1, min(channel_base // resolution, channel_max))


def _check_resolution(resolution: int) -> int:
    log2 = int(math.log2(resolution))
    if resolution < 4 or 2**log2 != resolution:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    return log2


def normalize_second_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale ``x`` so that its mean square along ``dim`` is 1."""
    return x * torch.rsqrt(x.square().mean(dim=dim, keepdim=True) + eps)


# --------------------------------------------------------------------------------------
# Mapping network
# --------------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """z (+ optional condition vector c) -> w, broadcast to ``num_ws`` style vectors.

    ``forward(z [B, z_dim], c [B, c_dim] | None) -> ws [B, num_ws, w_dim]``.
    z is normalised to unit second moment; c is embedded by a linear layer, normalised
    and concatenated. In training mode every call updates ``w_avg`` (EMA of w, decay
    ``1 - w_avg_beta``), which truncation pulls towards.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.w_avg_beta = w_avg_beta
        self.embed = EqualLinear(c_dim, w_dim) if c_dim > 0 else None
        features = z_dim + (w_dim if c_dim > 0 else 0)
        layers = []
        for index in range(num_layers):
            layers.append(
                EqualLinear(
                    features if index == 0 else w_dim,
                    w_dim,
                    activation="lrelu",
                    lr_multiplier=lr_multiplier,
                )
            )
        self.layers = nn.Sequential(*layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> Tensor:
        x = normalize_second_moment(z)
        if self.embed is not None:
            if c is None:
                raise ValueError("this mapping network needs a condition vector c")
            x = torch.cat([x, normalize_second_moment(self.embed(c))], dim=1)
        w = self.layers(x)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - self.w_avg_beta)
        ws = w[:, None, :].expand(-1, self.num_ws, -1)
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            truncated = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return ws


def mix_styles(
    ws: Tensor, ws_other: Tensor, probability: float, generator: torch.Generator | None = None
) -> Tensor:
    """Style mixing: per sample, with ``probability``, take ``ws_other`` from a random layer on.

    ``ws, ws_other: [B, num_ws, w_dim] -> [B, num_ws, w_dim]``. The crossover layer is
    uniform in ``1..num_ws-1`` so both parts are non-empty when mixing happens.
    """
    batch, num_ws, _ = ws.shape
    if probability <= 0 or num_ws < 2:
        return ws
    device = ws.device
    crossover = torch.randint(1, num_ws, (batch,), device=device, generator=generator)
    mixes = torch.rand(batch, device=device, generator=generator) < probability
    crossover = torch.where(mixes, crossover, torch.full_like(crossover, num_ws))
    take_other = torch.arange(num_ws, device=device)[None, :] >= crossover[:, None]
    return torch.where(take_other[:, :, None], ws_other, ws)


# --------------------------------------------------------------------------------------
# Synthesis network
# --------------------------------------------------------------------------------------


class MaskEncoder(nn.Module):
    """One-hot mask -> condition vector for the mapping network.

    ``[B, K, R, R] in [0, 1] -> [B, embed_dim]``: area-pool to 8x8 class fractions (a
    coarse layout: where each class is, how much of it) then a two-layer MLP.
    """

    def __init__(self, cond_channels: int, embed_dim: int, grid: int = 8) -> None:
        super().__init__()
        self.grid = grid
        self.net = nn.Sequential(
            EqualLinear(cond_channels * grid * grid, embed_dim, activation="lrelu"),
            EqualLinear(embed_dim, embed_dim),
        )

    def forward(self, cond: Tensor) -> Tensor:
        grid = min(self.grid, cond.shape[-1])
        pooled = F.adaptive_avg_pool2d(cond, grid)
        if grid < self.grid:
            pooled = F.interpolate(pooled, size=self.grid, mode="nearest")
        return self.net(pooled.flatten(1))


class ConditionInjection(nn.Module):
    """Class-adaptive spatial conditioning of one synthesis block (SPADE / CLADE-like).

    ``[B, K, r, r]`` area-pooled one-hot mask -> per-pixel ``(scale, shift)``, each
    ``[B, channels, r, r]``, from two 1x1 convolutions of the mask: every class has its own
    learned scale and shift vector, blended by the class fractions where a low-resolution
    pixel straddles a boundary. The block's first layer computes ``h * scale + shift`` after
    demodulation, noise and bias, before its activation; its second convolution spreads it.

    Why this form: modulating features per semantic region is what semantic image synthesis
    needs (SPADE, Park et al. 2019), and per-class parameters do about as well as SPADE's
    convolutional ones (CLADE, Tan et al. 2021) at a fraction of the cost. A full SPADE
    (3x3 hidden convolution, every layer) cost ~25% of a conditional training step on CPU;
    this costs a few percent.
    """

    def __init__(self, cond_channels: int, channels: int) -> None:
        super().__init__()
        # separate scale and shift heads: each output is a dense tensor (channel slices of
        # one 2C-channel output are strided and made the multiply-add several times slower)
        self.scale_head = EqualConv2d(cond_channels, channels, 1)
        self.shift_head = EqualConv2d(cond_channels, channels, 1)
        with torch.no_grad():
            # start near the identity modulation (gamma, shift ~ 0.1 / sqrt(K) rms) so the
            # mask steers features gently at first instead of zeroing or flipping them
            self.scale_head.weight.mul_(0.1)
            self.shift_head.weight.mul_(0.1)
            self.scale_head.bias.fill_(1.0)  # scale = 1 + gamma

    def forward(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``(scale, shift)``, each ``[B, channels, r, r]``."""
        return self.scale_head(cond), self.shift_head(cond)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+ optional x2 up) -> demod -> noise -> bias -> (cond) -> lrelu.

    ``forward(x [B, in, r, r], w [B, w_dim]) -> [B, out, R, R]`` with ``R = 2r`` if ``up``.
    The demodulation multiply, bias, noise, optional spatial condition and the activation
    gain are fused into as few passes over the activation tensor as possible.
    """

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        self.noise = NoiseInjection(resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self,
        x: Tensor,
        w: Tensor,
        noise_mode: NoiseMode = "random",
        modulation: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        y, scale = self.conv.conv_then_demod(x, self.conv.styles(w))
        gain = LRELU_GAIN  # folded in: lrelu(a) * g == lrelu(a * g) for g > 0
        bias = (self.bias * gain).to(y.dtype)[None, :, None, None]
        if isinstance(scale, float):
            h = torch.add(y * (scale * gain), bias)
        else:  # one pass: bias + y * demod (weight gain and activation gain included)
            h = torch.addcmul(bias, y, (scale * gain).to(y.dtype)[:, :, None, None])
        noise = self.noise.noise(h, noise_mode)
        if noise is not None:
            h = h.addcmul_(noise, self.noise.strength * gain)
        if modulation is not None:
            # h carries the activation gain; the learned shift absorbs it (a constant factor)
            scale, shift = modulation
            # mul + add_ rather than addcmul: addcmul's backward spends an extra full pass
            # multiplying each large operand by its scalar `value`
            h = torch.mul(h, scale).add_(shift)
        # In place is safe: nothing above needs h after this point for its backward.
        return F.leaky_relu_(h, LRELU_SLOPE)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator.

    First block (4x4): learned constant -> conv -> ToRGB. Others: conv (x2 up) -> conv ->
    ToRGB, with the incoming skip image upsampled and added. Uses 3 consecutive w vectors
    (conv0, conv1, torgb); the first block uses 2 (conv1, torgb). ToRGB's w is shared with the
    next block's first conv, so a network has ``2 * log2(R) - 2`` ws in total.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        cond_channels: int = 0,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.is_first = resolution == 4
        if self.is_first:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)
        self.num_conv = 1 if self.is_first else 2
        self.cond = ConditionInjection(cond_channels, out_channels) if cond_channels > 0 else None

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        cond: Tensor | None = None,
        noise_mode: NoiseMode = "random",
        channels_last: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """``ws [B, 3 or 2, w_dim]``; returns ``(features, image)`` at this resolution."""
        modulation = None  # the spatial condition enters the block's first layer
        if self.cond is not None:
            if cond is None:
                raise ValueError("this synthesis network needs a spatial condition")
            modulation = self.cond(cond)
        if self.is_first:
            batch = ws.shape[0]
            x = self.const[None].expand(batch, -1, -1, -1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, ws[:, 0], noise_mode, modulation)
            rgb_w = ws[:, 1]
        else:
            assert self.conv0 is not None and x is not None
            x = self.conv0(x, ws[:, 0], noise_mode, modulation)
            x = self.conv1(x, ws[:, 1], noise_mode)
            rgb_w = ws[:, 2]
        img = self.torgb(x, rgb_w, img)
        return x, img


class SynthesisNetwork(nn.Module):
    """ws -> image, skip architecture.

    ``forward(ws [B, num_ws, w_dim], cond [B, cond_channels, R, R] | None) ->
    [B, img_channels, R, R]`` (unbounded; trained towards the ``[-1, 1]`` data range, mask
    channels are logits). With ``cond_channels > 0`` the condition (one-hot mask in [0, 1])
    is area-pooled to every block resolution and modulates each block's first layer
    (class-adaptive scale and shift, ``ConditionInjection``).
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 16384,
        channel_max: int = 512,
        cond_channels: int = 0,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(img_resolution)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.cond_channels = cond_channels
        self.channels_last = channels_last
        self.resolutions = [2**i for i in range(2, log2 + 1)]
        blocks = []
        for res in self.resolutions:
            in_ch = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            out_ch = channels_at(res, channel_base, channel_max)
            blocks.append(SynthesisBlock(in_ch, out_ch, w_dim, res, img_channels, cond_channels))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = 2 * log2 - 2

    def cond_pyramid(self, cond: Tensor) -> list[Tensor]:
        """Area-pooled condition at every block resolution, lowest first."""
        if cond.shape[-1] != self.img_resolution or cond.shape[-2] != self.img_resolution:
            raise ValueError(f"cond must be {self.img_resolution}x{self.img_resolution}")
        levels = [cond]
        while levels[-1].shape[-1] > 4:
            levels.append(F.avg_pool2d(levels[-1], 2))  # 2x2 mean == exact area fractions
        return levels[::-1]

    def forward(
        self, ws: Tensor, cond: Tensor | None = None, noise_mode: NoiseMode = "random"
    ) -> Tensor:
        if ws.shape[1] != self.num_ws:
            raise ValueError(f"expected ws with {self.num_ws} vectors, got {ws.shape[1]}")
        if self.cond_channels > 0:
            if cond is None:
                raise ValueError("this generator is conditional: pass cond [B, K, R, R]")
            conds: list[Tensor | None] = list(self.cond_pyramid(cond.to(ws.dtype)))
        else:
            conds = [None] * len(self.blocks)
        x: Tensor | None = None
        img: Tensor | None = None
        w_index = 0
        for block, cond_level in zip(self.blocks, conds, strict=True):
            count = block.num_conv + 1
            x, img = block(
                x,
                img,
                ws[:, w_index : w_index + count],
                cond_level,
                noise_mode,
                self.channels_last,
            )
            w_index += block.num_conv
        assert img is not None
        return img


class Generator(nn.Module):
    """Mapping + synthesis. Optionally conditioned on a one-hot mask.

    ``forward(z [B, z_dim], cond [B, cond_channels, R, R] in [0, 1] | None) ->
    img [B, img_channels, R, R]`` (and ``ws [B, num_ws, w_dim]`` with ``return_ws``).
    With ``cond_channels > 0`` the mask is both injected spatially in the synthesis network
    and encoded (``MaskEncoder``) into the mapping network's condition vector.
    """

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_layers: int = 8,
        channel_base: int = 16384,
        channel_max: int = 512,
        cond_channels: int = 0,
        cond_embed_dim: int = 0,
        mapping_lr_multiplier: float = 0.01,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.cond_channels = cond_channels
        self.synthesis = SynthesisNetwork(
            w_dim,
            img_resolution,
            img_channels,
            channel_base,
            channel_max,
            cond_channels=cond_channels,
            channels_last=channels_last,
        )
        self.num_ws = self.synthesis.num_ws
        if cond_channels > 0 and cond_embed_dim <= 0:
            cond_embed_dim = min(w_dim, 128)
        self.cond_embed_dim = cond_embed_dim if cond_channels > 0 else 0
        self.mask_encoder = (
            MaskEncoder(cond_channels, self.cond_embed_dim) if cond_channels > 0 else None
        )
        self.mapping_network = MappingNetwork(
            z_dim,
            self.cond_embed_dim,
            w_dim,
            self.num_ws,
            num_layers=mapping_layers,
            lr_multiplier=mapping_lr_multiplier,
        )
        if channels_last:
            # 4-D weights in the activations' layout: no per-call weight reorder in oneDNN
            self.to(memory_format=torch.channels_last)

    def mapping(
        self,
        z: Tensor,
        cond: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> Tensor:
        """``z [B, z_dim] (+ mask) -> ws [B, num_ws, w_dim]``."""
        c = None
        if self.mask_encoder is not None:
            if cond is None:
                raise ValueError("this generator is conditional: pass cond [B, K, R, R]")
            c = self.mask_encoder(cond.to(z.dtype))
        return self.mapping_network(z, c, truncation_psi, truncation_cutoff)

    @property
    def w_avg(self) -> Tensor:
        """``[w_dim]`` running mean of w (the truncation centre)."""
        return self.mapping_network.w_avg

    def forward(
        self,
        z: Tensor,
        cond: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "random",
        return_ws: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        ws = self.mapping(z, cond, truncation_psi, truncation_cutoff)
        img = self.synthesis(ws, cond, noise_mode)
        return (img, ws) if return_ws else img


# --------------------------------------------------------------------------------------
# Discriminator
# --------------------------------------------------------------------------------------


class DiscriminatorBlock(nn.Module):
    """Residual block: ``[B, in, r, r] -> [B, out, r/2, r/2]``.

    main: 3x3 conv (lrelu) -> blur + stride-2 3x3 conv (lrelu); skip: 2x2 average pool ->
    1x1 conv (no bias); output ``(main + skip) / sqrt(2)`` keeps the variance.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation="lrelu", down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.skip(x)
        main = self.conv1(self.conv0(x))
        return torch.add(main, skip).mul_(1.0 / math.sqrt(2.0))


class Discriminator(nn.Module):
    """Residual StyleGAN2 discriminator.

    ``forward(img [B, img_channels, R, R], cond [B, cond_channels, R, R] | None) -> [B, 1]``
    logits. With ``cond_channels > 0`` the condition (mask channels in ``[-1, 1]``) is
    concatenated to the image channels; ``img`` may also already hold
    ``img_channels + cond_channels`` channels (how the loss passes augmented pairs).
    """

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        cond_channels: int = 0,
        mbstd_num_channels: int = 1,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(img_resolution)
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.cond_channels = cond_channels
        self.in_channels = img_channels + cond_channels
        self.channels_last = channels_last
        top = channels_at(img_resolution, channel_base, channel_max)
        self.from_rgb = EqualConv2d(self.in_channels, top, 1, activation="lrelu")
        blocks = []
        for res in [2**i for i in range(log2, 2, -1)]:
            blocks.append(
                DiscriminatorBlock(
                    channels_at(res, channel_base, channel_max),
                    channels_at(res // 2, channel_base, channel_max),
                )
            )
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, channel_base, channel_max)
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels)
        self.conv = EqualConv2d(c4 + mbstd_num_channels, c4, 3, activation="lrelu")
        self.fc = EqualLinear(c4 * 16, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, img: Tensor, cond: Tensor | None = None, num_segments: int = 1) -> Tensor:
        """``num_segments``: the batch holds that many independent parts (minibatch-stddev)."""
        x = img if cond is None else torch.cat([img, cond.to(img.dtype)], dim=1)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"discriminator expects {self.in_channels} channels, got {x.shape[1]}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.from_rgb(x)
        x = self.blocks(x)
        x = self.conv(self.mbstd(x, num_segments))
        x = self.fc(x.flatten(1))
        return self.out(x)


class SegmentationDiscriminator(nn.Module):
    """OASIS-style discriminator (Schönfeld et al. 2021): a U-Net that labels every pixel
    with one of K real classes or "fake" (class K).

    ``forward(img [B, img_channels, R, R]) -> logits [B, K + 1, R, R]``. The encoder is the
    residual StyleGAN2 discriminator's blocks down to 4x4; the decoder upsamples (nearest)
    and fuses each encoder level through a 3x3 convolution. It never sees the mask: it must
    find each class in the image, which is what makes the generator paint the mask it is
    given. The model is built here; its loss is in ``oasis.py``.
    """

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        num_classes: int,
        channel_base: int = 16384,
        channel_max: int = 512,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(img_resolution)
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_classes = num_classes
        self.channels_last = channels_last
        levels = [2**i for i in range(log2, 1, -1)]  # R, R/2, ..., 4
        widths = [channels_at(r, channel_base, channel_max) for r in levels]
        self.from_rgb = EqualConv2d(img_channels, widths[0], 1, activation="lrelu")
        self.down = nn.ModuleList(
            DiscriminatorBlock(widths[i], widths[i + 1]) for i in range(len(levels) - 1)
        )
        self.up = nn.ModuleList(
            EqualConv2d(widths[i + 1] + widths[i], widths[i], 3, activation="lrelu")
            for i in reversed(range(len(levels) - 1))
        )
        self.out = EqualConv2d(widths[0], num_classes + 1, 1)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, img: Tensor, cond: Tensor | None = None, num_segments: int = 1) -> Tensor:
        """``cond`` and ``num_segments`` are accepted for the loss's common call and unused."""
        if img.shape[1] != self.img_channels:
            raise ValueError(
                f"segmentation discriminator expects {self.img_channels} channels, got {img.shape[1]}"
            )
        x = img.contiguous(memory_format=torch.channels_last) if self.channels_last else img
        skips = [self.from_rgb(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        x = skips.pop()
        for conv in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = conv(torch.cat([x, skip], dim=1))
        return self.out(x)


# --------------------------------------------------------------------------------------
# Masks <-> channels
# --------------------------------------------------------------------------------------


def masks_to_onehot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``long [B, H, W]`` labels in ``0..K-1`` -> one-hot ``[B, K, H, W]`` in ``{0, 1}``."""
    return F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).to(dtype)


def onehot_to_signed(onehot: Tensor) -> Tensor:
    """``{0, 1}`` (or soft ``[0, 1]``) mask channels -> the discriminator's ``[-1, 1]``."""
    return onehot * 2.0 - 1.0


def generated_to_mask(logits: Tensor) -> Tensor:
    """Generated mask logits ``[B, K, H, W]`` -> labels ``long [B, H, W]`` (argmax)."""
    return logits.argmax(dim=1)


def mask_logits_to_d_input(logits: Tensor, mode: MaskToD = "straight_through") -> Tensor:
    """Generated mask logits ``[B, K, H, W]`` -> mask channels for D in ``[-1, 1]``.

    ``straight_through``: forward value is the exact one-hot of the argmax (indistinguishable
    in value from a real mask), gradient is the softmax's. ``softmax``: soft probabilities
    (D can then learn "fractional = fake", which usually hurts G; kept for comparison).
    """
    probs = torch.softmax(logits, dim=1)
    if mode == "softmax":
        return onehot_to_signed(probs)
    hard = masks_to_onehot(logits.argmax(dim=1), logits.shape[1], logits.dtype)
    return onehot_to_signed(hard + probs - probs.detach())


# --------------------------------------------------------------------------------------
# The three variants
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantSpec:
    """Channel bookkeeping of one variant (C modalities, K classes)."""

    variant: str
    num_modalities: int
    num_classes: int

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")

    @property
    def g_out_channels(self) -> int:
        """Channels the generator emits."""
        return {
            "joint": self.num_modalities + self.num_classes,
            "mask": self.num_classes,
            "conditional": self.num_modalities,
        }[self.variant]

    @property
    def g_cond_channels(self) -> int:
        """Channels of the generator's spatial condition (0 = unconditional)."""
        return self.num_classes if self.variant == "conditional" else 0

    @property
    def d_in_channels(self) -> int:
        """Channels the discriminator sees."""
        return (
            self.num_classes if self.variant == "mask" else self.num_modalities + self.num_classes
        )

    @property
    def d_image_channels(self) -> int:
        """Leading D-input channels that are images (colour augmentation applies to these)."""
        return 0 if self.variant == "mask" else self.num_modalities

    def generator_condition(self, labels: Tensor | None, dtype: torch.dtype) -> Tensor | None:
        """Labels ``long [B, H, W]`` -> G's ``cond`` (one-hot, [0, 1]) or None."""
        if self.variant != "conditional":
            return None
        if labels is None:
            raise ValueError("the conditional variant needs label masks")
        return masks_to_onehot(labels, self.num_classes, dtype)

    def real_d_input(self, images: Tensor | None, labels: Tensor) -> Tensor:
        """Real pair -> D input ``[B, d_in_channels, H, W]`` in ``[-1, 1]``."""
        dtype = images.dtype if images is not None else torch.float32
        mask = onehot_to_signed(masks_to_onehot(labels, self.num_classes, dtype))
        if self.variant == "mask":
            return mask
        assert images is not None, "joint / conditional variants need images"
        return torch.cat([images, mask], dim=1)

    def fake_d_input(
        self,
        generated: Tensor,
        labels: Tensor | None = None,
        mask_mode: MaskToD = "straight_through",
    ) -> Tensor:
        """Generator output (+ the conditioning labels) -> D input in ``[-1, 1]``."""
        c = self.num_modalities
        if self.variant == "joint":
            return torch.cat(
                [generated[:, :c], mask_logits_to_d_input(generated[:, c:], mask_mode)], dim=1
            )
        if self.variant == "mask":
            return mask_logits_to_d_input(generated, mask_mode)
        if labels is None:
            raise ValueError("the conditional variant needs the conditioning labels")
        mask = onehot_to_signed(masks_to_onehot(labels, self.num_classes, generated.dtype))
        return torch.cat([generated, mask], dim=1)

    def split_generated(self, generated: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Generator output -> ``(images [B, C, H, W] | None, labels long [B, H, W] | None)``."""
        c = self.num_modalities
        if self.variant == "joint":
            return generated[:, :c], generated_to_mask(generated[:, c:])
        if self.variant == "mask":
            return None, generated_to_mask(generated)
        return generated, None


def build_networks(
    variant: str,
    resolution: int,
    num_modalities: int,
    num_classes: int,
    *,
    z_dim: int = 512,
    w_dim: int = 512,
    mapping_layers: int = 8,
    channel_base: int = 16384,
    channel_max: int = 512,
    mbstd_group: int = 4,
    cond_embed_dim: int = 128,
    channels_last: bool = True,
    d_channel_base: int | None = None,
    d_architecture: str = "resnet",
) -> tuple[Generator, Discriminator | SegmentationDiscriminator]:
    """Build ``(G, D)`` for a variant; the three variants differ only in channel wiring.

    joint: G emits C + K (modalities + mask logits), D sees C + K.
    mask: G emits K mask logits, D sees K.
    conditional: G emits C given the K-channel one-hot mask (spatially + mapping), D sees
    the C images concatenated with the K mask channels -- or, with ``d_architecture=
    "oasis"``, the C images alone, labelling each pixel with a class or "fake".
    ``d_channel_base`` (None: ``channel_base``) sizes D apart from G.
    """
    spec = VariantSpec(variant, num_modalities, num_classes)
    generator = Generator(
        z_dim=z_dim,
        w_dim=w_dim,
        img_resolution=resolution,
        img_channels=spec.g_out_channels,
        mapping_layers=mapping_layers,
        channel_base=channel_base,
        channel_max=channel_max,
        cond_channels=spec.g_cond_channels,
        cond_embed_dim=cond_embed_dim if spec.g_cond_channels > 0 else 0,
        channels_last=channels_last,
    )
    d_base = d_channel_base or channel_base
    if d_architecture == "oasis":
        if variant != "conditional":
            raise ValueError("the OASIS discriminator is for the conditional variant only")
        return generator, SegmentationDiscriminator(
            resolution, num_modalities, num_classes, d_base, channel_max, channels_last
        )
    d_cond = num_classes if variant == "conditional" else 0
    discriminator = Discriminator(
        img_resolution=resolution,
        img_channels=spec.d_in_channels - d_cond,
        channel_base=d_base,
        channel_max=channel_max,
        mbstd_group_size=mbstd_group,
        cond_channels=d_cond,
        channels_last=channels_last,
    )
    return generator, discriminator


__all__ = [
    "LRELU_SLOPE",
    "VARIANTS",
    "ConditionInjection",
    "Discriminator",
    "DiscriminatorBlock",
    "Generator",
    "MappingNetwork",
    "MaskEncoder",
    "SegmentationDiscriminator",
    "SynthesisBlock",
    "SynthesisLayer",
    "SynthesisNetwork",
    "VariantSpec",
    "build_networks",
    "channels_at",
    "generated_to_mask",
    "mask_logits_to_d_input",
    "masks_to_onehot",
    "mix_styles",
    "normalize_second_moment",
    "onehot_to_signed",
]
