"""Reading image volumes (NIfTI via nibabel; NRRD/MHA/MHD via SimpleITK) into canonical RAS arrays.

Every reader returns a :class:`Volume`: a float or integer array whose first three axes are
(x, y, z) in RAS+ orientation, optional trailing channel axis, and the 4×4 voxel→world (RAS, mm)
affine. Reorienting to RAS is a pure axis permutation/flip, so no voxel is interpolated.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations
from nibabel.filebasedimages import ImageFileError

from synthaug.errors import DatasetError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + SITK_SUFFIXES

# Flip between ITK's LPS world convention and NIfTI's RAS.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """A volume in canonical RAS orientation.

    data: [X, Y, Z] or [X, Y, Z, C]; affine: [4, 4] voxel index → RAS millimetres.
    """

    data: np.ndarray
    affine: np.ndarray
    path: Path

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape[:3])  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along x, y, z."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def num_channels(self) -> int:
        return 1 if self.data.ndim == 3 else int(self.data.shape[3])


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in IMAGE_SUFFIXES)


def strip_image_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_volume(path: Path) -> Volume:
    """Read one image file and return it reoriented to RAS.

    Raises DatasetError naming the file when it is missing, truncated or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    name = path.name.lower()
    try:
        if name.endswith(NIFTI_SUFFIXES):
            data, affine = _read_nifti(path)
        elif name.endswith(SITK_SUFFIXES):
            data, affine = _read_sitk(path)
        else:
            raise DatasetError(
                f"{path}: unsupported image format (use {', '.join(IMAGE_SUFFIXES)})"
            )
    except DatasetError:
        raise
    except (
        OSError,
        EOFError,
        ValueError,
        RuntimeError,
        zlib.error,
        gzip.BadGzipFile,
        ImageFileError,
    ) as exc:
        raise DatasetError(
            f"{path}: cannot read image ({_short(exc)}); the file may be truncated or corrupt"
        ) from exc
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 5 and data.shape[3] == 1:  # NIfTI stores vectors as [X, Y, Z, 1, C]
        data = data[:, :, :, 0, :]
    if data.ndim not in (3, 4):
        raise DatasetError(f"{path}: expected a 3-D or 4-D image, got shape {data.shape}")
    data, affine = to_canonical(data, affine)
    return Volume(data=data, affine=affine, path=path)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    # np.asanyarray(dataobj) keeps integer label types; it applies scl_slope when present.
    data = np.asanyarray(img.dataobj)
    return np.asarray(data), np.asarray(img.affine, dtype=np.float64)


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Capture what native libraries (ITK's MetaIO) print straight to file descriptor 2,
    so a bad file yields our one-line message instead of their loose lines."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def _read_sitk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    with _captured_stderr() as native_messages:
        try:
            img = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            # ITK's exception text starts with a C++ source location; the reason is further on.
            reason = next((ln for ln in reversed(str(exc).splitlines()) if ln.strip()), str(exc))
            raise RuntimeError(reason.strip()) from exc
    if any("not read completely" in m or "error" in m.lower() for m in native_messages):
        raise DatasetError(
            f"{path}: cannot read image ({native_messages[0].strip()[:160]}); "
            "the file may be truncated or corrupt"
        )
    arr = sitk.GetArrayFromImage(img)  # [Z, Y, X] or [Z, Y, X, C]
    dim = img.GetDimension()
    if dim != 3:
        raise DatasetError(f"{path}: expected a 3-D image, got {dim}-D")
    arr = np.moveaxis(arr, (0, 1, 2), (2, 1, 0))  # → [X, Y, Z(, C)]
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.array(img.GetSpacing(), dtype=np.float64)
    origin = np.array(img.GetOrigin(), dtype=np.float64)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction * spacing[None, :]
    affine_lps[:3, 3] = origin
    return np.ascontiguousarray(arr), _LPS_TO_RAS @ affine_lps


def to_canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permute/flip the first three axes so that they run along R, A, S."""
    ornt = orientations.io_orientation(affine)
    target = orientations.axcodes2ornt(("R", "A", "S"))
    transform = orientations.ornt_transform(ornt, target)
    if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
        return data, affine
    new = orientations.apply_orientation(data, transform)
    new_affine = affine @ orientations.inv_ornt_aff(transform, data.shape[:3])
    return np.ascontiguousarray(new), new_affine


def geometry_mismatch(a: Volume, b: Volume, tolerance: float = 1e-3) -> str | None:
    """Describe how two volumes' grids differ, or return None if they agree.

    Spacing is compared relatively, direction cosines absolutely, origin in units of the
    voxel size; all against ``tolerance``.
    """
    if a.spatial_shape != b.spatial_shape:
        return f"shape {a.spatial_shape} vs {b.spatial_shape}"
    sa, sb = a.spacing, b.spacing
    if not np.allclose(sa, sb, rtol=tolerance, atol=0):
        return f"spacing {np.round(sa, 4).tolist()} vs {np.round(sb, 4).tolist()} mm"
    da, db = a.affine[:3, :3] / sa, b.affine[:3, :3] / sb
    if not np.allclose(da, db, atol=tolerance, rtol=0):
        return "direction cosines differ"
    oa, ob = a.affine[:3, 3], b.affine[:3, 3]
    if np.max(np.abs(oa - ob)) > tolerance * float(np.max(sa)) * 10:
        return f"origin {np.round(oa, 3).tolist()} vs {np.round(ob, 3).tolist()} mm"
    return None
