"""The downstream segmentation network: MONAI's 2-D U-Net."""

from __future__ import annotations

from monai.networks.nets import UNet

from synthaug.seg.presets import SegPreset


def build_unet(in_channels: int, num_classes: int, preset: SegPreset) -> UNet:
    """2-D U-Net: [B, C, R, R] images in [-1, 1] → [B, K, R, R] class logits."""
    return UNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=num_classes,
        channels=preset.channels,
        strides=preset.strides,
        num_res_units=preset.num_res_units,
        norm="instance",
    )
