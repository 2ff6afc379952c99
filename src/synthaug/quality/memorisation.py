"""Memorisation: how close synthetic slices come to the generator's own training slices,
against how close real held-out slices come to them.

Each slice becomes a pixel vector (its modality images — and, for generators that make masks,
its mask as ±1 one-hot channels — area-downsampled to at most 64×64, RMS-normalised). For
every synthetic slice the distance to its nearest training slice is compared with the same
distance of the fold's real validation slices: a slice is *too close* when it lies nearer to a
training slice than the 5th percentile of the validation distances. An honest generator has
about 5 % of its slices too close (as real unseen slices do); a copying one has most of them.
Pixel space, not an encoder's: copies are near-identical pixel for pixel, and a learnt
encoder's invariances could hide them. Only slices with labelled foreground take part: empty
background slices are all alike, and "copying" one says nothing. Caveat: samples that sit in
the dense middle of the data (blurred, averaged-looking ones) also come out closer than real
slices; the report shows the closest pairs so a person can tell.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

REFERENCE_PERCENTILE = 5.0
COPYING_FRACTION = 0.3  # ≥ 6× the rate of real unseen slices...
COPYING_MEDIAN_RATIO = 0.5  # ...and typically twice as close as a real slice: "copying"
MAX_SIDE = 64
CLOSEST_PAIRS = 8
MIN_SLICES = 5


def labelled(masks: np.ndarray) -> np.ndarray:
    """[N] bool: slices whose mask [N, R, R] holds any foreground."""
    masks = np.asarray(masks)
    return (masks.reshape(len(masks), -1) > 0).any(axis=1)


def pair_vectors(
    images: np.ndarray | None, masks: np.ndarray | None, num_classes: int
) -> np.ndarray:
    """[N, D] float32 vectors of slices: images [N, C, R, R] and/or masks [N, R, R]."""
    parts = []
    if images is not None:
        parts.append(torch.as_tensor(np.asarray(images, dtype=np.float32)))
    if masks is not None:
        y = torch.as_tensor(np.asarray(masks, dtype=np.int64))
        parts.append(F.one_hot(y, num_classes).permute(0, 3, 1, 2).float() * 2 - 1)
    x = torch.cat(parts, dim=1)
    if x.shape[-1] > MAX_SIDE:
        x = F.adaptive_avg_pool2d(x, MAX_SIDE)
    flat = x.flatten(1)
    return (flat / flat.shape[1] ** 0.5).numpy()


def nearest(
    query: np.ndarray, reference: np.ndarray, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each query row to its nearest reference row, and that row's index."""
    ref = torch.as_tensor(reference, dtype=torch.float64)
    ref_sq = (ref * ref).sum(1)
    dist, index = [], []
    for start in range(0, len(query), chunk):
        q = torch.as_tensor(query[start : start + chunk], dtype=torch.float64)
        d2 = (q * q).sum(1, keepdim=True) + ref_sq[None] - 2.0 * q @ ref.T
        best = d2.clamp_min(0).min(dim=1)
        dist.append(best.values.sqrt().numpy())
        index.append(best.indices.numpy())
    return np.concatenate(dist), np.concatenate(index)


def memorisation(
    synthetic: np.ndarray,
    training: np.ndarray,
    held_out: np.ndarray,
    use: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict | None:
    """Nearest-training-slice distances of synthetic and held-out real vectors (``pair_vectors``),
    over the rows ``use`` selects in each (e.g. ``labelled`` slices); None with fewer than
    ``MIN_SLICES`` in any of them.

    Returns ``too_close`` (fraction of synthetic slices nearer to a training slice than the
    held-out slices' 5th percentile), ``expected`` (0.05: the same fraction for real unseen
    slices), ``median_ratio`` (median synthetic distance / median held-out distance: near 0
    for copies, about 1 for an honest generator), quantiles of both distributions, the number
    of slices and the ``closest`` synthetic–training pairs (indices into the inputs).
    """
    picks = [np.flatnonzero(u) for u in use] if use else [np.arange(len(a)) for a in (
        synthetic, training, held_out)]  # fmt: skip
    if min(len(p) for p in picks) < MIN_SLICES:
        return None
    s_idx, t_idx, h_idx = picks
    synthetic, training, held_out = synthetic[s_idx], training[t_idx], held_out[h_idx]
    d_held, _ = nearest(held_out, training)
    d_syn, idx = nearest(synthetic, training)
    threshold = float(np.percentile(d_held, REFERENCE_PERCENTILE))
    quantiles = (5, 25, 50, 75)
    order = np.argsort(d_syn)[:CLOSEST_PAIRS]
    median_held = float(np.median(d_held))
    return {
        "too_close": float(np.mean(d_syn < threshold)),
        "expected": REFERENCE_PERCENTILE / 100.0,
        "threshold": threshold,
        "median_ratio": float(np.median(d_syn) / median_held) if median_held > 0 else float("nan"),
        "synthetic_quantiles": {str(q): float(np.percentile(d_syn, q)) for q in quantiles},
        "held_out_quantiles": {str(q): float(np.percentile(d_held, q)) for q in quantiles},
        "n_synthetic": int(len(d_syn)),
        "n_held_out": int(len(d_held)),
        "n_training": int(len(training)),
        "slices": "with labelled foreground" if use else "all",
        "closest": [
            {
                "synthetic": int(s_idx[i]),
                "training": int(t_idx[idx[i]]),
                "distance": float(d_syn[i]),
            }
            for i in order
        ],
    }


def copying(result: dict | None) -> bool:
    """Whether a memorisation result shows copying: ``COPYING_FRACTION`` of the samples too
    close *and* the typical sample at most ``COPYING_MEDIAN_RATIO`` of a real slice's distance
    from the training set — faint, near-empty samples crowd the threshold too (they lie close
    to the many dark training slices) without being copies, and only the second test tells."""
    return (
        bool(result)
        and result["too_close"] >= COPYING_FRACTION
        and result["median_ratio"] <= COPYING_MEDIAN_RATIO
    )
