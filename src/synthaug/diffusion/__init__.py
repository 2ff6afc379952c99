"""Mask-conditional diffusion (MONAI's DiffusionModelUNet, DDPM/DDIM schedulers and
DiffusionInferer): a painter that paints images for given masks, and a joint model."""
