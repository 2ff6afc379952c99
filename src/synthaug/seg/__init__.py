"""Segmentation: MONAI U-Net training on real + synthetic patients, evaluation on real ones."""

from synthaug.seg.evaluate import evaluate_patients, mean_foreground_dice, patient_dice, predict
from synthaug.seg.network import build_unet
from synthaug.seg.train import SegOptions, train_seg

__all__ = [
    "SegOptions",
    "build_unet",
    "evaluate_patients",
    "mean_foreground_dice",
    "patient_dice",
    "predict",
    "train_seg",
]
