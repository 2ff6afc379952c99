"""StyleGAN2 core: layers, the three generator/discriminator variants, ADA and losses."""

from synthaug.gan.augment import AdaptiveAugment
from synthaug.gan.layers import tune_cpu_allocator
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
from synthaug.gan.networks import (
    VARIANTS,
    Discriminator,
    Generator,
    MappingNetwork,
    SynthesisNetwork,
    VariantSpec,
    build_networks,
    generated_to_mask,
    mask_logits_to_d_input,
    masks_to_onehot,
    mix_styles,
    onehot_to_signed,
)

__all__ = [
    "VARIANTS",
    "AdaptiveAugment",
    "Discriminator",
    "Generator",
    "MappingNetwork",
    "PathLengthRegularizer",
    "StyleGAN2Loss",
    "SynthesisNetwork",
    "VariantSpec",
    "build_networks",
    "d_logistic_loss",
    "default_r1_gamma",
    "ema_beta",
    "g_nonsaturating_loss",
    "generated_to_mask",
    "lazy_regularization_adam",
    "mask_logits_to_d_input",
    "masks_to_onehot",
    "mix_styles",
    "onehot_to_signed",
    "r1_penalty",
    "tune_cpu_allocator",
    "update_ema",
]
