"""Distribution metrics on features (float64 numpy/scipy) and on label masks.

- :func:`fid` — Fréchet distance between Gaussians fitted to two feature sets (Heusel et al.
  2017). Biased for small N (it shrinks as N grows); compare FIDs only at equal sample counts.
- :func:`kid` — unbiased MMD² with the cubic polynomial kernel (Bińkowski et al. 2018), mean and
  standard deviation over random subsets; preferable to FID for small samples.
- :func:`precision_recall` — k-NN manifold precision and recall (Kynkäänniemi et al. 2019):
  precision = fraction of fakes inside the real manifold (fidelity), recall = fraction of reals
  inside the fake manifold (coverage).
- :func:`label_statistics` — class-frequency and connected-component statistics of masks.

Every metric checks its minimum sample count and raises :class:`SynthaugError` naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg, ndimage, stats

from synthaug.data.store import class_frequencies
from synthaug.errors import SynthaugError

MIN_FID = 2
MIN_KID = 2


def _check_features(real: np.ndarray, fake: np.ndarray, metric: str) -> tuple[np.ndarray, ...]:
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2:
        raise SynthaugError(
            f"{metric}: features must be [N, dim], got {list(real.shape)} and {list(fake.shape)}"
        )
    if real.shape[1] != fake.shape[1]:
        raise SynthaugError(
            f"{metric}: real features have dim {real.shape[1]}, synthetic {fake.shape[1]}"
        )
    if not (np.isfinite(real).all() and np.isfinite(fake).all()):
        raise SynthaugError(f"{metric}: features contain NaN or Inf")
    return real, fake


def _check_count(metric: str, need: int, real: int, fake: int, why: str = "") -> None:
    if real < need or fake < need:
        raise SynthaugError(
            f"{metric}: needs at least {need} real and {need} synthetic samples{why}, "
            f"got {real} real and {fake} synthetic"
        )


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative eigenvalues → 0)."""
    w, v = linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) for Gaussians given by mean and covariance.

    tr((Σ1 Σ2)^½) is computed as tr((√Σ1 Σ2 √Σ1)^½): the inner matrix is symmetric PSD, so two
    symmetric eigendecompositions replace a general matrix square root — faster, no imaginary
    parts, and stable for singular covariances (N < dim).
    """
    s1 = _sqrt_psd(sigma1)
    inner = s1 @ sigma2 @ s1
    inner = (inner + inner.T) / 2  # symmetrise rounding error
    tr_covmean = np.sqrt(np.clip(linalg.eigvalsh(inner), 0.0, None)).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    # The exact value is >= 0; tiny negatives are rounding of identical distributions.
    return max(value, 0.0)


def fid(feats_real: np.ndarray, feats_fake: np.ndarray) -> float:
    """Fréchet distance between feature sets [N1, d] and [N2, d] (needs N >= 2 each).

    Covariances use the unbiased (N − 1) normalisation, as pytorch-fid and torchmetrics do.
    With N below the feature dimension the covariances are singular; the value is still defined
    but strongly biased upwards — prefer KID for small samples.
    """
    real, fake = _check_features(feats_real, feats_fake, "FID")
    _check_count("FID", MIN_FID, len(real), len(fake))
    mu1, mu2 = real.mean(0), fake.mean(0)
    sigma1 = np.atleast_2d(np.cov(real, rowvar=False))
    sigma2 = np.atleast_2d(np.cov(fake, rowvar=False))
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def _mmd2_from_sums(kxx: Any, kyy: Any, kxy: Any, m: int, n: int) -> Any:
    """Unbiased MMD² from kernel sums with the diagonals of K_xx and K_yy removed."""
    return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - 2.0 * kxy / (m * n)


def kid(
    feats_real: np.ndarray,
    feats_fake: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    max_gram: int = 6000,
) -> tuple[float, float]:
    """Kernel Inception Distance → (mean, std) over ``subsets`` random subsets.

    Each subset draws ``m = min(subset_size, N_real, N_fake)`` samples without replacement from
    each set and computes the unbiased MMD² with k(x, y) = (x·y / d + 1)³. The std is the
    population std over subsets (as torchmetrics reports it); when m equals both sample counts
    every subset is the whole data, so the value is computed once and the std is 0.

    When N_real + N_fake <= ``max_gram`` the kernel matrices are computed once and every
    subset's kernel sums come from one matrix product with 0/1 membership vectors (memory
    (N_real + N_fake)² float64); otherwise each subset computes its own kernels.
    """
    real, fake = _check_features(feats_real, feats_fake, "KID")
    _check_count("KID", MIN_KID, len(real), len(fake))
    if subsets < 1:
        raise SynthaugError(f"KID: subsets must be at least 1, got {subsets}")
    m = min(subset_size, len(real), len(fake))
    if m < MIN_KID:
        raise SynthaugError(f"KID: subset_size must be at least {MIN_KID}, got {subset_size}")
    n_r, n_f, d = len(real), len(fake), real.shape[1]
    if m == n_r == n_f:
        subsets = 1  # every subset would be the full sets: identical values
    rng = np.random.default_rng(seed)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / d + 1.0) ** 3

    draws = [
        (rng.choice(n_r, m, replace=False), rng.choice(n_f, m, replace=False))
        for _ in range(subsets)
    ]
    if n_r + n_f <= max_gram:
        v = np.zeros((n_r, subsets))  # membership of real sample i in subset s
        w = np.zeros((n_f, subsets))
        for s, (i, j) in enumerate(draws):
            v[i, s] = 1.0
            w[j, s] = 1.0
        k_rr = kernel(real, real)
        kxx = np.einsum("is,is->s", k_rr @ v, v) - np.diag(k_rr) @ v
        del k_rr
        k_ff = kernel(fake, fake)
        kyy = np.einsum("js,js->s", k_ff @ w, w) - np.diag(k_ff) @ w
        del k_ff
        kxy = np.einsum("is,is->s", kernel(real, fake) @ w, v)
        scores = _mmd2_from_sums(kxx, kyy, kxy, m, m)
    else:
        scores = np.empty(subsets)
        for s, (i, j) in enumerate(draws):
            x, y = real[i], fake[j]
            kxx_m, kyy_m = kernel(x, x), kernel(y, y)
            kxx_s = kxx_m.sum() - np.trace(kxx_m)
            kyy_s = kyy_m.sum() - np.trace(kyy_m)
            scores[s] = _mmd2_from_sums(kxx_s, kyy_s, kernel(x, y).sum(), m, m)
    return float(np.mean(scores)), float(np.std(scores))


def _sq_norms(a: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, a)


def _kth_nn_sq_radius(x: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest other row, [N]."""
    n = len(x)
    norms = _sq_norms(x)
    radii = np.empty(n)
    for start in range(0, n, chunk):
        block = x[start : start + chunk]
        d2 = norms[start : start + chunk, None] + norms[None, :] - 2.0 * block @ x.T
        np.maximum(d2, 0.0, out=d2)
        rows = np.arange(len(block))
        d2[rows, start + rows] = 0.0  # exact zero for self (rounding can leave it positive)
        # Index k of the sorted row is the k-th neighbour: index 0 is the point itself.
        radii[start : start + chunk] = np.partition(d2, k, axis=1)[:, k]
    return radii


def _coverage(
    queries: np.ndarray, centres: np.ndarray, sq_radii: np.ndarray, chunk: int
) -> np.ndarray:
    """For each query row: does it lie in some ball (centre, radius)? → bool [N_queries]."""
    qn, cn = _sq_norms(queries), _sq_norms(centres)
    # Distances by ‖a‖² + ‖b‖² − 2a·b carry rounding error ~1e-16 · ‖a‖²; without a matching
    # tolerance a query identical to a centre could fall outside a zero-radius ball.
    tol = 1e-12 * max(float(qn.max(initial=0.0)), float(cn.max(initial=0.0)), 1e-300)
    limits = sq_radii + tol
    inside = np.zeros(len(queries), dtype=bool)
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk]
        d2 = qn[start : start + chunk, None] + cn[None, :] - 2.0 * block @ centres.T
        np.maximum(d2, 0.0, out=d2)
        inside[start : start + chunk] = (d2 <= limits[None, :]).any(axis=1)
    return inside


def precision_recall(
    feats_real: np.ndarray, feats_fake: np.ndarray, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """k-NN manifold precision and recall → (precision, recall), each in [0, 1].

    Each set's manifold is the union of balls around its samples with radius = distance to the
    sample's k-th nearest neighbour within the set. Pairwise distances are computed ``chunk``
    rows at a time (memory ~ chunk · N · 8 bytes), so 10,000 × 10,000 samples stay cheap in
    memory. Needs more than k samples in each set.
    """
    real, fake = _check_features(feats_real, feats_fake, "precision/recall")
    if k < 1:
        raise SynthaugError(f"precision/recall: k must be at least 1, got {k}")
    _check_count("precision/recall", k + 1, len(real), len(fake), f" (k={k} nearest neighbours)")
    r_real = _kth_nn_sq_radius(real, k, chunk)
    r_fake = _kth_nn_sq_radius(fake, k, chunk)
    precision = _coverage(fake, real, r_real, chunk).mean()
    recall = _coverage(real, fake, r_fake, chunk).mean()
    return float(precision), float(recall)


# -- label statistics -------------------------------------------------------------------------

# 8-connectivity within a slice, nothing across slices: a 3-D structure whose outer planes are 0
# lets one ndimage.label call label every slice of a stack independently.
_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE[1] = True


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components (8-connected) of a stack of binary masks [S, H, W].

    Returns (components per slice [S] int, component sizes in pixels [M] int).
    """
    labelled, count = ndimage.label(mask, structure=_STRUCTURE)
    if count == 0:
        return np.zeros(len(mask), dtype=np.int64), np.zeros(0, dtype=np.int64)
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
    # ndimage.label numbers components in raster order and none spans two slices, so the
    # labels of slice s follow all labels of slices < s: per-slice counts are increments of
    # the running maximum label.
    running = np.maximum.accumulate(labelled.reshape(len(mask), -1).max(axis=1))
    per_slice = np.diff(running, prepend=0)
    return per_slice.astype(np.int64), sizes.astype(np.int64)


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """1-D Wasserstein-1 distance; 0 when both are empty, NaN when only one is."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(stats.wasserstein_distance(a, b))


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits, in [0, 1]."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def _check_label_stack(labels: np.ndarray, what: str, num_classes: int) -> None:
    if labels.ndim != 3:
        raise SynthaugError(
            f"label statistics: {what} labels must be [N, H, W], got {list(labels.shape)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise SynthaugError(
            f"label statistics: {what} labels hold values outside 0..{num_classes - 1}"
        )


def _class_components(
    n_real: np.ndarray, s_real: np.ndarray, n_fake: np.ndarray, s_fake: np.ndarray
) -> dict:
    """One class's presence, components per slice, median size and the distances between
    the real and synthetic component counts and log sizes."""
    return {
        "presence_real": float((n_real > 0).mean()),
        "presence_synthetic": float((n_fake > 0).mean()),
        "components_per_slice_real": float(n_real.mean()),
        "components_per_slice_synthetic": float(n_fake.mean()),
        "median_size_real": float(np.median(s_real)) if len(s_real) else None,
        "median_size_synthetic": float(np.median(s_fake)) if len(s_fake) else None,
        "count_distance": _wasserstein(n_real.astype(float), n_fake.astype(float)),
        "log_size_distance": _wasserstein(np.log10(s_real), np.log10(s_fake)),
    }


def label_statistics(
    labels_real: np.ndarray,
    labels_fake: np.ndarray,
    num_classes: int,
    class_names: list[str] | None = None,
) -> dict:
    """Compare real and synthetic label masks [N, H, W] (values 0..K-1); needs 1 slice each.

    Returns a JSON-ready dict:

    - ``class_frequency``: per-slice-averaged class fractions of each set, their total
      variation distance (½ Σ|p − q|, in [0, 1]) and Jensen–Shannon divergence (bits, [0, 1]).
    - ``classes``: per foreground class, the fraction of slices where it is present, mean
      connected components per slice, the Wasserstein-1 distance between the per-slice
      component counts (``count_distance``), and between the log₁₀ component sizes in pixels
      (``log_size_distance``; NaN when only one set has any component of that class).
    - ``summary``: mean components per slice over all foreground classes for each set, and the
      mean over classes of both distances (NaNs ignored).
    """
    real = np.asarray(labels_real)
    fake = np.asarray(labels_fake)
    for what, lab in (("real", real), ("synthetic", fake)):
        _check_label_stack(lab, what, num_classes)
    _check_count("label statistics", 1, len(real), len(fake))
    names = class_names or [f"class {k}" for k in range(num_classes)]
    p, q = class_frequencies(real, num_classes), class_frequencies(fake, num_classes)
    classes = {}
    count_d, size_d = [], []
    total_real = np.zeros(len(real))
    total_fake = np.zeros(len(fake))
    for k in range(1, num_classes):
        n_real, s_real = components(real == k)
        n_fake, s_fake = components(fake == k)
        total_real += n_real
        total_fake += n_fake
        classes[names[k]] = _class_components(n_real, s_real, n_fake, s_fake)
        count_d.append(classes[names[k]]["count_distance"])
        size_d.append(classes[names[k]]["log_size_distance"])

    def nanmean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return {
        "class_frequency": {
            "real": [float(v) for v in p],
            "synthetic": [float(v) for v in q],
            "total_variation": float(0.5 * np.abs(p - q).sum()),
            "jensen_shannon": _js_divergence(p, q),
        },
        "classes": classes,
        "summary": {
            "components_per_slice_real": float(total_real.mean()),
            "components_per_slice_synthetic": float(total_fake.mean()),
            "mean_count_distance": nanmean(count_d),
            "mean_log_size_distance": nanmean(size_d),
        },
    }
