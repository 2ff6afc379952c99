"""How spread out a set of slices is, in pixel / mask space: the collapse signal a person sees.

A mode-collapsed generator draws nearly the same slice every time. Learned feature spaces
can understate that (an encoder that maps every brain-like slice to a similar vector spreads
real slices little too), so collapse is also measured on the slices themselves: images
area-pooled to ``SIDE`` x ``SIDE``, masks as pooled one-hot class fractions mapped to
[-1, 1], concatenated. Two spreads of a generated set are compared with those of as many
real slices: the mean pairwise distance (near 0 when every sample is the same slice) and
the median nearest-neighbour distance (near 0 when the samples are a few slices repeated
with small noise, however different those few are). The smaller ratio is the set's *pixel
diversity*: about 1 or above for a generator as varied as the data, low for one that repeats
itself. On the tissue phantom (256 samples), one real slice repeated with noise scores 0.02,
three slices repeated 0.23; the joint generator's collapsed 7.6-kimg snapshot 0.25, a LeCam
run that drew one tilted slice in many brightnesses 0.37, a mask generator drawing one blob
0.47, while varied snapshots scored 0.56-1.4 (docs/time_to_quality.md).

Used while training (``gan.train`` stops on sustained collapse) and when scoring snapshots
(``quality.snapshots``), so both call the same thing collapse.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIDE = 16
# Below this fraction of the real slices' spread a set is called collapsed.
PIXEL_COLLAPSE_DIVERSITY = 0.5


def pixel_vectors(
    images: np.ndarray | torch.Tensor | None,
    masks: np.ndarray | torch.Tensor | None,
    num_classes: int,
) -> np.ndarray:
    """Slices -> ``[N, d]`` vectors: images ``[N, C, R, R]`` and/or masks ``long [N, R, R]``,
    pooled to ``SIDE`` x ``SIDE`` (masks as one-hot fractions in [-1, 1], background
    dropped), each part scaled to unit mean square so images and masks weigh alike."""
    parts = []
    if images is not None:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        parts.append(F.adaptive_avg_pool2d(x, SIDE).flatten(1))
    if masks is not None and num_classes > 1:
        y = torch.as_tensor(np.asarray(masks, dtype=np.int64))
        onehot = F.one_hot(y, num_classes).permute(0, 3, 1, 2)[:, 1:].float()
        parts.append((F.adaptive_avg_pool2d(onehot, SIDE) * 2 - 1).flatten(1))
    if not parts:
        raise ValueError("pixel_vectors needs images or masks")
    return torch.cat([p / p.shape[1] ** 0.5 for p in parts], dim=1).double().numpy()


def _squared_distances(features: np.ndarray, max_rows: int, seed: int) -> np.ndarray | None:
    """Squared Euclidean distances between the rows of ``features`` [N, d] (a subsample of at
    most ``max_rows`` rows), ``[n, n]``; None for fewer than two rows."""
    x = np.asarray(features, dtype=np.float64)
    if len(x) > max_rows:
        x = x[np.random.default_rng(seed).choice(len(x), max_rows, replace=False)]
    if len(x) < 2:
        return None
    sq = np.einsum("ij,ij->i", x, x)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)


def mean_pairwise_distance(features: np.ndarray, max_rows: int = 1000, seed: int = 0) -> float:
    """Mean Euclidean distance between distinct rows of ``features`` [N, d] (a subsample of at
    most ``max_rows`` rows): how spread out a set is. A collapsed generator scores near 0."""
    d2 = _squared_distances(features, max_rows, seed)
    if d2 is None:
        return 0.0
    n = len(d2)
    return float(np.sqrt(d2).sum() / (n * (n - 1)))


def nearest_neighbour_spread(features: np.ndarray, max_rows: int = 1000, seed: int = 0) -> float:
    """Median distance from each row of ``features`` [N, d] to its nearest other row: near 0
    when the set is a few modes repeated with small noise, however far apart the modes are
    (which the mean pairwise distance does not see)."""
    d2 = _squared_distances(features, max_rows, seed)
    if d2 is None:
        return 0.0
    np.fill_diagonal(d2, np.inf)
    return float(np.median(np.sqrt(d2.min(axis=1))))


def relative_spread(candidate: np.ndarray, reference: np.ndarray) -> float:
    """``mean_pairwise_distance(candidate) / mean_pairwise_distance(reference)`` (NaN when
    the reference does not spread at all)."""
    spread = mean_pairwise_distance(reference)
    return mean_pairwise_distance(candidate) / spread if spread > 0 else float("nan")


def pixel_diversity(
    images: np.ndarray | torch.Tensor | None,
    masks: np.ndarray | torch.Tensor | None,
    real_images: np.ndarray | torch.Tensor | None,
    real_masks: np.ndarray | torch.Tensor | None,
    num_classes: int,
) -> float:
    """Spread of generated slices relative to real ones in pixel / mask space: the smaller
    of the mean-pairwise and the nearest-neighbour ratios (see the module docstring). Pass
    as many real slices as generated ones: nearest-neighbour distances shrink with N."""
    fake = pixel_vectors(images, masks, num_classes)
    real = pixel_vectors(real_images, real_masks, num_classes)
    ratios = [relative_spread(fake, real)]
    reference_nn = nearest_neighbour_spread(real)
    if reference_nn > 0:
        ratios.append(nearest_neighbour_spread(fake) / reference_nn)
    return float(min(ratios))


def collapsed(diversity: float) -> bool:
    """Whether a pixel diversity says the generator repeats itself."""
    return bool(diversity < PIXEL_COLLAPSE_DIVERSITY)
