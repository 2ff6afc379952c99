"""All image-quality metrics of one synthetic set against the fold's REAL training slices.

The real reference set is the fold's real training slices (the data the generator was allowed
to see) — never test patients. Per modality (one channel, with its own feature extractor) and
jointly (all channels) it reports FID, KID (mean, std) and k-NN precision/recall; then
mask–image consistency with a real-only U-Net (and that U-Net's consistency on the real
VALIDATION slices: the ceiling) and label statistics. No number here looks at test patients.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthaug.data.prepare import prepare_like
from synthaug.data.store import SliceStore
from synthaug.data.synthetic import read_synthetic, synthetic_provenance
from synthaug.errors import SynthaugError
from synthaug.quality.consistency import consistency_class_dice, summarise_consistency
from synthaug.quality.features import (
    KINDS,
    DomainEncoderConfig,
    FeatureExtractor,
    as_image_tensor,
    get_extractor,
)
from synthaug.quality.memorisation import labelled, memorisation, pair_vectors
from synthaug.quality.metrics import fid, kid, label_statistics, precision_recall
from synthaug.seg.reference import train_reference_unet

Spaces = dict[str, tuple[FeatureExtractor, list[int]] | None]
MAX_MEMORISATION = 10000  # training slices searched for nearest neighbours


def synthetic_arrays(
    path: Path | str, store: SliceStore, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All slices of the first ``limit`` synthetic patients: images [N, C, R, R], labels [N, R, R].

    A set written by ``synthaug generate`` is read as it is; any other dataset ``prepare`` can
    read (another tool's synthetic patients, real data) is prepared with the store's options.
    """
    if synthetic_provenance(path) is None and not _is_synthaug_set(path):
        return prepare_like(path, store, limit)
    patients = read_synthetic(path, store, limit=limit)
    if not patients:
        raise SynthaugError(f"{path}: holds no synthetic patients")
    return (
        np.concatenate([p.images for p in patients]).astype(np.float32),
        np.concatenate([p.labels for p in patients]).astype(np.int64),
    )


def _is_synthaug_set(path: Path | str) -> bool:
    try:
        return bool(json.loads((Path(path) / "dataset.json").read_text()).get("synthetic"))
    except (OSError, json.JSONDecodeError):
        return False


def feature_metrics(
    real: np.ndarray,
    fake: np.ndarray,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    k: int = 3,
    seed: int = 0,
) -> dict:
    """FID, KID (mean, std) and precision/recall of two feature sets [N, d].

    ``fid_singular`` flags N <= d for either set: the covariances are then singular and FID is
    strongly biased upwards — compare such FIDs only at equal N, or rely on KID.
    """
    kid_mean, kid_std = kid(real, fake, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(real, fake, k)
    return {
        "fid": fid(real, fake),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "n_real": len(real),
        "n_synthetic": len(fake),
        "dim": int(real.shape[1]),
        "fid_singular": bool(min(len(real), len(fake)) <= real.shape[1]),
    }


def _check_synthetic(store: SliceStore, images: torch.Tensor, labels: np.ndarray) -> None:
    c, r = store.num_channels, store.resolution
    if images.shape[1:] != (c, r, r):
        raise SynthaugError(
            f"synthetic images: shape {list(images.shape)} does not match the store's "
            f"[N, {c}, {r}, {r}] ({', '.join(store.modalities)})"
        )
    if labels.shape != (images.shape[0], r, r):
        raise SynthaugError(
            f"synthetic labels: shape {list(labels.shape)}, expected [{images.shape[0]}, {r}, {r}]"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= store.num_classes):
        raise SynthaugError(
            f"synthetic labels: values outside 0..{store.num_classes - 1} ({store.label_names})"
        )


def _feature_spaces(
    store: SliceStore,
    fold: int,
    extractor: str,
    cache_dir: Path | str,
    inception_weights: Path | str | None,
    encoder_config: DomainEncoderConfig | None,
    device: str,
    seconds: dict[str, float],
) -> Spaces:
    """One feature space per modality (that channel alone) plus the joint one (all channels):
    name → (extractor, channels), None where the extractor cannot read that channel set.
    Encoder training time is added to ``seconds["encoder_training"]``."""
    channels = list(range(store.num_channels))
    if extractor == "inception":
        inception = get_extractor("inception", weights=inception_weights, device=device)
        spaces: Spaces = {m: (inception, [c]) for c, m in enumerate(store.modalities)}
        # Inception takes RGB: a joint space exists only for 1 or 3 modality channels.
        spaces["joint"] = (inception, channels) if len(channels) in (1, 3) else None
        return spaces

    def domain(chans: list[int]) -> tuple[FeatureExtractor, list[int]]:
        t0 = time.perf_counter()
        ex = get_extractor(
            "domain",
            store=store,
            fold=fold,
            channels=chans,
            cache_dir=cache_dir,
            config=encoder_config,
            device=device,
        )
        seconds["encoder_training"] += time.perf_counter() - t0
        return ex, chans

    spaces = {store.modalities[c]: domain([c]) for c in channels}
    spaces["joint"] = domain(channels) if len(channels) > 1 else spaces[store.modalities[0]]
    return spaces


EQUAL_N_REPEATS = 5
AVERAGED = ("fid", "kid_mean", "kid_std", "precision", "recall")


def _metrics_at_n(real: np.ndarray, feats: np.ndarray, n: int, args: tuple, salt: int) -> dict:
    """Metrics of ``feats`` against ``real`` at sample count ``n``: a larger set is subsampled
    ``EQUAL_N_REPEATS`` times (seeded) and the metrics averaged; ``fid_sd`` their spread."""
    if len(feats) == n:
        return {**feature_metrics(real, feats, *args), "n_available": n, "subsamples": 1,
                "fid_sd": 0.0}  # fmt: skip
    rng = np.random.default_rng([args[-1], salt])
    # The repeats share KID's subsets between them: as many subsets in all as one call draws.
    args = (max(10, args[0] // EQUAL_N_REPEATS), *args[1:])
    runs = [
        feature_metrics(real, feats[np.sort(rng.choice(len(feats), n, replace=False))], *args)
        for _ in range(EQUAL_N_REPEATS)
    ]
    out = {**runs[0], **{k: float(np.mean([r[k] for r in runs])) for k in AVERAGED}}
    out.update(n_available=len(feats), subsamples=EQUAL_N_REPEATS,
               fid_sd=float(np.std([r["fid"] for r in runs])))  # fmt: skip
    return out


def _at_equal_n(
    real: np.ndarray, fake: np.ndarray, held: np.ndarray | None, args: tuple
) -> tuple[dict, dict | None]:
    """Synthetic and held-out metrics at the same N = the smaller of the two sets (FID's bias
    depends strongly on N, so only equal-N numbers can be compared)."""
    if held is None:
        return _metrics_at_n(real, fake, len(fake), args, 1), None
    n = min(len(fake), len(held))
    return _metrics_at_n(real, fake, n, args, 1), _metrics_at_n(real, held, n, args, 2)


def _score_spaces(
    spaces: Spaces,
    real_x: torch.Tensor,
    held_x: torch.Tensor | None,
    fake_x: torch.Tensor,
    cache: dict,
    metric_args: tuple[int, int, int, int],
    seconds: dict[str, float],
) -> tuple[dict, dict, dict]:
    """Per feature space: metrics of the synthetic set and of the held-out real set against
    the real reference at equal N, and the extractor's description. ``cache`` keeps the real
    sets' features between calls; ``metric_args``: (kid_subsets, kid_subset_size, k, seed)."""
    results: dict[str, dict | None] = {}
    baseline: dict[str, dict | None] = {}
    descriptions: dict[str, dict | None] = {}
    for name, space in spaces.items():
        results[name] = baseline[name] = descriptions[name] = None
        if space is None:
            continue
        ex, chans = space
        t0 = time.perf_counter()
        if (name, "real") not in cache:
            cache[(name, "real")] = ex(real_x[:, chans])
            cache[(name, "held-out")] = ex(held_x[:, chans]) if held_x is not None else None
        fr, fb = cache[(name, "real")], cache[(name, "held-out")]
        ff = ex(fake_x[:, chans])
        t1 = time.perf_counter()
        results[name], baseline[name] = _at_equal_n(fr, ff, fb, metric_args)
        seconds["features"] += t1 - t0
        seconds["metrics"] += time.perf_counter() - t1
        descriptions[name] = {**ex.describe(), "channels": chans}
    return results, baseline, descriptions


def _reference_set(
    store: SliceStore, patients: list[str], max_real: int | None, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """The real reference slices (at most ``max_real``, a seeded subsample): images, labels."""
    images, labels = store.training_arrays(patients)
    if max_real is not None and len(images) > max_real:
        keep = np.sort(np.random.default_rng(seed).choice(len(images), max_real, replace=False))
        images, labels = images[keep], labels[keep]
    return torch.from_numpy(images), labels


def _held_out_set(store: SliceStore, patients: list[str], k: int) -> torch.Tensor | None:
    """The held-out real images, None when there are too few for precision/recall."""
    if not patients:
        return None
    images = torch.from_numpy(store.arrays(patients)[0])
    return images if len(images) > k else None


@dataclass(frozen=True)
class QualityRequest:
    """How to score synthetic slices of ``fold`` of ``store`` (everything but the slices).

    extractor: "domain" (encoders trained and cached under ``cache_dir``) or "inception"
    (``inception_weights`` or $SYNTHAUG_INCEPTION_WEIGHTS; joint metrics only for 3-channel
    stores). reference_unet: the real-only U-Net for consistency; when None (and
    ``with_consistency``) one is trained with ``unet_preset`` and cached under ``cache_dir``.
    max_real: subsample the real set (seeded) to at most this many slices. real_baseline: also
    score the fold's real VALIDATION slices against the same reference, and both sets at the
    same N — the smaller of the two; the larger one is subsampled ``EQUAL_N_REPEATS`` times
    and averaged (FID is biased by N: only equal-N numbers compare). kid_subsets,
    kid_subset_size: KID's subsets; k: the neighbours of precision/recall.
    """

    store: SliceStore
    fold: int
    cache_dir: Path | str
    extractor: str = "domain"
    inception_weights: Path | str | None = None
    reference_unet: nn.Module | None = None
    with_consistency: bool = True
    unet_preset: str = "cpu-tiny"
    encoder_config: DomainEncoderConfig | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    k: int = 3
    seed: int = 0
    max_real: int | None = None
    real_baseline: bool = True
    device: str = "cpu"

    @property
    def metric_args(self) -> tuple[int, int, int, int]:
        return (self.kid_subsets, self.kid_subset_size, self.k, self.seed)


def evaluate_quality(
    request: QualityRequest,
    synthetic_images: np.ndarray | torch.Tensor,
    synthetic_labels: np.ndarray | torch.Tensor,
    feature_cache: dict | None = None,
) -> dict:
    """Image-quality metrics of synthetic slices against the fold's real training slices.

    synthetic_images [N, C, R, R] in [-1, 1], synthetic_labels [N, R, R] in 0..K-1 (the store's
    channels, resolution and labels). feature_cache: a dict kept between calls on the same
    (store, fold) and request, so the real sets' features are computed once. Memorisation
    (``quality.memorisation``): how close the synthetic images come to their nearest real
    training image, against validation images.

    Returns a JSON-ready dict: ``modalities`` {name: metrics}, ``joint`` (metrics or None),
    ``real_baseline`` {name: metrics} (or None),
    ``consistency`` {synthetic, real_val}, ``labels`` (label statistics), ``features``
    (extractor descriptions) and ``seconds`` per part, with the encoder/U-Net training apart.
    """
    r = request
    if r.extractor not in KINDS:
        raise SynthaugError(f"extractor: {r.extractor!r} is not one of {', '.join(KINDS)}")
    seconds: dict[str, float] = {"encoder_training": 0.0, "features": 0.0, "metrics": 0.0}
    fake_x = as_image_tensor(synthetic_images, "synthetic images")
    fake_y = np.asarray(
        synthetic_labels.cpu() if isinstance(synthetic_labels, torch.Tensor) else synthetic_labels
    ).astype(np.int64)
    _check_synthetic(r.store, fake_x, fake_y)
    split = r.store.split(r.fold)
    real_x, real_y = _reference_set(r.store, split.train, r.max_real, r.seed)
    spaces = _feature_spaces(
        r.store, r.fold, r.extractor, r.cache_dir, r.inception_weights, r.encoder_config,
        r.device, seconds,
    )  # fmt: skip
    base_x = _held_out_set(r.store, split.val, r.k) if r.real_baseline else None
    cache = feature_cache if feature_cache is not None else {}
    scored = _score_spaces(spaces, real_x, base_x, fake_x, cache, r.metric_args, seconds)
    out = _feature_report(r, len(split.train), len(real_x), fake_x, base_x, scored)
    if base_x is not None:
        t0 = time.perf_counter()
        out["memorisation"] = _memorisation(r.store, split, (fake_x, fake_y), base_x, r.seed)
        seconds["memorisation"] = time.perf_counter() - t0
    out["consistency"] = _consistency_of(r, fake_x, fake_y, seconds)
    t0 = time.perf_counter()
    out["labels"] = label_statistics(real_y, fake_y, r.store.num_classes, r.store.label_names)
    seconds["labels"] = time.perf_counter() - t0
    out["seconds"] = {k_: round(v, 3) for k_, v in seconds.items()}
    return out


def _feature_report(
    r: QualityRequest, train_patients: int, n_real: int, fake_x: torch.Tensor,
    base_x: torch.Tensor | None, scored: tuple[dict, dict, dict],
) -> dict:  # fmt: skip
    """The feature-space part of the report: metrics per modality and joint, the held-out
    real baseline at the same N, and what each extractor was."""
    results, baseline, descriptions = scored
    modalities = r.store.modalities
    return {
        "fold": r.fold,
        "reference": f"real training slices of fold {r.fold} ({train_patients} patients)",
        "extractor": r.extractor,
        "comparable_to_published": r.extractor == "inception",
        "n_real": n_real,
        "n_synthetic": len(fake_x),
        "modalities": {m: results[m] for m in modalities},
        "joint": results["joint"],
        "n_compared": min(len(fake_x), len(base_x)) if base_x is not None else len(fake_x),
        "real_baseline": None
        if base_x is None
        else {
            "patients": "validation",
            "n": len(base_x),
            "modalities": {m: baseline[m] for m in modalities},
            "joint": baseline["joint"],
        },
        "features": descriptions,
    }


def _consistency_of(
    r: QualityRequest, fake_x: torch.Tensor, fake_y: np.ndarray, seconds: dict[str, float]
) -> dict | None:
    """Mask–image consistency under the request's reference U-Net (trained and cached when
    it names none); None without ``with_consistency``."""
    if not r.with_consistency:
        return None
    unet = r.reference_unet
    if unet is None:
        t0 = time.perf_counter()
        unet = train_reference_unet(r.store, r.fold, r.cache_dir, r.unet_preset, device=r.device)
        seconds["unet_training"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = _consistency(unet, r.store, r.fold, fake_x, fake_y, r.device)
    seconds["consistency"] = time.perf_counter() - t0
    return result


def _memorisation(
    store: SliceStore, split, fake: tuple[torch.Tensor, np.ndarray], held_x: torch.Tensor, seed: int
) -> dict | None:
    """Synthetic images' distances to their nearest real training image against the
    validation images'; ``closest`` names store slice indices for the report's grid."""
    train_idx = store.training_indices(split.train)
    if len(train_idx) > MAX_MEMORISATION:
        keep = np.random.default_rng(seed).choice(len(train_idx), MAX_MEMORISATION, replace=False)
        train_idx = np.sort(train_idx[keep])
    train_x = store.images[train_idx].astype(np.float32)
    held_y = store.arrays(split.val)[1]
    k = store.num_classes
    use = (labelled(fake[1]), labelled(store.labels[train_idx]), labelled(held_y))
    result = memorisation(
        pair_vectors(fake[0].numpy(), None, k),
        pair_vectors(train_x, None, k),
        pair_vectors(held_x.numpy(), None, k),
        use,
    )
    if result is None:
        return None
    for pair in result["closest"]:
        pair["store_slice"] = int(train_idx[pair.pop("training")])
    result["space"] = "images (pixels)"
    return result


def _consistency(
    unet: nn.Module,
    store: SliceStore,
    fold: int,
    images: torch.Tensor,
    masks: np.ndarray,
    device: str,
) -> dict:
    """The reference U-Net's consistency on the synthetic pairs and on the fold's real
    VALIDATION slices (``real_val``, the ceiling; None when the fold has no validation
    patients). Test patients never feed a quality number. The reference U-Net was selected on
    these validation patients, so the ceiling is, if anything, slightly optimistic."""
    split = store.split(fold)
    syn = consistency_class_dice(unet, images, masks, store.num_classes, device=device)
    ceiling = None
    if split.val:
        val_x, val_y = store.arrays(split.val)
        if len(val_x):
            ceiling = consistency_class_dice(unet, val_x, val_y, store.num_classes, device=device)
    return {
        "synthetic": summarise_consistency(syn, store.label_names),
        "real_val": None if ceiling is None else summarise_consistency(ceiling, store.label_names),
    }


def consistency_ceiling(consistency: dict | None) -> dict | None:
    """The ceiling block of a ``consistency`` result: ``real_val`` or, in a ``quality.json``
    written before the ceiling moved to validation slices, ``real_test``; None when absent."""
    if not consistency:
        return None
    return consistency.get("real_val") or consistency.get("real_test")


def quality_rows(result: dict) -> list[dict]:
    """One flat row per feature space of an :func:`evaluate_quality` result, synthetic and (when
    scored) held-out real: {set, space, fid, kid_mean, kid_std, precision, recall, n}."""
    rows = []
    baseline = result.get("real_baseline") or {}
    for label, block in (("synthetic", result), ("held-out real", baseline)):
        spaces = {**(block.get("modalities") or {}), "joint": block.get("joint")}
        for space, m in spaces.items():
            if m is None:
                continue
            rows.append(
                {
                    "set": label,
                    "space": space,
                    **{k: m[k] for k in ("fid", "kid_mean", "kid_std", "precision", "recall")},
                    "n": m["n_synthetic"],
                }
            )
    return rows


def format_quality(result: dict) -> str:
    """A plain-text summary of an :func:`evaluate_quality` result."""
    lines = [
        f"quality of {result['n_synthetic']} synthetic slices against {result['reference']}, "
        f"compared at N = {result.get('n_compared', result['n_synthetic'])} "
        f"({result['extractor']} features"
        + ("" if result["comparable_to_published"] else "; not comparable to published FID")
        + ")",
        f"{'set':14s} {'space':10s} {'FID':>9s} {'KID':>9s} {'±':>7s} {'prec':>5s} {'rec':>5s} {'N':>5s}",
    ]
    for r in quality_rows(result):
        lines.append(
            f"{r['set']:14s} {r['space']:10s} {r['fid']:9.3f} {r['kid_mean']:9.4f} "
            f"{r['kid_std']:7.4f} {r['precision']:5.2f} {r['recall']:5.2f} {r['n']:5d}"
        )
    c = result.get("consistency")
    if c:
        ceiling = consistency_ceiling(c)
        where = "validation" if c.get("real_val") else "test"
        lines.append(
            f"mask–image consistency (real-only U-Net): synthetic {c['synthetic']['mean']:.3f}"
            + (f", real {where} slices {ceiling['mean']:.3f} (ceiling)" if ceiling else "")
        )
    memo = result.get("memorisation")
    if memo:
        lines.append(
            f"memorisation: {memo['too_close']:.1%} of synthetic slices lie closer to a training "
            f"slice than 95% of real validation slices do (expected for new data "
            f"{memo['expected']:.0%}); median distance {memo['median_ratio']:.2f}× the "
            "validation slices'"
        )
    labels = result.get("labels")
    if labels:
        freq, summary = labels["class_frequency"], labels["summary"]
        lines.append(
            f"label statistics: class-frequency total variation {freq['total_variation']:.3f}, "
            f"components per slice {summary['components_per_slice_synthetic']:.2f} synthetic / "
            f"{summary['components_per_slice_real']:.2f} real, component log-size distance "
            f"{summary['mean_log_size_distance']:.3f}"
        )
    return "\n".join(lines)
