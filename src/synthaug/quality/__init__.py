"""Image quality of synthetic data: feature extractors, FID/KID, precision/recall, mask–image
consistency and label statistics.

    from synthaug.quality import QualityRequest, evaluate_quality
    request = QualityRequest(store, fold, cache_dir="runs/x/quality-cache")
    report = evaluate_quality(request, images, labels)

Names are imported lazily (torch/MONAI load only when a name is first used). The mean
consistency function is ``synthaug.quality.consistency.consistency`` (the package attribute
``consistency`` is that module).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fid": "metrics",
    "frechet_distance": "metrics",
    "kid": "metrics",
    "precision_recall": "metrics",
    "label_statistics": "metrics",
    "class_frequencies": "metrics",
    "FeatureExtractor": "features",
    "DomainEncoderConfig": "features",
    "DomainExtractor": "features",
    "InceptionExtractor": "features",
    "get_extractor": "features",
    "load_or_train_domain_encoder": "features",
    "load_inception": "inception",
    "FIDInceptionV3": "inception",
    "consistency_dice": "consistency",
    "consistency_class_dice": "consistency",
    "evaluate_quality": "evaluate",
    "QualityRequest": "evaluate",
    "feature_metrics": "evaluate",
    "synthetic_arrays": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synthaug.quality' has no attribute {name!r}")
    return getattr(importlib.import_module(f"synthaug.quality.{module}"), name)
