"""Quality of a generator run over training: in-domain FID, KID, precision/recall and
diversity at every snapshot, the best snapshot, and whether the run collapsed.

Family-neutral: it sees snapshots and a loader that turns one into a
``synthaug.generator.Sampler``. Written to the given file (the stages use ``RUN/quality.json``;
atomically; snapshots already scored with the same settings are reused, so scoring after more
training only scores the new snapshots)::

    {"settings": {...}, "baseline": {...}, "snapshots": [{"nimg", "snapshot", "image": {...},
     "mask": {...}, "memorisation": {...}, "failure", "collapsed": bool}, ...],
     "best": {"snapshot", "nimg", ...}, "usable": bool, "warnings": [...]}

The reference is the fold's real VALIDATION slices — patients the generator never saw — so a
snapshot is ranked by how close it comes to new patients, not to the slices it was trained to
match (a generator that copies its training set is not rewarded). The baseline row scores the
generator's own real training slices against the same reference at the same sample count
(FID is biased by N): what reproducing the training data perfectly would score. Painters
paint validation masks. Memorisation (``quality.memorisation``) compares each sample's
distance to its nearest training slice with that of validation slices; a snapshot that copies
is flagged like a collapsed one. Test patients are never touched, so choosing the best
snapshot here does not leak into test Dice.

Image features come from the joint in-domain encoder (``features.DomainExtractor``); masks are
compared by their layout (:class:`MaskLayoutExtractor`). A generator of images and masks is
scored in both spaces, a mask generator in the mask space, a painter in the image space.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synthaug.atomic import write_json
from synthaug.data.store import SliceStore
from synthaug.diversity import (
    PIXEL_COLLAPSE_DIVERSITY,
    mean_pairwise_distance,
    pixel_diversity,
)
from synthaug.errors import SynthaugError
from synthaug.generator import Outputs, Sampler, Snapshot
from synthaug.progress import track
from synthaug.quality.features import DomainEncoderConfig, load_or_train_domain_encoder
from synthaug.quality.memorisation import copying, labelled, memorisation, pair_vectors
from synthaug.quality.metrics import fid, kid, precision_recall

# A snapshot is called collapsed when its samples spread less than this fraction of what
# held-out real slices spread in the same feature space or in pixel space
# (``synthaug.diversity``), or off the data when they cover almost none of the reals.
MAX_MEMORISATION = 10000  # training slices searched for each sample's nearest neighbour
COLLAPSE_DIVERSITY = 0.25
COLLAPSE_RECALL = 0.05
K_NEIGHBOURS = 3
POOL_LEVELS = (1, 2, 4, 8)


class MaskLayoutExtractor:
    """Label masks [N, R, R] → layout features [N, (K-1)·Σ s²]: the fraction of each cell of
    an s×s grid (s = 1, 2, 4, 8) covered by each foreground class.

    Deterministic and training-free: two masks are close when the same classes sit in the same
    places with similar areas, which is what a segmentation U-Net learns from.
    """

    name = "mask-layout"

    def __init__(self, num_classes: int, levels: tuple[int, ...] = POOL_LEVELS) -> None:
        self.num_classes = num_classes
        self.levels = levels
        self.dim = (num_classes - 1) * sum(s * s for s in levels)

    @torch.no_grad()
    def __call__(self, labels: np.ndarray | torch.Tensor) -> np.ndarray:
        y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        onehot = F.one_hot(y, self.num_classes).permute(0, 3, 1, 2)[:, 1:].float()
        parts = [F.adaptive_avg_pool2d(onehot, s).flatten(1) for s in self.levels]
        return torch.cat(parts, dim=1).double().numpy()

    def describe(self) -> dict:
        return {"extractor": self.name, "dim": self.dim, "levels": list(self.levels)}


def compare(reference: np.ndarray, candidate: np.ndarray, held_out_spread: float) -> dict:
    """FID, KID, precision/recall and diversity of ``candidate`` features against ``reference``."""
    kid_mean, kid_std = kid(reference, candidate, 50, min(1000, len(candidate), len(reference)))
    precision, recall = precision_recall(reference, candidate, K_NEIGHBOURS)
    spread = mean_pairwise_distance(candidate)
    return {
        "fid": fid(reference, candidate),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "diversity": spread / held_out_spread if held_out_spread > 0 else float("nan"),
        "n": len(candidate),
    }


def failure(metrics: dict | None, baseline: dict) -> str | None:
    """Why a snapshot's samples are unusable in one feature space, or None.

    "collapsed": they spread less than ``COLLAPSE_DIVERSITY`` of the real validation slices
    (mode collapse). "off the data": they spread normally but cover almost none of the reals
    (recall below ``COLLAPSE_RECALL`` of the real baseline's recall) — an under-trained or
    diverged generator whose samples are all unlike real slices.
    """
    if metrics is None:
        return None
    if metrics["diversity"] < COLLAPSE_DIVERSITY:
        return "collapsed"
    if metrics["recall"] < COLLAPSE_RECALL * baseline["recall"]:
        return "off the data"
    return None


def snapshot_failure(row: dict) -> str | None:
    """A scored snapshot's failure ("collapsed", "copying", "off the data") or None.
    ``row["collapsed"]`` (kept for older quality.json files) is True for either."""
    if not row.get("collapsed"):
        return None
    return row.get("failure", "collapsed")


class SnapshotReference:
    """Features of the fold's validation slices (the reference) and of the real baseline in
    the spaces a generator is scored in, and the training slices memorisation is measured
    against."""

    def __init__(
        self,
        outputs: Outputs,
        store: SliceStore,
        fold: int,
        samples: int | None,
        cache_dir: Path,
        encoder_config: DomainEncoderConfig | None,
        seed: int,
    ) -> None:
        split = store.split(fold)
        if not split.val:
            raise SynthaugError(
                f"{store.path}: fold {fold} has no validation patients to compare with; "
                "prepare the store with --val-fraction above 0"
            )
        val_x, val_y = store.arrays(split.val)
        train_x, train_y = store.training_arrays(split.train)
        self.samples = samples or len(val_x)
        if self.samples <= K_NEIGHBOURS or len(val_x) <= K_NEIGHBOURS:
            raise SynthaugError(
                f"snapshot quality: needs more than {K_NEIGHBOURS} samples and validation "
                f"slices, got {self.samples} samples and {len(val_x)} validation slices"
            )
        rng = np.random.default_rng(seed)
        base = np.sort(rng.choice(len(train_x), min(self.samples, len(train_x)), replace=False))
        # A painter paints validation masks, spread over the validation set.
        idx = np.round(np.linspace(0, len(val_y) - 1, self.samples)).astype(np.int64)
        self.condition_masks = val_y[idx].astype(np.int64)
        # Pixel-space collapse is judged against as many distinct validation slices as samples
        # (more samples than slices would repeat masks, and a painter painting one mask twice
        # is not a collapse).
        self.pixel_rows = np.unique(idx, return_index=True)[1]
        self.pixel_reference = (
            val_x[idx][self.pixel_rows] if outputs.images else None,
            val_y[idx][self.pixel_rows] if outputs.masks else None,
        )
        self.validation_patients = split.val
        self.outputs, self.num_classes = outputs, store.num_classes
        self._features(outputs, store, fold, cache_dir, encoder_config, (val_x, val_y), (
            train_x[base], train_y[base]))  # fmt: skip
        self._memorisation_reference(train_x, train_y, val_x, val_y, rng)
        # The in-domain encoder is a segmenter trained on the real training slices: it judges
        # whether a painter's images follow the masks they were given.
        self.segmenter = None
        if outputs.paints_masks:
            self.segmenter = self.spaces["image"][0]
            self.baseline["consistency"] = self.consistency(val_x, val_y.astype(np.int64))

    def _features(self, outputs, store, fold, cache_dir, encoder_config, val, base) -> None:
        self.spaces: dict[str, tuple[object, np.ndarray]] = {}
        base_features = {}
        if outputs.images:
            encoder = load_or_train_domain_encoder(store, fold, cache_dir, None, encoder_config)
            self.spaces["image"] = (encoder, encoder(val[0]))
            base_features["image"] = encoder(base[0])
        if outputs.masks:
            layout = MaskLayoutExtractor(store.num_classes)
            self.spaces["mask"] = (layout, layout(val[1]))
            base_features["mask"] = layout(base[1])
        self.spreads = {s: mean_pairwise_distance(ref) for s, (_, ref) in self.spaces.items()}
        self.baseline = {
            s: compare(self.spaces[s][1], base_features[s], self.spreads[s]) for s in self.spaces
        }

    def _memorisation_reference(self, train_x, train_y, val_x, val_y, rng) -> None:
        """Pixel vectors of training and validation slices: images when the generator makes
        them (a painter's masks are given, not generated), else masks."""
        if len(train_x) > MAX_MEMORISATION:
            keep = np.sort(rng.choice(len(train_x), MAX_MEMORISATION, replace=False))
            train_x, train_y = train_x[keep], train_y[keep]
        self.memorisation_training = self._vectors(train_x, train_y)
        self.memorisation_validation = self._vectors(val_x, val_y)
        self.memorisation_use = (labelled(train_y), labelled(val_y))

    def _vectors(self, images: np.ndarray | None, masks: np.ndarray | None) -> np.ndarray:
        if self.outputs.images:
            return pair_vectors(images, None, self.num_classes)
        return pair_vectors(None, masks, self.num_classes)

    def consistency(self, images: np.ndarray, masks: np.ndarray) -> float:
        """Mean per-slice Dice of the in-domain segmenter's prediction against ``masks``."""
        from synthaug.quality.consistency import consistency

        return consistency(self.segmenter.network, images, masks, self.num_classes, batch=128)

    def describe(self) -> dict:
        return {space: ex.describe() for space, (ex, _) in self.spaces.items()}

    def judge(self, row: dict) -> dict:
        """``{"failure": "collapsed" | "copying" | "off the data" | None, "collapsed": unusable}``
        of a row of metrics per space (collapse wins, then copying)."""
        reasons = [f for f in (failure(row.get(s), self.baseline[s]) for s in self.spaces) if f]
        if row.get("pixel_diversity", np.inf) < PIXEL_COLLAPSE_DIVERSITY:
            reasons.append("collapsed")
        if copying(row.get("memorisation")):
            reasons.append("copying")
        worst = next((r for r in ("collapsed", "copying", "off the data") if r in reasons), None)
        # "collapsed" means "unusable" here: the key predates the reasons
        return {"failure": worst, "collapsed": worst is not None}

    def score(self, images: np.ndarray | None, masks: np.ndarray | None) -> dict:
        """Metrics of generated slices (images [N, C, R, R], masks [N, R, R]) in every space
        of the generator, their memorisation, and whether they are usable (``judge``)."""
        row: dict = {}
        for space, (extractor, real) in self.spaces.items():
            fake = extractor(images if space == "image" else masks)
            row[space] = compare(real, fake, self.spreads[space])
        memo = memorisation(
            self._vectors(images, masks),
            self.memorisation_training,
            self.memorisation_validation,
            (labelled(masks), *self.memorisation_use),
        )
        if memo is not None:
            row["memorisation"] = {k: v for k, v in memo.items() if k != "closest"}
        rows = self.pixel_rows
        row["pixel_diversity"] = pixel_diversity(
            images[rows] if self.outputs.images else None,
            masks[rows] if self.outputs.masks else None,
            *self.pixel_reference,
            self.num_classes,
        )
        if self.segmenter is not None and images is not None and masks is not None:
            row["consistency"] = self.consistency(images, masks)
        row.update(self.judge(row))
        return row


def _score_one(snapshot: Snapshot, sampler: Sampler, ref: SnapshotReference, seed: int) -> dict:
    painter = sampler.outputs.paints_masks
    images, masks = sampler.sample(
        ref.samples, seed, masks=ref.condition_masks if painter else None
    )
    if painter and masks is None:  # a painter may return the masks it painted (e.g. deformed)
        masks = ref.condition_masks
    return {"snapshot": snapshot.name, "nimg": snapshot.nimg, **ref.score(images, masks)}


def primary_space(outputs: Outputs) -> str:
    """The feature space a generator's samples are judged in."""
    return "image" if outputs.images else "mask"


def ranking(outputs: Outputs) -> tuple[str, Callable[[dict], float]]:
    """How a generator's snapshots are ranked: (description, key to minimise).

    In-domain FID, except for painters: mask–image consistency (higher is better) — their
    images are painted onto given masks, and an early snapshot can have the lower FID while
    ignoring the masks, which is what makes its pairs useless for segmentation.
    """
    if outputs.paints_masks:
        return (
            "mask–image consistency (in-domain segmenter)",
            lambda r: -np.nan_to_num(r["consistency"], nan=-1.0),
        )
    space = primary_space(outputs)
    return f"{space} FID", lambda r: r[space]["fid"]


def _verdict(rows: list[dict], outputs: Outputs, spaces: list[str]) -> dict:
    """The ranking space and rule, the rows, the best usable snapshot (else the best
    unusable one), whether the best and the final snapshots are usable, and a warning per
    unusable snapshot."""
    space = primary_space(outputs)
    ranked_by, key = ranking(outputs)
    healthy = [r for r in rows if not r["collapsed"]]
    best = min(healthy or rows, key=key)
    warnings = [
        f"{r['snapshot']} ({r['nimg'] / 1000:.2f} kimg): {snapshot_failure(r)} — "
        + ", ".join(
            f"{s} diversity {r[s]['diversity']:.2f} recall {r[s]['recall']:.2f}" for s in spaces
        )
        + (f", pixel diversity {r['pixel_diversity']:.2f}" if "pixel_diversity" in r else "")
        for r in rows
        if r["collapsed"]
    ]
    return {
        "space": space,
        "ranked_by": ranked_by,
        "snapshots": rows,
        "best": {
            "snapshot": best["snapshot"],
            "nimg": best["nimg"],
            space: best[space],
            **({"consistency": best["consistency"]} if "consistency" in best else {}),
            **({"memorisation": best["memorisation"]} if "memorisation" in best else {}),
        },
        "usable": not best["collapsed"],
        "final_snapshot_usable": not rows[-1]["collapsed"],
        "warnings": warnings,
    }


def score_snapshots(
    store: SliceStore,
    fold: int,
    variant: str,
    outputs: Outputs,
    snapshots: Sequence[Snapshot],
    load: Callable[[Snapshot], Sampler],
    out: Path | str,
    samples: int | None = None,
    cache_dir: Path | str | None = None,
    encoder_config: DomainEncoderConfig | None = None,
    seed: int = 0,
) -> dict:
    """Score every snapshot of a run of fold ``fold`` (reusing earlier scores in ``out``) and
    write the result to ``out``.

    ``load`` turns a snapshot into a sampler (called only for snapshots not scored yet).
    samples: generated slices per snapshot (default: as many as the fold's validation slices,
    so generated and held-out real sets are compared at equal N). cache_dir: where the
    in-domain encoder is cached (default: the store's cache folder).
    """
    out = Path(out)
    if not snapshots:
        raise SynthaugError(f"{out.parent}: has no snapshots to score; train it first")
    cache = Path(cache_dir) if cache_dir else store.cache_dir
    settings = {
        "samples": samples,
        "seed": seed,
        "encoder": None if encoder_config is None else repr(encoder_config),
        "max_memorisation": MAX_MEMORISATION,
        "k": K_NEIGHBOURS,
        "version": 5,  # 4: validation reference, memorisation; 5: pixel diversity
    }
    previous = read_snapshot_scores(out)
    reuse = {}
    if previous and previous.get("settings") == settings:
        reuse = {r["snapshot"]: r for r in previous.get("snapshots", [])}
    ref = SnapshotReference(outputs, store, fold, samples, cache, encoder_config, seed)
    rows = []
    for snap in track(snapshots, f"quality {variant} snapshots"):
        rows.append(reuse.get(snap.name) or _score_one(snap, load(snap), ref, seed))
        rows[-1].update(ref.judge(rows[-1]))  # reused rows too: judged by today's thresholds
    split = store.split(fold)
    result = {
        "run": str(out.parent),
        "variant": variant,
        "fold": fold,
        "settings": settings,
        "reference": f"real validation slices of fold {fold} ({len(split.val)} patients)",
        "baseline": {
            "what": f"the real training slices of fold {fold} ({len(split.train)} patients), "
            f"{ref.samples} of them, against the same reference",
            **ref.baseline,
        },
        "features": ref.describe(),
        **_verdict(rows, outputs, list(ref.spaces)),
    }
    write_json(out, result)
    return result


def unusable_reason(result: dict) -> str:
    """Why no snapshot of a scored run is usable, in words (for tables and summaries)."""
    reasons = {snapshot_failure(r) for r in result["snapshots"]} - {None}
    if reasons == {"collapsed"}:
        return "every snapshot collapsed"
    if reasons == {"off the data"}:
        return "no snapshot's samples are near the real data (recall ≈ 0)"
    if reasons == {"copying"}:
        return "every snapshot copies its training slices"
    return "every snapshot " + " or ".join(sorted(reasons))


def read_snapshot_scores(path: Path) -> dict | None:
    """A scores file written by :func:`score_snapshots`, or None (missing or torn)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def format_snapshot_quality(result: dict) -> str:
    """A plain-text table of a :func:`score_snapshots` result."""
    spaces = [s for s in ("image", "mask") if s in result["baseline"]]
    header = f"{'snapshot':>10s} " + " ".join(
        f"{s + ' FID':>10s} {'prec':>5s} {'rec':>5s} {'div':>5s}" for s in spaces
    )
    lines = [
        f"{result['variant']} run, fold {result['fold']}: against {result['reference']}",
        header,
    ]

    def cells(row: dict) -> str:
        return " ".join(
            f"{row[s]['fid']:10.2f} {row[s]['precision']:5.2f} {row[s]['recall']:5.2f} "
            f"{row[s]['diversity']:5.2f}"
            for s in spaces
        )

    for row in result["snapshots"]:
        flag = f"  {snapshot_failure(row)}" if row["collapsed"] else ""
        mark = " *" if row["snapshot"] == result["best"]["snapshot"] else ""
        cons = f" consistency {row['consistency']:.2f}" if "consistency" in row else ""
        cons += f" pixel div {row['pixel_diversity']:.2f}" if "pixel_diversity" in row else ""
        memo = row.get("memorisation")
        close = f" too close {memo['too_close']:.2f}" if memo else ""
        lines.append(f"{row['nimg'] / 1000:8.2f}k  {cells(row)}{cons}{close}{mark}{flag}")
    base = result["baseline"]
    cons = f" consistency {base['consistency']:.2f}" if "consistency" in base else ""
    lines.append(f"{'real':>10s} {cells(base)}{cons}  ({base['what']}; too close 0.05)")
    best = result["best"]
    lines.append(
        f"best (*): {best['snapshot']} by {result['ranked_by']}; "
        + ("usable" if result["usable"] else f"NOT usable: {unusable_reason(result)}")
    )
    return "\n".join(lines)
