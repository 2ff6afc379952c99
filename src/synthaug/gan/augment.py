"""Adaptive discriminator augmentation (ADA, Karras et al. 2020, "Training GANs with Limited
Data"), written for image + mask channel stacks.

Everything the discriminator sees -- real and fake alike -- goes through the same random
augmentation with probability ``p``. Because both distributions are augmented, the
generator is not pushed to produce augmented-looking data as long as ``p`` stays below the
"leak" threshold (~0.8 for this op set). ``p`` is tuned on line from the overfitting
heuristic ``r_t = E[sign(D(real))]``: above ``target`` D is too sure of the reals -> raise p.

Channel layout: ``x = cat(images, mask_channels)``; the first ``num_image_channels``
channels are modality images, the rest are mask channels.

* Geometric ops (x-flip, 90-degree rotations, integer translation, isotropic scaling,
  arbitrary rotation, anisotropic scaling, fractional translation) are composed into ONE
  affine matrix per sample and applied with a single ``grid_sample`` to ALL channels, so
  image and mask stay aligned. Bilinear resampling turns one-hot mask edges into soft
  fractions -- identically for real and fake masks, so it gives D no shortcut.
* Cutout (DiffAugment, Zhao et al. 2020; off unless its strength is set) zeroes one random
  square in every channel, image and mask alike.
* Colour ops (brightness add, contrast multiply) are drawn independently per sample AND
  per modality channel (MR sequences / CT windows have unrelated intensity scales) and are
  applied to the image channels only; mask channels are never touched by them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _identity(batch: int, device: torch.device) -> Tensor:
    return torch.eye(3, device=device).repeat(batch, 1, 1)


def _scale_matrix(sx: Tensor, sy: Tensor) -> Tensor:
    mat = _identity(sx.shape[0], sx.device)
    mat[:, 0, 0] = sx
    mat[:, 1, 1] = sy
    return mat


def _translate_matrix(tx: Tensor, ty: Tensor) -> Tensor:
    mat = _identity(tx.shape[0], tx.device)
    mat[:, 0, 2] = tx
    mat[:, 1, 2] = ty
    return mat


def _rotate_matrix(theta: Tensor) -> Tensor:
    mat = _identity(theta.shape[0], theta.device)
    cos, sin = torch.cos(theta), torch.sin(theta)
    mat[:, 0, 0] = cos
    mat[:, 0, 1] = -sin
    mat[:, 1, 0] = sin
    mat[:, 1, 1] = cos
    return mat


class AdaptiveAugment(nn.Module):
    """ADA pipeline with an adaptive probability ``p``.

    ``forward(x [B, C_img + C_mask, H, W], num_image_channels) -> same shape``;
    differentiable w.r.t. ``x`` (the generator is trained through it).

    Every op is applied to each sample independently with probability ``p`` times its
    strength (0 disables an op). The per-op distributions follow the ADA paper:
    flip/rot90 choices uniform, integer translation ``U(-1/8, 1/8)`` of the size (rounded to
    pixels), scaling ``2^N(0, 0.2)`` (lognormal, std 0.2 ln 2), rotation ``U(-pi, pi)`` applied
    before and after the anisotropic scaling with probability ``1 - sqrt(1 - p)`` each (so
    "any rotation" happens with probability p), fractional translation ``N(0, 0.125)`` of the
    size, brightness ``+N(0, 0.2)``, contrast ``x 2^N(0, 0.5)``.

    Tuning ``p``: call ``accumulate(real_logits)`` every D step and ``update()`` every
    ``interval`` steps (``update_due`` says when); ``p`` moves by
    ``sign(r_t - target) * images_seen / (speed_kimg * 1000)`` and is clamped to [0, 1].
    """

    def __init__(
        self,
        initial_p: float = 0.0,
        target: float = 0.6,
        speed_kimg: float = 500.0,
        interval: int = 4,
        *,
        xflip: float = 1.0,
        rotate90: float = 1.0,
        xint: float = 1.0,
        scale: float = 1.0,
        rotate: float = 1.0,
        aniso: float = 1.0,
        xfrac: float = 1.0,
        brightness: float = 1.0,
        contrast: float = 1.0,
        cutout: float = 0.0,
        xint_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_max: float = 1.0,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        cutout_size: float = 0.5,
        padding_mode: str = "reflection",
        adaptive: bool = True,
    ) -> None:
        super().__init__()
        self.adaptive = adaptive
        self.target = target
        self.speed_kimg = speed_kimg
        self.interval = interval
        self.strengths = {
            "xflip": xflip,
            "rotate90": rotate90,
            "xint": xint,
            "scale": scale,
            "rotate": rotate,
            "aniso": aniso,
            "xfrac": xfrac,
            "brightness": brightness,
            "contrast": contrast,
            "cutout": cutout,
        }
        self.xint_max = xint_max
        self.scale_std = scale_std
        self.rotate_max = rotate_max
        self.aniso_std = aniso_std
        self.xfrac_std = xfrac_std
        self.brightness_std = brightness_std
        self.contrast_std = contrast_std
        self.cutout_size = cutout_size
        self.padding_mode = padding_mode
        self.register_buffer("p", torch.tensor(float(initial_p)))
        self.register_buffer("sign_sum", torch.zeros([], dtype=torch.float64))
        self.register_buffer("sign_count", torch.zeros([], dtype=torch.float64))
        self.steps_since_update = 0

    # ---------------------------------------------------------------- p adaptation
    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        """Add ``sign(D(real))`` of a batch of real logits ``[B, 1]`` to the running statistic."""
        self.sign_sum += torch.sign(real_logits.detach()).to(torch.float64).sum()
        self.sign_count += real_logits.numel()
        self.steps_since_update += 1

    @property
    def update_due(self) -> bool:
        """True once ``interval`` batches have been accumulated since the last update."""
        return self.steps_since_update >= self.interval

    @torch.no_grad()
    def update(self) -> tuple[float, float]:
        """Adjust ``p`` from the accumulated ``r_t = mean(sign(D(real)))``; returns ``(p, r_t)``.

        ``r_t`` is NaN (and ``p`` unchanged) when nothing was accumulated; a non-adaptive
        pipeline only reports ``r_t``.
        """
        count = float(self.sign_count)
        self.steps_since_update = 0
        if count == 0:
            return float(self.p), math.nan
        r_t = float(self.sign_sum) / count
        if self.adaptive:
            step = math.copysign(1.0, r_t - self.target) if r_t != self.target else 0.0
            adjust = step * count / (self.speed_kimg * 1000.0)
            self.p.copy_((self.p + adjust).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.sign_count.zero_()
        return float(self.p), r_t

    # ---------------------------------------------------------------- sampling
    def _gate(self, name: str, shape: tuple[int, ...], p: float, device: torch.device) -> Tensor:
        """Bernoulli(p * strength) mask of the given shape."""
        return torch.rand(shape, device=device) < p * self.strengths[name]

    def sample_geometry(
        self, batch: int, height: int, width: int, p: float, device: torch.device
    ) -> Tensor:
        """Per-sample SAMPLING matrices ``[B, 3, 3]`` in ``affine_grid``'s normalised coordinates.

        Each op's forward transform is drawn, then its inverse is composed, because
        ``grid_sample`` maps output pixels back to input positions. Matrices are built in
        centred pixel units (so rotations are true rotations on non-square images too) and
        converted to normalised coordinates at the end.
        """
        inv = _identity(batch, device)
        zeros = torch.zeros(batch, device=device)
        ones = torch.ones(batch, device=device)

        if self.strengths["xflip"] > 0:
            flip = torch.randint(0, 2, (batch,), device=device).float()
            flip = torch.where(self._gate("xflip", (batch,), p, device), flip, zeros)
            inv = inv @ _scale_matrix(1 - 2 * flip, ones)
        if self.strengths["rotate90"] > 0:
            quarter = torch.randint(0, 4, (batch,), device=device).float()
            quarter = torch.where(self._gate("rotate90", (batch,), p, device), quarter, zeros)
            inv = inv @ _rotate_matrix(-quarter * (math.pi / 2))
        if self.strengths["xint"] > 0:
            shift = (torch.rand(batch, 2, device=device) * 2 - 1) * self.xint_max
            gate = self._gate("xint", (batch,), p, device)[:, None]
            shift = torch.where(gate, shift, torch.zeros_like(shift))
            tx = torch.round(shift[:, 0] * width)
            ty = torch.round(shift[:, 1] * height)
            inv = inv @ _translate_matrix(-tx, -ty)
        if self.strengths["scale"] > 0:
            log2s = torch.randn(batch, device=device) * self.scale_std
            log2s = torch.where(self._gate("scale", (batch,), p, device), log2s, zeros)
            s = torch.exp2(-log2s)
            inv = inv @ _scale_matrix(s, s)
        p_rot = 1 - math.sqrt(max(0.0, 1 - min(p * self.strengths["rotate"], 1.0)))
        if self.strengths["rotate"] > 0:
            theta = (torch.rand(batch, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(torch.rand(batch, device=device) < p_rot, theta, zeros)
            inv = inv @ _rotate_matrix(-theta)
        if self.strengths["aniso"] > 0:
            log2s = torch.randn(batch, device=device) * self.aniso_std
            log2s = torch.where(self._gate("aniso", (batch,), p, device), log2s, zeros)
            s = torch.exp2(log2s)
            inv = inv @ _scale_matrix(1 / s, s)
        if self.strengths["rotate"] > 0:
            theta = (torch.rand(batch, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(torch.rand(batch, device=device) < p_rot, theta, zeros)
            inv = inv @ _rotate_matrix(-theta)
        if self.strengths["xfrac"] > 0:
            shift = torch.randn(batch, 2, device=device) * self.xfrac_std
            gate = self._gate("xfrac", (batch,), p, device)[:, None]
            shift = torch.where(gate, shift, torch.zeros_like(shift))
            inv = inv @ _translate_matrix(-shift[:, 0] * width, -shift[:, 1] * height)

        # centred pixel units <-> normalised [-1, 1] (align_corners=False convention)
        to_pixels = _scale_matrix(
            torch.full((batch,), width / 2.0, device=device),
            torch.full((batch,), height / 2.0, device=device),
        )
        to_normalised = _scale_matrix(
            torch.full((batch,), 2.0 / width, device=device),
            torch.full((batch,), 2.0 / height, device=device),
        )
        return to_normalised @ inv @ to_pixels

    def apply_geometry(self, x: Tensor, sampling: Tensor) -> Tensor:
        """Resample ``x [B, C, H, W]`` with per-sample matrices; untouched samples are copied."""
        eye = torch.eye(3, device=sampling.device)
        moved = (sampling - eye).abs().amax(dim=(1, 2)) > 1e-6
        if not bool(moved.any()):
            return x
        if bool(moved.all()):
            theta = sampling[:, :2, :].to(x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            return F.grid_sample(
                x, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False
            )
        # only resample the samples that actually move (most of them while p is small)
        index = moved.nonzero().squeeze(1)
        subset = x.index_select(0, index)
        theta = sampling.index_select(0, index)[:, :2, :].to(x.dtype)
        grid = F.affine_grid(theta, list(subset.shape), align_corners=False)
        warped = F.grid_sample(
            subset, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False
        )
        return x.index_copy(0, index, warped)

    def apply_colour(self, images: Tensor, p: float) -> Tensor:
        """Brightness then contrast, per sample and per channel: ``(x + b) * c``."""
        batch, channels = images.shape[:2]
        device = images.device
        shape = (batch, channels)
        add = torch.zeros(shape, device=device)
        mul = torch.ones(shape, device=device)
        if self.strengths["brightness"] > 0:
            b = torch.randn(shape, device=device) * self.brightness_std
            add = torch.where(self._gate("brightness", shape, p, device), b, add)
        if self.strengths["contrast"] > 0:
            c = torch.exp2(torch.randn(shape, device=device) * self.contrast_std)
            mul = torch.where(self._gate("contrast", shape, p, device), c, mul)
        if bool((add == 0).all()) and bool((mul == 1).all()):
            return images
        add = add.to(images.dtype)[:, :, None, None]
        mul = mul.to(images.dtype)[:, :, None, None]
        return torch.addcmul(add * mul, images, mul)

    def apply_cutout(self, x: Tensor, p: float) -> Tensor:
        """Zero one random square of side ``cutout_size`` of the image in every channel
        (DiffAugment's cutout; the square may leave the image, as there)."""
        batch, _, height, width = x.shape
        gate = self._gate("cutout", (batch,), p, x.device)
        if not bool(gate.any()):
            return x
        centre = torch.rand(batch, 2, device=x.device)
        rows = torch.arange(height, device=x.device, dtype=torch.float32)[None, :]
        cols = torch.arange(width, device=x.device, dtype=torch.float32)[None, :]
        half_h, half_w = self.cutout_size * height / 2, self.cutout_size * width / 2
        inside_r = (rows - centre[:, :1] * height).abs() < half_h
        inside_c = (cols - centre[:, 1:] * width).abs() < half_w
        hole = (inside_r[:, :, None] & inside_c[:, None, :]) & gate[:, None, None]
        return x * (~hole)[:, None].to(x.dtype)

    def forward(self, x: Tensor, num_image_channels: int) -> Tensor:
        p = float(self.p)
        if p <= 0:
            return x
        batch, channels, height, width = x.shape
        if not 0 <= num_image_channels <= channels:
            raise ValueError(f"num_image_channels={num_image_channels} outside 0..{channels}")
        sampling = self.sample_geometry(batch, height, width, p, x.device)
        x = self.apply_geometry(x, sampling)
        if num_image_channels > 0:
            images = self.apply_colour(x[:, :num_image_channels], p)
            x = (
                images
                if num_image_channels == channels
                else torch.cat([images, x[:, num_image_channels:]], dim=1)
            )
        if self.strengths["cutout"] > 0:
            x = self.apply_cutout(x, p)
        return x

    def extra_repr(self) -> str:
        mode = f"target={self.target}, speed_kimg={self.speed_kimg}" if self.adaptive else "fixed"
        return f"p={float(self.p):.3f}, {mode}"


def diff_augment(p: float, interval: int = 4) -> AdaptiveAugment:
    """DiffAugment's policy (Zhao et al. 2020) at a fixed probability ``p`` from step 0:
    integer translation (1/8 of the side) and cutout (half the side) on image and mask
    together, brightness and contrast on the modality channels only. ``r_t`` is still
    measured (every ``interval`` steps) so the logs show how sure D is."""
    off = dict.fromkeys(("xflip", "rotate90", "scale", "rotate", "aniso", "xfrac"), 0.0)
    return AdaptiveAugment(initial_p=p, interval=interval, cutout=1.0, adaptive=False, **off)
