"""StyleGAN2 losses, regularisers and the generator EMA.

The pure functions at the top can be read (and tested) without any network:

* ``d_logistic_loss`` / ``g_nonsaturating_loss``: the logistic GAN loss with softplus.
* ``r1_penalty``: per-sample ``||dD(x)/dx||^2`` on real inputs (graph kept for backward).
* ``PathLengthRegularizer``: StyleGAN2's path-length penalty with an EMA target.
* ``ema_beta`` / ``update_ema``: the generator moving average with its ramp-up.
* ``lecam_penalty`` / ``LeCamRegularizer``: LeCam regularisation of D's logits (Tseng et
  al. 2021), off unless a weight is given.

Lazy regularisation (StyleGAN2 sec. 3.1): a regulariser that runs only every ``N``
minibatches is multiplied by ``N`` so its average strength is unchanged; R1's term is
therefore ``gamma / 2 * ||grad||^2 * N``. It runs as its own optimiser step (as in the
paper), and Adam's hyper-parameters of that network are adjusted by
``lazy_regularization_adam`` (``c = N / (N + 1)``: ``lr * c``, ``betas ** c``) because the
network now takes ``N + 1`` steps per ``N`` minibatches.

``StyleGAN2Loss`` ties the pieces to a ``VariantSpec`` and the networks. A training loop
(D and G each with their own Adam)::

    loss = StyleGAN2Loss(G, D, spec, augment=ada, r1_gamma=default_r1_gamma(R, B))
    for step, (images, labels) in enumerate(batches):   # images [B,C,R,R] in [-1,1]
        d_opt.zero_grad(set_to_none=True)                # labels long [B,R,R]
        loss.d_loss(images, labels).backward(); d_opt.step()
        if step % loss.r1_interval == 0:
            d_opt.zero_grad(set_to_none=True)
            loss.d_loss(images, labels, do_main=False, do_r1=True).backward(); d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        loss.g_loss(labels=labels, batch_size=B).backward(); g_opt.step()
        if step % loss.pl_interval == 0:
            g_opt.zero_grad(set_to_none=True)
            loss.g_loss(labels=labels, batch_size=B, do_main=False, do_pl=True).backward()
            g_opt.step()
        update_ema(G_ema, G, ema_beta(B, cur_nimg))
        if ada.update_due: ada.update()

``d_loss`` / ``g_loss`` return a scalar to ``backward()``; the detached terms of the last
call are in ``loss.stats``. Unconditional variants ignore ``labels`` in the G step
(``batch_size`` is then required); the conditional variant needs them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthaug.gan.augment import AdaptiveAugment
from synthaug.gan.networks import Discriminator, Generator, MaskToD, VariantSpec, mix_styles

# --------------------------------------------------------------------------------------
# Pure loss functions
# --------------------------------------------------------------------------------------


def d_logistic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``mean softplus(D(fake)) + mean softplus(-D(real))`` = -log(1 - s(fake)) - log s(real)."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss ``mean softplus(-D(fake))`` = -log s(D(fake))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: Tensor, real_inputs: Tensor) -> Tensor:
    """Per-sample squared gradient norm ``||d D(x_b) / d x_b||^2`` -> ``[B]``.

    ``real_inputs`` must require grad and be what produced ``real_logits`` ``[B, 1]``. The
    samples are independent in D's output only if D has no cross-sample layer with a
    gradient path; minibatch-stddev has one, which StyleGAN2 also keeps (it is small). The
    graph is kept (``create_graph``) so the penalty can be back-propagated into D.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return grad.square().flatten(1).sum(dim=1)


def default_r1_gamma(resolution: int, batch_size: int) -> float:
    """StyleGAN2-ADA's heuristic ``0.0002 * resolution^2 / batch_size``."""
    return 0.0002 * resolution**2 / batch_size


def lazy_regularization_adam(
    lr: float, betas: tuple[float, float], interval: int | None
) -> tuple[float, tuple[float, float]]:
    """Adam ``(lr, betas)`` for a network regularised every ``interval`` minibatches."""
    if not interval or interval <= 1:
        return lr, betas
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def path_lengths(images: Tensor, ws: Tensor) -> Tensor:
    """``|J_w^T y|`` per sample for a random image-space ``y ~ N(0, I) / sqrt(H W)`` -> ``[B]``.

    ``ws [B, num_ws, w_dim]`` must be in the graph of ``images [B, C, H, W]``. The
    norm is over ``w_dim`` and averaged (mean of squares) over the ``num_ws`` layers.
    """
    height, width = images.shape[-2:]
    noise = torch.randn_like(images) / math.sqrt(height * width)
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


class PathLengthRegularizer(nn.Module):
    """Path-length penalty ``(|J^T y| - a)^2`` with ``a`` an EMA (``decay``) of the lengths.

    ``forward(images, ws) -> penalty [B]`` (unweighted); updates ``pl_mean``.
    """

    def __init__(self, decay: float = 0.01) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("pl_mean", torch.zeros([]))

    def forward(self, images: Tensor, ws: Tensor) -> Tensor:
        lengths = path_lengths(images, ws)
        with torch.no_grad():
            self.pl_mean.lerp_(lengths.mean().to(self.pl_mean.dtype), self.decay)
        return (lengths - self.pl_mean).square()


def lecam_penalty(
    real_logits: Tensor, fake_logits: Tensor, anchor_real: Tensor, anchor_fake: Tensor
) -> Tensor:
    """``mean relu(D(real) - a_fake)^2 + mean relu(a_real - D(fake))^2`` (Tseng et al. 2021).

    The anchors are moving averages of D's fake and real logits. The penalty grows once D
    puts a real above where fakes usually sit (or a fake below where reals usually sit): it
    keeps D's outputs from running apart on a small dataset, which bounds how confidently D
    can separate the two -- the overfitting that ADA fights from the input side.
    """
    return (
        F.relu(real_logits - anchor_fake).square().mean()
        + F.relu(anchor_real - fake_logits).square().mean()
    )


class LeCamRegularizer(nn.Module):
    """``forward(real_logits, fake_logits) -> lecam_penalty`` with anchors updated first.

    Anchors are EMAs (``decay``) of the batch-mean real and fake logits; the first call sets
    them to that batch's means (so they do not start at an arbitrary 0).
    """

    def __init__(self, decay: float = 0.99) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("anchor_real", torch.zeros([]))
        self.register_buffer("anchor_fake", torch.zeros([]))
        self.register_buffer("updates", torch.zeros([], dtype=torch.long))

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        with torch.no_grad():
            weight = 1.0 if int(self.updates) == 0 else 1.0 - self.decay
            self.anchor_real.lerp_(real_logits.detach().float().mean(), weight)
            self.anchor_fake.lerp_(fake_logits.detach().float().mean(), weight)
            self.updates += 1
        return lecam_penalty(real_logits, fake_logits, self.anchor_real, self.anchor_fake)


# --------------------------------------------------------------------------------------
# Generator EMA
# --------------------------------------------------------------------------------------


def ema_beta(
    batch_size: int, cur_nimg: int, ema_kimg: float = 10.0, rampup: float | None = 0.05
) -> float:
    """EMA decay per step: half-life of ``ema_kimg`` thousand images, ramped up early on.

    ``ema_nimg = min(ema_kimg * 1000, cur_nimg * rampup)``; ``beta = 0.5 ** (batch / ema_nimg)``.
    """
    ema_nimg = ema_kimg * 1000.0
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema_model: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` for parameters; buffers are copied."""
    for p_ema, p in zip(ema_model.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema_model.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


# --------------------------------------------------------------------------------------
# The training objective
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_param_grads(module: nn.Module) -> Iterator[None]:
    """Build the graph without parameter gradients for ``module`` (inputs still get them).

    The autograd graph is fixed at forward time, so restoring the flags afterwards is safe
    and the later ``backward()`` skips this module's weight gradients (a third of its cost).
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class StyleGAN2Loss:
    """Non-saturating logistic loss + lazy R1 + path length + style mixing + ADA.

    ``d_loss(images, labels, do_main=True, do_r1=False) -> scalar``
        ``images [B, C, R, R]`` in [-1, 1] (None for the mask variant), ``labels long
        [B, R, R]``. Main: fakes from G (no G gradients) vs reals, both augmented; the real
        logits feed ``augment.accumulate``; ``+ lecam_weight * LeCam`` when the weight is set. R1: ``gamma / 2 * r1_interval * ||grad||^2``,
        gradient taken w.r.t. the augmented real D input.
    ``g_loss(labels=None, batch_size=None, do_main=True, do_pl=False) -> scalar``
        Main: non-saturating loss through the (frozen) D. PL: path length on
        ``batch_size // pl_batch_shrink`` samples, weighted ``pl_weight * pl_interval``.
    """

    def __init__(
        self,
        G: Generator,
        D: Discriminator,
        spec: VariantSpec,
        augment: AdaptiveAugment | None = None,
        *,
        r1_gamma: float = 1.0,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        style_mixing_prob: float = 0.9,
        mask_mode: MaskToD = "straight_through",
        lecam_weight: float = 0.0,
        lecam_decay: float = 0.99,
    ) -> None:
        self.G = G
        self.D = D
        self.spec = spec
        self.augment = augment
        self.r1_gamma = r1_gamma
        self.r1_interval = r1_interval
        self.pl_weight = pl_weight
        self.pl_interval = pl_interval
        self.pl_batch_shrink = pl_batch_shrink
        self.style_mixing_prob = style_mixing_prob
        self.mask_mode: MaskToD = mask_mode
        self.path_length = PathLengthRegularizer(pl_decay)
        self.lecam_weight = lecam_weight
        self.lecam = LeCamRegularizer(lecam_decay)
        self.stats: dict[str, Tensor] = {}

    # ------------------------------------------------------------ helpers
    @property
    def d_regularised(self) -> bool:
        """Whether ``d_loss(do_r1=True)`` adds anything (the trainer's lazy D step)."""
        return self.r1_gamma > 0

    @property
    def _device(self) -> torch.device:
        return next(self.G.parameters()).device

    def _condition(
        self, labels: Tensor | None, batch_size: int | None
    ) -> tuple[Tensor | None, int]:
        dtype = next(self.G.parameters()).dtype
        cond = self.spec.generator_condition(labels, dtype)
        if batch_size is None:
            if labels is None:
                raise ValueError("pass batch_size (or labels)")
            batch_size = labels.shape[0]
        return cond, batch_size

    def generate(
        self, batch_size: int, cond: Tensor | None, noise_mode: str = "random"
    ) -> tuple[Tensor, Tensor]:
        """Random z (+ style mixing) -> ``(images [B, G_out, R, R], ws [B, num_ws, w_dim])``."""
        z = torch.randn(batch_size, self.G.z_dim, device=self._device)
        ws = self.G.mapping(z, cond)
        if self.style_mixing_prob > 0:
            z_other = torch.randn_like(z)
            ws = mix_styles(ws, self.G.mapping(z_other, cond), self.style_mixing_prob)
        images = self.G.synthesis(ws, cond, noise_mode)
        return images, ws

    def run_d(self, d_input: Tensor, num_segments: int = 1) -> Tensor:
        """Augment (if any) and score a D input ``[B, d_in, R, R]`` -> logits ``[B, 1]``."""
        if self.augment is not None:
            d_input = self.augment(d_input, self.spec.d_image_channels)
        return self.D(d_input, num_segments=num_segments)

    # ------------------------------------------------------------ discriminator
    def d_loss(
        self,
        images: Tensor | None,
        labels: Tensor,
        do_main: bool = True,
        do_r1: bool = False,
    ) -> Tensor:
        """Discriminator objective; see the class docstring."""
        real = self.spec.real_d_input(images, labels)
        batch = real.shape[0]
        total = real.new_zeros([])
        stats: dict[str, Tensor] = {}
        if do_main:
            cond, _ = self._condition(labels, batch)
            with torch.no_grad():
                fake_out, _ = self.generate(batch, cond)
                fake = self.spec.fake_d_input(fake_out, labels, self.mask_mode)
            # One D pass over [real; fake]: minibatch-stddev groups never straddle the two.
            logits = self.run_d(torch.cat([real, fake]), num_segments=2)
            real_logits, fake_logits = logits[:batch], logits[batch:]
            loss_main = d_logistic_loss(real_logits, fake_logits)
            total = total + loss_main
            if self.lecam_weight > 0:
                penalty = self.lecam(real_logits.float(), fake_logits.float())
                total = total + self.lecam_weight * penalty
                stats["lecam_penalty"] = penalty.detach()
            if self.augment is not None:
                self.augment.accumulate(real_logits)
            stats.update(
                d_main=loss_main.detach(),
                real_logits=real_logits.detach().mean(),
                fake_logits=fake_logits.detach().mean(),
            )
        if do_r1:
            if self.augment is not None:
                with torch.no_grad():
                    real = self.augment(real, self.spec.d_image_channels)
            real = real.detach().requires_grad_(True)
            real_logits = self.D(real)
            penalty = r1_penalty(real_logits, real)
            loss_r1 = penalty.mean() * (self.r1_gamma / 2) * self.r1_interval
            total = total + loss_r1
            stats.update(r1_penalty=penalty.detach().mean())
        self.stats = stats
        return total

    # ------------------------------------------------------------ generator
    def g_loss(
        self,
        labels: Tensor | None = None,
        batch_size: int | None = None,
        do_main: bool = True,
        do_pl: bool = False,
    ) -> Tensor:
        """Generator objective; see the class docstring."""
        cond, batch = self._condition(labels, batch_size)
        total = torch.zeros([], device=self._device)
        stats: dict[str, Tensor] = {}
        if do_main:
            fake_out, _ = self.generate(batch, cond)
            fake = self.spec.fake_d_input(fake_out, labels, self.mask_mode)
            with _no_param_grads(self.D):
                fake_logits = self.run_d(fake)
            loss_main = g_nonsaturating_loss(fake_logits)
            total = total + loss_main
            stats.update(g_main=loss_main.detach(), fake_logits=fake_logits.detach().mean())
        if do_pl:
            pl_batch = max(1, batch // self.pl_batch_shrink)
            pl_cond = cond[:pl_batch] if cond is not None else None
            fake_out, ws = self.generate(pl_batch, pl_cond)
            penalty = self.path_length(fake_out, ws)
            loss_pl = penalty.mean() * self.pl_weight * self.pl_interval
            total = total + loss_pl
            stats.update(
                pl_penalty=penalty.detach().mean(), pl_mean=self.path_length.pl_mean.clone()
            )
        self.stats = stats
        return total


__all__ = [
    "LeCamRegularizer",
    "PathLengthRegularizer",
    "StyleGAN2Loss",
    "d_logistic_loss",
    "default_r1_gamma",
    "ema_beta",
    "g_nonsaturating_loss",
    "lazy_regularization_adam",
    "lecam_penalty",
    "path_lengths",
    "r1_penalty",
    "update_ema",
]
