"""StyleGAN2 building blocks in plain PyTorch (CPU and GPU, no compiled extensions).

Written from the papers (Karras et al. 2019/2020, "Analyzing and Improving the Image
Quality of StyleGAN"; "Training GANs with Limited Data"), not from the NVlabs code.

Conventions used everywhere in this module:

* Activations are ``[B, C, H, W]`` float tensors; they may be ``channels_last`` in memory
  (that is faster on CPU with oneDNN). Nothing here depends on the memory format.
* Equalised learning rate: every trainable weight is stored ~N(0, 1) (divided by the
  learning-rate multiplier) and scaled at run time by ``lr_multiplier / sqrt(fan_in)``,
  so Adam sees all weights on the same scale.
* The leaky ReLU (slope 0.2) is followed by a gain of sqrt(2) to keep unit variance.
  Because that gain is positive it is folded into the preceding linear operation
  (weight, bias, noise strength) instead of costing a separate pass over the tensor.

Resampling choices (cheap and correct, see ``docs/gan_architectures.md``):

* Upsampling x2 in a modulated conv: a stride-2 transposed 3x3 convolution (a quarter of
  the FLOPs of "upsample then convolve") followed by the separable binomial [1, 3, 3, 1]
  low-pass filter (gain 4) as a depthwise 4x4 convolution. The pair equals "bilinear x2
  upsampling then a 3x3 convolution" in the interior, i.e. it is properly anti-aliased.
* Upsampling the skip image: ``F.interpolate(mode="bilinear")``, which is exactly zero
  insertion plus the same [1, 3, 3, 1] filter (edges clamped instead of zero-padded).
* Downsampling x2 in the discriminator's main path: [1, 3, 3, 1] blur then a stride-2 3x3
  convolution; in the residual skip path: 2x2 average pooling then a 1x1 convolution
  (a linear shortcut, so the box filter's weaker anti-aliasing costs nothing visible).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMOD_EPS = 1e-8

Activation = Literal["linear", "lrelu"]
NoiseMode = Literal["random", "const", "none"]


def _activation_gain(activation: Activation) -> float:
    return LRELU_GAIN if activation == "lrelu" else 1.0


def binomial_filter_2d(taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)) -> Tensor:
    """Separable low-pass filter ``[len(taps), len(taps)]`` normalised to sum 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


class _SymmetricBlur(torch.autograd.Function):
    """Depthwise correlation with a point-symmetric kernel, zero padding ``pad``.

    Its adjoint is the same blur with padding ``k - 1 - pad``, so backward calls this very
    function again: gradients of any order stay one cheap depthwise convolution. (The
    generic double backward of a grouped convolution loops over the groups, which made
    R1 and path-length steps several times slower on CPU.)
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, kernel: Tensor, pad: int) -> Tensor:
        ctx.save_for_backward(kernel)
        ctx.pad = pad
        return F.conv2d(x, kernel, padding=pad, groups=kernel.shape[0])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (kernel,) = ctx.saved_tensors
        adjoint_pad = kernel.shape[-1] - 1 - ctx.pad
        return _SymmetricBlur.apply(grad, kernel, adjoint_pad), None, None


class Blur(nn.Module):
    """Depthwise [1, 3, 3, 1] low-pass filter with zero padding ``pad`` on every side.

    ``[B, C, H, W] -> [B, C, H + 2 pad - 3, W + 2 pad - 3]`` (``0 <= pad <= 3``). ``gain``
    scales the output (4 after zero-insertion upsampling, which otherwise quarters the mean).
    """

    def __init__(self, channels: int, pad: int, gain: float = 1.0) -> None:
        super().__init__()
        if not 0 <= pad <= 3:
            raise ValueError(f"pad must be in 0..3, got {pad}")
        self.channels = channels
        self.pad = pad
        kernel = binomial_filter_2d() * gain
        # One filter per channel (depthwise); kept as a non-persistent buffer because it is
        # a constant of the architecture, not state worth checkpointing.
        self.register_buffer(
            "kernel", kernel[None, None].repeat(channels, 1, 1, 1), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return _SymmetricBlur.apply(x, self.kernel.to(x.dtype), self.pad)

    def extra_repr(self) -> str:
        return f"{self.channels}, pad={self.pad}"


def upsample_bilinear_2x(x: Tensor) -> Tensor:
    """``[B, C, H, W] -> [B, C, 2H, 2W]``; equals zero-insertion + [1, 3, 3, 1] blur (gain 4)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate.

    ``[B, in_features] -> [B, out_features]``. ``bias_init`` is the initial *effective* bias;
    ``lr_multiplier`` scales the effective learning rate of weight and bias (0.01 in the
    mapping network). ``activation="lrelu"`` applies leaky ReLU(0.2) * sqrt(2).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        activation: Activation = "linear",
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias = (
            nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier)) if bias else None
        )
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        act_gain = _activation_gain(self.activation)
        # the run-time scales ride on addmm's alpha / beta: one op, no scaled weight copy
        if self.bias is not None:
            out = torch.addmm(
                self.bias,
                x,
                self.weight.t(),
                beta=self.bias_gain * act_gain,
                alpha=self.weight_gain * act_gain,
            )
        else:
            out = x.matmul(self.weight.t()).mul_(self.weight_gain * act_gain)
        if self.activation == "lrelu":
            # In place is autograd-safe: the gain was folded into weight and bias above.
            out = F.leaky_relu_(out, LRELU_SLOPE)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate, optional bias, activation and x2 downsampling.

    ``[B, in, H, W] -> [B, out, H, W]`` (or ``[B, out, H/2, W/2]`` with ``down=True``).
    ``down=True`` blurs with [1, 3, 3, 1] and uses stride 2 (kernel_size > 1), or
    average-pools 2x2 before a 1x1 kernel (the cheap linear shortcut of residual blocks).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: Activation = "linear",
        down: bool = False,
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.down = down
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_multiplier
        )
        self.weight_gain = lr_multiplier / math.sqrt(in_channels * kernel_size * kernel_size)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.bias_gain = lr_multiplier
        self.blur: Blur | None = None
        if down and kernel_size > 1:
            # pad so that blur (4 taps) + stride-2 conv (k taps) maps H -> H/2, centred.
            self.blur = Blur(in_channels, (4 - 2 + kernel_size - 1) // 2)
            self.padding = 0
        else:
            self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        act_gain = _activation_gain(self.activation)
        weight = self.weight * (self.weight_gain * act_gain)
        bias = self.bias * (self.bias_gain * act_gain) if self.bias is not None else None
        stride = 1
        if self.down:
            if self.blur is not None:
                x = self.blur(x)
                stride = 2
            else:
                x = F.avg_pool2d(x, 2)
        out = F.conv2d(x, weight, bias, stride=stride, padding=self.padding)
        if self.activation == "lrelu":
            out = F.leaky_relu_(out, LRELU_SLOPE)  # conv backward never needs its output
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"activation={self.activation}, down={self.down}"
        )


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional weight demodulation (StyleGAN2).

    Per sample b the effective weight is ``w'[o,i,k] = w[o,i,k] * s[b,i]`` with style
    ``s = affine(w_latent)`` (affine bias initialised to 1), and with demodulation
    ``w''[o,i,k] = w'[o,i,k] * d[b,o]``, ``d[b,o] = rsqrt(sum_{i,k} w'[o,i,k]^2 + 1e-8)``.

    Default path ("activation scaling", fast on CPU): scale the input channels by ``s``, run
    ONE ordinary batched convolution with the shared weight, then scale the output channels
    by ``d``. Identical maths to the per-sample weights but no grouped convolution.
    ``fused=True`` uses the textbook grouped convolution with per-sample weights (kept as a
    cross-check and because it can win for very large batches of tiny images on GPU).

    ``forward(x [B, in, H, W], w [B, w_dim]) -> [B, out, H, W]`` (``2H, 2W`` if ``up``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        up: bool = False,
        fused: bool = False,
    ) -> None:
        super().__init__()
        if up and kernel_size != 3:
            raise ValueError("upsampling modulated conv is implemented for kernel_size=3")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.w_dim = w_dim
        self.demodulate = demodulate
        self.up = up
        self.fused = fused
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        # transposed conv output is 2H+1; padding (1, 1) brings the blurred result to 2H.
        self.blur = Blur(out_channels, 1, gain=4.0) if up else None

    def styles(self, w: Tensor) -> Tensor:
        """``[B, w_dim] -> [B, in_channels]`` per-input-channel scales."""
        return self.affine(w)

    def conv_then_demod(self, x: Tensor, styles: Tensor) -> tuple[Tensor, Tensor | float]:
        """Convolution of the modulated input with the RAW weight, scale not yet applied.

        Returns ``(y [B, out, H', W'], scale)`` where the true output is
        ``y * scale[:, :, None, None]``: ``scale [B, out]`` is the demodulation coefficient
        times the equalised-lr weight gain (a float, the gain alone, without demodulation).
        Leaving that multiply to the caller lets it fuse it with bias, noise and activation,
        and using the raw weight avoids materialising a scaled copy of it.
        """
        gain = self.weight_gain
        scale: Tensor | float = gain
        if self.demodulate:
            # d * gain = rsqrt(gain^2 * sum(w^2 s^2) + eps) * gain
            #          = rsqrt(sum(w^2 s^2) + eps / gain^2)
            weight_sq = self.weight.square().sum(dim=(2, 3))  # [out, in]
            scale = torch.rsqrt(styles.square().matmul(weight_sq.t()) + DEMOD_EPS / gain**2)
        x = x * styles[:, :, None, None].to(x.dtype)
        if self.up:
            y = F.conv_transpose2d(x, self.weight.transpose(0, 1).to(x.dtype), stride=2)
            assert self.blur is not None
            y = self.blur(y)
        else:
            y = F.conv2d(x, self.weight.to(x.dtype), padding=self.kernel_size // 2)
        return y, scale

    def fused_forward(self, x: Tensor, styles: Tensor) -> Tensor:
        """Grouped convolution with explicit per-sample modulated (and demodulated) weights."""
        batch, in_ch, height, width = x.shape
        weight = self.weight[None] * self.weight_gain * styles[:, None, :, None, None]
        if self.demodulate:
            demod = torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + DEMOD_EPS)  # [B, out]
            weight = weight * demod[:, :, None, None, None]
        k = self.kernel_size
        x = x.reshape(1, batch * in_ch, height, width)
        if self.up:
            # conv_transpose2d weight layout is [in, out/groups, k, k] per group.
            weight_t = weight.transpose(1, 2).reshape(batch * in_ch, self.out_channels, k, k)
            y = F.conv_transpose2d(x, weight_t, stride=2, groups=batch)
            y = y.reshape(batch, self.out_channels, y.shape[2], y.shape[3])
            assert self.blur is not None
            return self.blur(y)
        y = F.conv2d(
            x, weight.reshape(batch * self.out_channels, in_ch, k, k), padding=k // 2, groups=batch
        )
        return y.reshape(batch, self.out_channels, height, width)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.styles(w)
        if self.fused:
            return self.fused_forward(x, styles)
        y, scale = self.conv_then_demod(x, styles)
        if isinstance(scale, float):
            return y * scale
        return y * scale[:, :, None, None].to(y.dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"demodulate={self.demodulate}, up={self.up}, fused={self.fused}"
        )


class NoiseInjection(nn.Module):
    """Per-pixel Gaussian noise, one map per sample shared by all channels, learned strength.

    ``noise_mode``: ``"random"`` fresh N(0, 1) each call; ``"const"`` a fixed buffer drawn at
    construction (deterministic images); ``"none"`` no noise. Strength starts at 0.
    """

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def noise(self, like: Tensor, noise_mode: NoiseMode = "random") -> Tensor | None:
        """Unscaled noise ``[B, 1, H, W]`` matching ``like`` (or None for ``"none"``)."""
        if noise_mode == "none":
            return None
        batch, _, height, width = like.shape
        if noise_mode == "const":
            return self.noise_const.to(like.dtype).expand(batch, 1, height, width)
        return torch.randn(batch, 1, height, width, device=like.device, dtype=like.dtype)

    def forward(self, x: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        noise = self.noise(x, noise_mode)
        return x if noise is None else x + noise * self.strength


class ToRGB(nn.Module):
    """1x1 modulated convolution WITHOUT demodulation emitting ``out_channels`` maps.

    ``forward(x [B, in, H, W], w [B, w_dim], skip [B, out, H/2, W/2] | None)
    -> [B, out, H, W]``; the skip image is upsampled bilinearly x2 and added.
    ``out_channels`` is any number: modality channels and/or mask-logit channels.

    A 1x1 convolution with per-sample weights is a batched matrix product, so it is run as
    ``bmm`` directly on the activations instead of scaling the (large) input tensor.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        batch, in_ch, height, width = x.shape
        styles = self.affine(w)  # [B, in]
        weight = (self.weight * self.weight_gain)[None] * styles[:, None, :]  # [B, out, in]
        weight = weight.to(x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, in_ch)  # a view
            out = torch.baddbmm(self.bias.to(x.dtype), pixels, weight.transpose(1, 2))
            out = out.view(batch, height, width, self.out_channels).permute(0, 3, 1, 2)
        else:
            out = torch.baddbmm(
                self.bias.to(x.dtype)[:, None], weight, x.reshape(batch, in_ch, height * width)
            )
            out = out.view(batch, self.out_channels, height, width)
        if skip is not None:
            out = out + upsample_bilinear_2x(skip)
        return out


class MinibatchStdDev(nn.Module):
    """Append the across-group standard deviation as extra feature maps.

    ``[B, C, H, W] -> [B, C + num_channels, H, W]``. Consecutive samples form groups of
    ``gcd(group_size, B / num_segments)`` (so any batch size works); per group, the std
    over the group of every feature is averaged over ``(C / num_channels, H, W)`` into one
    value per channel block and broadcast to the group's pixels. ``num_segments > 1`` marks
    the batch as that many independent equal parts (e.g. ``[reals; fakes]`` in one pass);
    groups never straddle two parts, so one pass equals separate passes.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: Tensor, num_segments: int = 1) -> Tensor:
        batch, channels, height, width = x.shape
        if batch % num_segments:
            raise ValueError(f"batch {batch} not divisible into {num_segments} segments")
        group = math.gcd(self.group_size, batch // num_segments)
        blocks = self.num_channels
        y = x.reshape(batch // group, group, blocks, channels // blocks, height, width).float()
        y = y - y.mean(dim=1, keepdim=True)
        std = torch.sqrt(y.square().mean(dim=1) + 1e-8)  # [B/G, F, C/F, H, W]
        std = std.mean(dim=(2, 3, 4)).repeat_interleave(group, dim=0)  # [B, F]
        std = std[:, :, None, None].expand(batch, blocks, height, width).to(x.dtype)
        return torch.cat([x, std], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


def tune_cpu_allocator(mmap_threshold: int = 1 << 30) -> bool:
    """Serve large CPU tensors from glibc's heap instead of fresh ``mmap`` pages.

    By default glibc hands every allocation above ~32 MiB (a 64x64x32 activation at batch
    64 already is one) its own ``mmap`` and unmaps it on free, so the next tensor of that
    size page-faults through zeroed memory again: on a 2-core machine that made every
    elementwise op ~6x slower. Raising ``M_MMAP_THRESHOLD`` (and ``M_TRIM_THRESHOLD``, so
    freed memory is kept for reuse) removes that cost; resident memory then stays at its
    peak. Process-wide; call once at start-up of a CPU training/sampling process. Returns
    False where it does not apply (not glibc). Harmless for GPU runs.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    # older glibc caps the threshold at 32 MiB: fall back to the cap if refused
    ok = bool(mallopt(m_mmap_threshold, mmap_threshold)) or bool(
        mallopt(m_mmap_threshold, 32 << 20)
    )
    mallopt(m_trim_threshold, max(mmap_threshold, 32 << 20) * 2)
    return ok
