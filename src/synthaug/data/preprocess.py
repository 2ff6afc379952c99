"""Per-case preprocessing: checks, intensity normalisation, label remapping, slicing, resizing.

Intensities end in [-1, 1] (background at -1), labels in 0..K-1. Slices are square,
``resolution`` pixels, with an isotropic in-plane pixel size (the larger in-plane extent
fills the field of view, the other is padded), images linearly interpolated with
anti-aliasing, labels nearest-neighbour on the same pixel grid so they stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from synthaug.data.formats import CaseSpec
from synthaug.data.options import AXES, PrepareOptions
from synthaug.data.volumes import Volume, geometry_mismatch
from synthaug.errors import DatasetError

BACKGROUND_VALUE = -1.0


@dataclass
class PreparedCase:
    """One patient's slices: images [S, C, R, R] float16 in [-1, 1], labels [S, R, R] uint8.

    ``trainable`` [S] bool: the slices training may use — ``drop_empty``/``drop_edge`` only
    mark slices, never remove them, because every patient is a test patient of one fold and
    test patients keep every slice and every voxel.
    """

    case_id: str
    images: np.ndarray
    labels: np.ndarray
    slice_positions: np.ndarray  # index of each slice along the slicing axis of the RAS volume
    meta: dict
    trainable: np.ndarray


def modality_method(name: str, requested: str) -> str:
    """Resolve "auto" to "ct" for CT-like modality names, "mr" otherwise."""
    if requested != "auto":
        return requested
    return "ct" if "ct" in name.lower().replace("-", " ").split() or name.lower() == "ct" else "mr"


def methods_for(modalities: list[str], normalization: list[str]) -> list[str]:
    if len(normalization) == 1:
        normalization = normalization * len(modalities)
    if len(normalization) != len(modalities):
        raise DatasetError(
            f"normalization lists {len(normalization)} methods for {len(modalities)} modalities "
            f"({', '.join(modalities)})"
        )
    return [modality_method(m, r) for m, r in zip(modalities, normalization, strict=True)]


def normalise_channel(x: np.ndarray, method: str, opts: PrepareOptions) -> np.ndarray:
    """Map one channel's intensities to [-1, 1] (float32)."""
    x = x.astype(np.float32, copy=False)
    if method == "ct":
        lo, hi = opts.ct_window
    elif method == "mr":
        # Percentiles over the foreground: MR background (often exactly 0) would dominate them.
        fg = x[x > x.min()]
        if fg.size == 0:
            fg = x.ravel()
        lo, hi = np.percentile(fg, opts.mr_percentiles)
    else:  # "none": the data is assumed already scaled; only clip
        lo, hi = -1.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 2.0 - 1.0


def remap_labels(label: np.ndarray, declared: list[int], where: str) -> np.ndarray:
    """Map declared label values (sorted) to 0..K-1; reject undeclared values."""
    if not np.issubdtype(label.dtype, np.integer):
        if not np.all(np.isfinite(label)):
            raise DatasetError(f"{where}: label contains NaN/Inf voxels")
        rounded = np.rint(label)
        if np.max(np.abs(rounded - label)) > 1e-3:
            raise DatasetError(f"{where}: label has non-integer values")
        label = rounded.astype(np.int64)
    present = np.unique(label)
    unknown = sorted(set(present.tolist()) - set(declared))
    if unknown:
        raise DatasetError(
            f"{where}: label values {unknown} are not declared in the dataset's labels "
            f"({', '.join(str(v) for v in declared)})"
        )
    # Every present value is declared, so its rank among the sorted declared values is its new label.
    return np.searchsorted(np.asarray(sorted(declared)), label).astype(np.uint8)


def _check_finite(image: Volume, opts: PrepareOptions) -> np.ndarray:
    data = image.data
    bad = ~np.isfinite(data)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return data
    if not opts.repair_nonfinite:
        raise DatasetError(
            f"{image.path}: {n_bad} NaN/Inf voxels; fix the file or pass --repair-nonfinite "
            "to replace them with the channel's minimum"
        )
    data = data.copy()
    for c in range(data.shape[3]):
        channel = data[..., c]
        finite = channel[np.isfinite(channel)]
        channel[~np.isfinite(channel)] = finite.min() if finite.size else 0.0
    return data


def _to_slices_first(vol: np.ndarray, axis: int) -> np.ndarray:
    """[X, Y, Z, ...] → [S, rows, cols, ...]: the slicing axis first, the second in-plane
    axis reversed into rows (anterior/superior at the top), the first in-plane axis as columns."""
    u, v = [a for a in (0, 1, 2) if a != axis]
    rest = tuple(range(3, vol.ndim))
    out = np.transpose(vol, (axis, v, u, *rest))
    return out[:, ::-1]


def _bbox(mask: np.ndarray) -> tuple[slice, ...]:
    idx = [
        np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != d)))
        for d in range(mask.ndim)
    ]
    return tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)


def _resize_inplane(
    stack: np.ndarray, zoom_rc: tuple[float, float], order: int, anti_alias: bool
) -> np.ndarray:
    """Zoom [S, H, W] in-plane only, pixel edges aligned (grid_mode) so image and label agree."""
    zoom = (1.0, *zoom_rc)
    if anti_alias:
        sigma = [0.0] + [max(0.0, (1.0 / z - 1.0) / 2.0) for z in zoom_rc]
        if any(s > 0 for s in sigma):
            stack = ndimage.gaussian_filter(stack, sigma=sigma, mode="nearest")
    return ndimage.zoom(
        stack, zoom, order=order, grid_mode=True, mode="grid-constant" if order == 0 else "nearest"
    )


def _pad_center(stack: np.ndarray, size: int, value: float) -> np.ndarray:
    s, h, w = stack.shape
    out = np.full((s, size, size), value, dtype=stack.dtype)
    top, left = (size - h) // 2, (size - w) // 2
    out[:, top : top + h, left : left + w] = stack[:, :size, :size]
    return out


def _crop(
    img: np.ndarray, lab: np.ndarray, positions: np.ndarray, opts: PrepareOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop to the box holding image content (any channel above the background value).

    The box is found from image intensities only, never from the labels: every case may be a
    test patient of some fold, and a test image must not be edited by its ground truth (a
    label-driven crop would leak where the answer is into the input). Labels are cut with
    the same box, so labelled voxels outside the image content are dropped with it.
    """
    if opts.crop == "foreground":
        content = (img > BACKGROUND_VALUE + 1e-6).any(axis=-1)
        if content.any():
            box = _bbox(content)
            img, lab, positions = img[box], lab[box], positions[box[0]]
    return img, lab, positions


def trainable_slices(labels: np.ndarray, drop_edge: float, drop_empty: bool) -> np.ndarray:
    """[S] bool: the slices of a case training may use — not within ``drop_edge`` of either
    end of the stack and, with ``drop_empty``, holding labelled foreground."""
    keep = np.ones(len(labels), dtype=bool)
    if drop_edge > 0:
        n_drop = int(round(drop_edge * len(labels)))
        if n_drop > 0 and len(labels) > 2 * n_drop:
            keep[:n_drop] = keep[len(labels) - n_drop :] = False
    if drop_empty:
        keep &= (labels > 0).reshape(len(labels), -1).any(axis=1)
    return keep


def _resample(
    img: np.ndarray, lab: np.ndarray, pixel_rc: tuple[float, float], res: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Slices [S, H, W, C] and labels [S, H, W] onto an isotropic res × res grid (images
    linear with anti-aliasing, labels nearest): images [S, C, R, R] float16, labels uint8 and
    the field of view in mm."""
    h, w = img.shape[1:3]
    fov = max(h * pixel_rc[0], w * pixel_rc[1])
    zoom_rc = (pixel_rc[0] * res / fov, pixel_rc[1] * res / fov)
    channels = [
        _pad_center(_resize_inplane(img[..., c], zoom_rc, 1, True), res, BACKGROUND_VALUE)
        for c in range(img.shape[-1])
    ]
    out_img = np.clip(np.stack(channels, axis=1), -1.0, 1.0).astype(np.float16)
    out_lab = _pad_center(_resize_inplane(lab, zoom_rc, 0, False), res, 0).astype(np.uint8)
    return out_img, out_lab, fov


def prepare_case(
    case: CaseSpec,
    modalities: list[str],
    declared_labels: list[int],
    opts: PrepareOptions,
) -> PreparedCase:
    """Read, check and turn one case into normalised, resized slices."""
    image, label = case.load(opts.geometry_tolerance)
    where = f"case {case.case_id}"
    n_channels = image.data.shape[3]
    if n_channels != len(modalities):
        raise DatasetError(
            f"{image.path}: has {n_channels} channel(s) but the dataset declares "
            f"{len(modalities)} modalities ({', '.join(modalities)})"
        )
    mismatch = geometry_mismatch(image, label, opts.geometry_tolerance)
    if mismatch is not None:
        kind = "shape" if mismatch.startswith("shape") else "geometry"
        raise DatasetError(f"{label.path}: image/label {kind} mismatch in {where}: {mismatch}")
    data = _check_finite(image, opts)
    labels = remap_labels(label.data, declared_labels, f"{label.path}")

    methods = methods_for(modalities, opts.normalization)
    normed = np.stack(
        [normalise_channel(data[..., c], methods[c], opts) for c in range(n_channels)], axis=0
    )  # [C, X, Y, Z]

    axis = AXES[opts.axis]
    spacing = image.spacing
    u, v = [a for a in (0, 1, 2) if a != axis]
    pixel_rc = (float(spacing[v]), float(spacing[u]))

    img = _to_slices_first(np.moveaxis(normed, 0, -1), axis)  # [S, H, W, C]
    lab = _to_slices_first(labels, axis)  # [S, H, W]
    positions = np.arange(img.shape[0])

    img, lab, positions = _crop(img, lab, positions, opts)
    trainable = trainable_slices(lab, opts.drop_edge, opts.drop_empty)
    if img.shape[0] == 0 or not trainable.any():
        raise DatasetError(
            f"{where}: no slice left for training after cropping/dropping (empty image or label?)"
        )

    out_img, out_lab, fov = _resample(img, lab, pixel_rc, opts.resolution)
    res = opts.resolution
    meta = {
        "id": case.case_id,
        "images": [str(p) for p in case.image_paths],
        "label": str(case.label_path),
        "original_shape": list(image.spatial_shape),
        "spacing_mm": [round(float(s), 5) for s in spacing],
        "pixel_size_mm": round(fov / res, 5),
        "normalization": methods,
        "num_slices": int(out_img.shape[0]),
        "trainable_slices": int(trainable.sum()),
    }
    return PreparedCase(case.case_id, out_img, out_lab, positions.astype(np.int32), meta, trainable)
