"""synthaug: measure whether GAN-synthesised image-mask pairs help small segmentation datasets."""

__version__ = "0.1.0"
