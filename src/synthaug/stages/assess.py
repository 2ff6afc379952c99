"""Stage: image quality of synthetic sets against a fold's real patients (``quality``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from synthaug.atomic import write_json
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.quality.evaluate import evaluate_quality, synthetic_arrays
from synthaug.seg.reference import load_unet


@dataclass(frozen=True)
class AssessOptions:
    """Score each synthetic set in ``synthetic`` into the JSON file of the same index in ``outs``.

    extractor: "domain" (in-domain encoders, trained and cached in ``cache`` or the store's
    cache) or "inception" (``inception_weights``). patients: only the first N synthetic
    patients. reference_unet: a real-only ``train-seg`` model.pt of ``unet_preset`` that
    judges mask–image consistency (default: one trained on the fold and cached).
    skip_existing: leave sets whose output file exists (a resumed study). tags: fields added
    to each set's result (e.g. the study's dataset and source), one mapping per set or none.
    """

    store: str
    fold: int
    synthetic: tuple[str, ...]
    outs: tuple[str, ...]
    extractor: str = "domain"
    inception_weights: str | None = None
    patients: int | None = None
    reference_unet: str | None = None
    unet_preset: str = "cpu-tiny"
    cache: str | None = None
    skip_existing: bool = False
    tags: tuple[dict, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Assessment:
    """The quality of one synthetic set (``quality.evaluate.evaluate_quality``'s result)."""

    synthetic: Path
    out: Path
    metrics: dict


def _provenance(synthetic: Path) -> dict:
    """What generate recorded about a synthetic set (empty for data made elsewhere)."""
    path = synthetic / "dataset.json"
    try:
        return json.loads(path.read_text()).get("synthaug") or {}
    except (OSError, json.JSONDecodeError):
        return {}


def assess_synthetic(options: AssessOptions) -> list[Assessment]:
    """Score every synthetic set; the fold's encoders, reference U-Net and real features are
    loaded (or trained) once for all of them. Each result is written atomically."""
    if len(options.synthetic) != len(options.outs):
        raise SynthaugError("assess: give one output file per synthetic set")
    tags = options.tags or tuple({} for _ in options.synthetic)
    store = SliceStore(options.store)
    unet = (
        load_unet(options.reference_unet, store, options.unet_preset)
        if options.reference_unet
        else None
    )
    cache = Path(options.cache) if options.cache else store.cache_dir
    real_features: dict = {}  # the fold's real features, shared by its synthetic sets
    done = []
    for synthetic, out, tag in zip(options.synthetic, options.outs, tags, strict=True):
        if options.skip_existing and Path(out).is_file():
            continue
        images, labels = synthetic_arrays(synthetic, store, limit=options.patients)
        metrics = evaluate_quality(
            store,
            options.fold,
            images,
            labels,
            extractor=options.extractor,
            cache_dir=cache,
            inception_weights=options.inception_weights,
            reference_unet=unet,
            unet_preset=options.unet_preset,
            feature_cache=real_features,
        )
        meta = _provenance(Path(synthetic))
        metrics.update(
            **tag,
            synthetic=str(Path(synthetic).resolve()),
            filter=meta.get("filter"),
            snapshot=meta.get("snapshot"),
        )
        write_json(Path(out), metrics)
        done.append(Assessment(Path(synthetic), Path(out), metrics))
    return done
