"""Quality of a generator run over training: in-domain FID, KID, precision/recall and
diversity at every snapshot, the best snapshot, and whether the run collapsed.

Family-neutral: it sees snapshots and a loader that turns one into a
``synthaug.generator.Sampler``. Written to the given file (the stages use ``RUN/quality.json``;
atomically; snapshots already scored with the same settings are reused, so scoring after more
training only scores the new snapshots)::

    {"settings": {...}, "held_out": {...}, "snapshots": [{"nimg", "snapshot", "image": {...},
     "mask": {...}, "collapsed": bool}, ...], "best": {"snapshot", "nimg", ...}, "usable": bool,
     "warnings": [...]}

The reference is the fold's REAL training slices (what the generator was allowed to see);
the held-out row scores the fold's real VALIDATION slices against the same reference, at the
same sample count — the value a perfect generator would reach (FID is biased by N). Test
patients are never touched, so choosing the best snapshot here does not leak into test Dice.

Image features come from the joint in-domain encoder (``features.DomainExtractor``); masks are
compared by their layout (:class:`MaskLayoutExtractor`). A generator of images and masks is
scored in both spaces, a mask generator in the mask space, a painter in the image space with
the fold's real training masks as its input.
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
from synthaug.errors import SynthaugError
from synthaug.generator import Outputs, Sampler, Snapshot
from synthaug.progress import track
from synthaug.quality.features import DomainEncoderConfig, load_or_train_domain_encoder
from synthaug.quality.metrics import fid, kid, precision_recall

# A snapshot is called collapsed when its samples spread less than this fraction of what
# held-out real slices spread in the same feature space, or cover almost none of the reals.
COLLAPSE_DIVERSITY = 0.25
COLLAPSE_RECALL = 0.05
K_NEIGHBOURS = 3
MAX_REAL = 2000
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


def mean_pairwise_distance(features: np.ndarray, max_rows: int = 1000, seed: int = 0) -> float:
    """Mean Euclidean distance between distinct rows of ``features`` [N, d] (a subsample of at
    most ``max_rows`` rows): how spread out a set is. A collapsed generator scores near 0."""
    x = np.asarray(features, dtype=np.float64)
    if len(x) > max_rows:
        x = x[np.random.default_rng(seed).choice(len(x), max_rows, replace=False)]
    if len(x) < 2:
        return 0.0
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    n = len(x)
    return float(np.sqrt(d2).sum() / (n * (n - 1)))


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


def failure(metrics: dict | None, held_out: dict) -> str | None:
    """Why a snapshot's samples are unusable in one feature space, or None.

    "collapsed": they spread less than ``COLLAPSE_DIVERSITY`` of the held-out reals (mode
    collapse). "off the data": they spread normally but cover almost none of the reals
    (recall below ``COLLAPSE_RECALL`` of the held-out recall) — an under-trained or diverged
    generator whose samples are all unlike real slices.
    """
    if metrics is None:
        return None
    if metrics["diversity"] < COLLAPSE_DIVERSITY:
        return "collapsed"
    if metrics["recall"] < COLLAPSE_RECALL * held_out["recall"]:
        return "off the data"
    return None


def snapshot_failure(row: dict) -> str | None:
    """A scored snapshot's failure ("collapsed", "off the data") or None when usable.
    ``row["collapsed"]`` (kept for older quality.json files) is True for either."""
    if not row.get("collapsed"):
        return None
    return row.get("failure", "collapsed")


class SnapshotReference:
    """Real training and held-out features in the spaces a variant is scored in."""

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
        train_x, train_y = store.arrays(split.train)
        held_patients = split.val
        if not held_patients:
            raise SynthaugError(
                f"{store.path}: fold {fold} has no validation patients to compare with; "
                "prepare the store with --val-fraction above 0"
            )
        held_x, held_y = store.arrays(held_patients)
        rng = np.random.default_rng(seed)
        if len(train_x) > MAX_REAL:
            keep = np.sort(rng.choice(len(train_x), MAX_REAL, replace=False))
            train_x, train_y = train_x[keep], train_y[keep]
        self.samples = samples or len(held_x)
        if self.samples <= K_NEIGHBOURS or len(held_x) <= K_NEIGHBOURS:
            raise SynthaugError(
                f"snapshot quality: needs more than {K_NEIGHBOURS} samples and held-out slices, "
                f"got {self.samples} samples and {len(held_x)} validation slices"
            )
        # A painter paints real training masks, spread over the training set.
        idx = np.round(np.linspace(0, len(train_y) - 1, self.samples)).astype(np.int64)
        self.condition_masks = train_y[idx].astype(np.int64)
        self.held_patients = held_patients
        self.spaces: dict[str, tuple[object, np.ndarray, np.ndarray]] = {}
        if outputs.images:
            encoder = load_or_train_domain_encoder(store, fold, cache_dir, None, encoder_config)
            self.spaces["image"] = (encoder, encoder(train_x), encoder(held_x))
        if outputs.masks:
            layout = MaskLayoutExtractor(store.num_classes)
            self.spaces["mask"] = (layout, layout(train_y), layout(held_y))
        self.held_out = {}
        self.spreads = {}
        for space, (_, ref, held) in self.spaces.items():
            self.spreads[space] = mean_pairwise_distance(held)
            self.held_out[space] = compare(ref, held, self.spreads[space])
        # The in-domain encoder is a segmenter trained on the real training slices: it judges
        # whether a painter's images follow the masks they were given.
        self.segmenter = None
        if outputs.paints_masks:
            self.segmenter = self.spaces["image"][0]
            self.num_classes = store.num_classes
            self.held_out["consistency"] = self.consistency(held_x, held_y.astype(np.int64))

    def consistency(self, images: np.ndarray, masks: np.ndarray) -> float:
        """Mean per-slice Dice of the in-domain segmenter's prediction against ``masks``."""
        from synthaug.quality.consistency import consistency

        return consistency(self.segmenter.network, images, masks, self.num_classes, batch=128)

    def describe(self) -> dict:
        return {space: ex.describe() for space, (ex, _, _) in self.spaces.items()}

    def judge(self, row: dict) -> dict:
        """``{"failure": "collapsed" | "off the data" | None, "collapsed": unusable}`` of a row
        of metrics per space (mode collapse wins when the spaces disagree)."""
        reasons = [f for f in (failure(row.get(s), self.held_out[s]) for s in self.spaces) if f]
        worst = "collapsed" if "collapsed" in reasons else (reasons[0] if reasons else None)
        # "collapsed" means "unusable" here: the key predates the reasons
        return {"failure": worst, "collapsed": worst is not None}

    def score(self, images: np.ndarray | None, masks: np.ndarray | None) -> dict:
        """Metrics of generated slices (images [N, C, R, R], masks [N, R, R]) in every space
        of the variant, and whether they are usable (``judge``)."""
        row: dict = {}
        for space, (extractor, real, _) in self.spaces.items():
            fake = extractor(images if space == "image" else masks)
            row[space] = compare(real, fake, self.spreads[space])
        row.update(self.judge(row))
        if self.segmenter is not None and images is not None and masks is not None:
            row["consistency"] = self.consistency(images, masks)
        return row


def _score_one(snapshot: Snapshot, sampler: Sampler, ref: SnapshotReference, seed: int) -> dict:
    painter = sampler.outputs.paints_masks
    images, masks = sampler.sample(
        ref.samples, seed, masks=ref.condition_masks if painter else None
    )
    masks = ref.condition_masks if painter else masks
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
        "max_real": MAX_REAL,
        "k": K_NEIGHBOURS,
        "version": 3,
    }
    previous = read_snapshot_scores(out)
    reuse = {}
    if previous and previous.get("settings") == settings:
        reuse = {r["snapshot"]: r for r in previous.get("snapshots", [])}
    ref = SnapshotReference(outputs, store, fold, samples, cache, encoder_config, seed)
    rows = []
    for snap in track(snapshots, f"quality {variant} snapshots"):
        rows.append(reuse.get(snap.name) or _score_one(snap, load(snap), ref, seed))
        if "failure" not in rows[-1]:  # scored before failures had reasons
            rows[-1].update(ref.judge(rows[-1]))
    split = store.split(fold)
    result = {
        "run": str(out.parent),
        "variant": variant,
        "fold": fold,
        "settings": settings,
        "reference": f"real training slices of fold {fold} ({len(split.train)} patients)",
        "held_out": {"patients": ref.held_patients, **ref.held_out},
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
    return "every snapshot collapsed or off the data"


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
    spaces = [s for s in ("image", "mask") if s in result["held_out"]]
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
        lines.append(f"{row['nimg'] / 1000:8.2f}k  {cells(row)}{cons}{mark}{flag}")
    held = result["held_out"]
    cons = f" consistency {held['consistency']:.2f}" if "consistency" in held else ""
    lines.append(f"{'held-out':>10s} {cells(held)}{cons}  (real validation patients)")
    best = result["best"]
    lines.append(
        f"best (*): {best['snapshot']} by {result['ranked_by']}; "
        + ("usable" if result["usable"] else f"NOT usable: {unusable_reason(result)}")
    )
    return "\n".join(lines)
