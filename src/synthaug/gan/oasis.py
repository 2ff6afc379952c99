"""OASIS-style objective for the conditional generator (Schönfeld et al. 2021, "You Only
Need Adversarial Supervision for Semantic Image Synthesis").

The discriminator (``networks.SegmentationDiscriminator``) labels every pixel of an image
with one of the K mask classes or "fake" (class K). It is trained to find the given mask in
real images and to call every pixel of a generated image fake; the generator is trained to
make D find the conditioning mask in its image. A per-pixel, per-class signal replaces the
single real/fake logit, which is what a painter needs to follow its mask.

The pure functions can be read and tested without a network:

* ``class_balance_weights``: per-pixel weights ``N / (present classes * count of the pixel's
  class)`` so small classes (a lesion) weigh as much as the background.
* ``oasis_d_loss`` / ``oasis_g_loss``: the (K+1)-class cross-entropies.
* ``label_mix`` / ``labelmix_penalty``: LabelMix, mixing a real and a fake image class by
  class; D's output on the mix must equal the same mix of its outputs on the two.
* ``realness``: a per-image real-vs-fake logit of a segmentation output (ADA's ``r_t``, logs).

LabelMix runs lazily, in the step where the residual D would run R1 (every ``r1_interval``
minibatches, weighted by the interval), so the lazy-regularisation Adam settings apply.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from synthaug.gan.loss import StyleGAN2Loss, _no_param_grads


def class_balance_weights(labels: Tensor, num_classes: int) -> Tensor:
    """Per-pixel weights ``[B, H, W]`` for labels ``long [B, H, W]`` in ``0..num_classes-1``.

    ``w_c = N / (P * n_c)`` with N pixels, P classes present in the batch and n_c pixels of
    class c, so every present class carries the same total weight and the mean weight is 1.
    """
    counts = torch.bincount(labels.flatten(), minlength=num_classes).to(torch.float32)
    present = (counts > 0).sum().clamp(min=1)
    coefficients = labels.numel() / (present * counts.clamp(min=1.0))
    return coefficients[labels]


def oasis_d_loss(real_logits: Tensor, fake_logits: Tensor, labels: Tensor) -> Tensor:
    """Balanced cross-entropy of real pixels to their classes + cross-entropy of every fake
    pixel to class K. ``*_logits [B, K + 1, H, W]``, ``labels long [B, H, W]``."""
    num_classes = real_logits.shape[1] - 1
    weights = class_balance_weights(labels, num_classes)
    real = (F.cross_entropy(real_logits, labels, reduction="none") * weights).mean()
    fake_target = torch.full(
        (fake_logits.shape[0], *fake_logits.shape[2:]), num_classes, device=fake_logits.device
    )
    return real + F.cross_entropy(fake_logits, fake_target)


def oasis_g_loss(fake_logits: Tensor, labels: Tensor) -> Tensor:
    """Balanced cross-entropy of a generated image's pixels to the mask it was painted for."""
    weights = class_balance_weights(labels, fake_logits.shape[1] - 1)
    return (F.cross_entropy(fake_logits, labels, reduction="none") * weights).mean()


def label_mix(
    real: Tensor, fake: Tensor, labels: Tensor, num_classes: int, generator=None
) -> tuple[Tensor, Tensor]:
    """Mix ``real`` and ``fake`` ``[B, C, H, W]`` by class: each class of each sample's mask
    comes from the real image or the fake one (a fair coin). -> ``(mixed, mask [B, 1, H, W])``
    with mask 1 where the real image was taken."""
    batch = labels.shape[0]
    coin = torch.randint(0, 2, (batch, num_classes), device=labels.device, generator=generator)
    mask = coin.gather(1, labels.flatten(1)).view(batch, 1, *labels.shape[1:]).to(real.dtype)
    return mask * real + (1 - mask) * fake, mask


def labelmix_penalty(
    mixed_logits: Tensor, real_logits: Tensor, fake_logits: Tensor, mask: Tensor
) -> Tensor:
    """``mean (D(mix) - (m D(real) + (1 - m) D(fake)))^2`` over logits ``[B, K + 1, H, W]``."""
    target = mask * real_logits + (1 - mask) * fake_logits
    return (mixed_logits - target).square().mean()


def realness(seg_logits: Tensor) -> Tensor:
    """``[B, K + 1, H, W] -> [B, 1]``: mean over pixels of ``logsumexp(real classes) - fake``,
    the log-odds that a pixel is real; positive where D calls the image real."""
    odds = torch.logsumexp(seg_logits[:, :-1], dim=1) - seg_logits[:, -1]
    return odds.flatten(1).mean(dim=1, keepdim=True)


class OasisLoss(StyleGAN2Loss):
    """``StyleGAN2Loss`` with the segmentation D: the same generation (style mixing, path
    length), augmentation and call pattern; ``d_loss(do_r1=True)`` is LabelMix here."""

    def __init__(self, *args, labelmix_weight: float = 10.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.spec.variant != "conditional":
            raise ValueError("the OASIS loss is for the conditional variant only")
        self.labelmix_weight = labelmix_weight

    @property
    def d_regularised(self) -> bool:
        return self.labelmix_weight > 0

    def _segment(self, d_input: Tensor) -> tuple[Tensor, Tensor]:
        """Augment image + mask channels together, then ``(D(images), target labels)``."""
        if self.augment is not None:
            d_input = self.augment(d_input, self.spec.d_image_channels)
        c = self.spec.num_modalities
        return self.D(d_input[:, :c]), d_input[:, c:].argmax(dim=1)

    def d_loss(
        self, images: Tensor | None, labels: Tensor, do_main: bool = True, do_r1: bool = False
    ) -> Tensor:
        real = self.spec.real_d_input(images, labels)
        batch = real.shape[0]
        cond, _ = self._condition(labels, batch)
        with torch.no_grad():
            fake_out, _ = self.generate(batch, cond)
        total = real.new_zeros([])
        stats: dict[str, Tensor] = {}
        if do_main:
            fake = self.spec.fake_d_input(fake_out, labels, self.mask_mode)
            logits, targets = self._segment(torch.cat([real, fake]))
            real_logits, fake_logits = logits[:batch], logits[batch:]
            loss_main = oasis_d_loss(real_logits, fake_logits, targets[:batch])
            total = total + loss_main
            real_score = realness(real_logits.detach().float())
            if self.augment is not None:
                self.augment.accumulate(real_score)
            stats.update(
                d_main=loss_main.detach(),
                real_logits=real_score.mean(),
                fake_logits=realness(fake_logits.detach().float()).mean(),
            )
        if do_r1 and self.labelmix_weight > 0:
            mixed, mask = label_mix(
                images, fake_out.to(images.dtype), labels, self.spec.num_classes
            )
            logits = self.D(torch.cat([images, fake_out.to(images.dtype), mixed]))
            real_logits, fake_logits, mixed_logits = logits.chunk(3)
            penalty = labelmix_penalty(mixed_logits, real_logits, fake_logits, mask)
            total = total + penalty * self.labelmix_weight * self.r1_interval
            stats.update(labelmix_penalty=penalty.detach())
        self.stats = stats
        return total

    def g_loss(
        self,
        labels: Tensor | None = None,
        batch_size: int | None = None,
        do_main: bool = True,
        do_pl: bool = False,
    ) -> Tensor:
        total = torch.zeros([], device=self._device)
        stats: dict[str, Tensor] = {}
        if do_main:
            cond, batch = self._condition(labels, batch_size)
            fake_out, _ = self.generate(batch, cond)
            fake = self.spec.fake_d_input(fake_out, labels, self.mask_mode)
            with _no_param_grads(self.D):
                logits, targets = self._segment(fake)
            loss_main = oasis_g_loss(logits, targets)
            total = total + loss_main
            stats.update(g_main=loss_main.detach(), fake_logits=realness(logits.detach()).mean())
        if do_pl:
            total = total + super().g_loss(labels, batch_size, do_main=False, do_pl=True)
            stats.update(self.stats)
        self.stats = stats
        return total


__all__ = [
    "OasisLoss",
    "class_balance_weights",
    "label_mix",
    "labelmix_penalty",
    "oasis_d_loss",
    "oasis_g_loss",
    "realness",
]
