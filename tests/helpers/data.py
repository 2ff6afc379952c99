"""Builders of tiny on-disk datasets (MSD v1, nnU-Net v2, BraTS, NRRD/MHA) for the data-layer tests.

Every case is a small volume in RAS voxel order with:

* a "body" (intensity ~100) filling the volume except a one-voxel rim in x and y;
* one box per declared foreground label value, bright (1000) in every channel, exactly where
  the label has that value; boxes of different values lie in different x-bands;
* a per-channel marker: channel ``c`` is bright in a 2x2 voxel block at (x 1:3, y 1:3, z=c)
  and only there, so a test can tell whether channels were kept in order.

With isotropic 1 mm spacing, ``crop="none"``, axial slicing and ``resolution == max(X, Y)``
prepare does no resampling, so a test can predict every stored pixel with :func:`to_store`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from synthaug.data.options import PrepareOptions

SHAPE = (12, 14, 10)
BODY = 100.0
BRIGHT = 1000.0
MARKER_XY = (slice(1, 3), slice(1, 3))

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


# -- geometry ---------------------------------------------------------------------------------


def make_affine(
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> np.ndarray:
    """A voxel -> RAS mm affine: rotation (columns = axis directions) x spacing, then origin."""
    affine = np.eye(4)
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def rotation_z(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])


def flip_voxel_axes(
    data: np.ndarray, affine: np.ndarray, axes: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The same image stored with the given voxel axes reversed: new data and its affine."""
    flip = np.eye(4)
    for a in axes:
        flip[a, a] = -1.0
        flip[a, 3] = data.shape[a] - 1
    return np.flip(data, axis=axes).copy(), affine @ flip


# -- writing images ---------------------------------------------------------------------------


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def write_sitk(path: Path, data: np.ndarray, affine_ras: np.ndarray) -> Path:
    """Write [X, Y, Z] or [X, Y, Z, C] data with a RAS affine as NRRD/MHA (ITK's LPS world)."""
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    lps = LPS_TO_RAS @ affine_ras  # the flip is its own inverse
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    direction = lps[:3, :3] / spacing
    if data.ndim == 4:
        img = sitk.GetImageFromArray(
            np.ascontiguousarray(data.transpose(2, 1, 0, 3)), isVector=True
        )
    else:
        img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(v) for v in lps[:3, 3]])
    img.SetDirection([float(v) for v in direction.ravel()])
    sitk.WriteImage(img, str(path), useCompression=True)
    return path


def write_image(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return write_nifti(path, data, affine)
    return write_sitk(path, data, affine)


# -- case content -----------------------------------------------------------------------------


@dataclass
class Case:
    case_id: str
    image: np.ndarray  # [X, Y, Z, C] float32, RAS voxel order
    label: np.ndarray  # [X, Y, Z] uint8 with the dataset's declared (raw) values
    affine: np.ndarray


def make_case(
    case_id: str,
    shape: tuple[int, int, int] = SHAPE,
    channels: int = 1,
    label_values: tuple[int, ...] = (1,),
    seed: int = 0,
    affine: np.ndarray | None = None,
) -> Case:
    """A case as described in the module docstring; box positions depend on ``seed``."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    assert nz >= channels, "one marker slice per channel"
    label = np.zeros(shape, dtype=np.uint8)
    fg_values = [v for v in label_values if v != 0]
    x_lo = 4  # x < 4 is reserved for the channel markers
    band = max(1, (nx - 1 - x_lo) // max(1, len(fg_values)))
    for k, value in enumerate(fg_values):
        bx = x_lo + k * band
        wx = max(1, min(band, 3))
        y0 = int(rng.integers(1, ny - 5))
        z0 = int(rng.integers(0, max(1, nz - 4)))
        wy = int(rng.integers(2, 5))
        wz = int(rng.integers(2, 5))
        label[bx : bx + wx, y0 : y0 + wy, z0 : z0 + wz] = value
    image = np.zeros((*shape, channels), dtype=np.float32)
    body = BODY + rng.normal(0.0, 2.0, size=(nx - 2, ny - 2, nz)).astype(np.float32)
    for c in range(channels):
        image[1:-1, 1:-1, :, c] = body * (1.0 + 0.1 * c)
        image[label > 0, c] = BRIGHT
        image[MARKER_XY[0], MARKER_XY[1], c, c] = BRIGHT
    return Case(case_id, image, label, make_affine() if affine is None else affine)


def make_cases(
    n: int,
    prefix: str = "case",
    shape: tuple[int, int, int] = SHAPE,
    channels: int = 1,
    label_values: tuple[int, ...] = (1,),
    seed: int = 0,
) -> list[Case]:
    return [
        make_case(f"{prefix}_{i:03d}", shape, channels, label_values, seed=seed * 1000 + i)
        for i in range(n)
    ]


# -- layouts ----------------------------------------------------------------------------------


def write_msd(
    root: Path,
    cases: list[Case],
    modalities: list[str],
    labels: dict[int, str],
    suffix: str = ".nii.gz",
    name: str = "tiny-msd",
) -> Path:
    """MSD v1: dataset.json (modality/labels/training), 4-D images in imagesTr, labelsTr."""
    root.mkdir(parents=True, exist_ok=True)
    training = []
    for case in cases:
        image = case.image if case.image.shape[3] > 1 else case.image[..., 0]
        write_image(root / "imagesTr" / f"{case.case_id}{suffix}", image, case.affine)
        write_image(root / "labelsTr" / f"{case.case_id}{suffix}", case.label, case.affine)
        training.append(
            {
                "image": f"./imagesTr/{case.case_id}{suffix}",
                "label": f"./labelsTr/{case.case_id}{suffix}",
            }
        )
    meta = {
        "name": name,
        "description": "tiny test dataset",
        "tensorImageSize": "4D",
        "modality": {str(i): m for i, m in enumerate(modalities)},
        "labels": {str(k): v for k, v in labels.items()},
        "numTraining": len(cases),
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))
    return root


def write_nnunet(
    root: Path,
    cases: list[Case],
    modalities: list[str],
    labels: dict[int, str],
    file_ending: str = ".nii.gz",
    name: str = "Dataset001_Tiny",
) -> Path:
    """nnU-Net v2 raw: channel_names / labels (name -> int) / file_ending, CASE_XXXX files."""
    root.mkdir(parents=True, exist_ok=True)
    for case in cases:
        for c in range(case.image.shape[3]):
            write_image(
                root / "imagesTr" / f"{case.case_id}_{c:04d}{file_ending}",
                case.image[..., c],
                case.affine,
            )
        write_image(root / "labelsTr" / f"{case.case_id}{file_ending}", case.label, case.affine)
    meta = {
        "name": name,
        "channel_names": {str(i): m for i, m in enumerate(modalities)},
        "labels": {v: k for k, v in labels.items()},
        "numTraining": len(cases),
        "file_ending": file_ending,
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))
    return root


BRATS_FILES = {
    "2021": ("{id}_t1", "{id}_t1ce", "{id}_t2", "{id}_flair", "{id}_seg"),
    "2023": ("{id}-t1n", "{id}-t1c", "{id}-t2w", "{id}-t2f", "{id}-seg"),
}
BRATS_VALUES = {"2021": (0, 1, 2, 4), "2023": (0, 1, 2, 3)}


def write_brats(root: Path, cases: list[Case], convention: str = "2021") -> Path:
    """BraTS: one folder per case, one NIfTI per sequence plus the segmentation."""
    root.mkdir(parents=True, exist_ok=True)
    names = BRATS_FILES[convention]
    for case in cases:
        assert case.image.shape[3] == 4
        folder = root / case.case_id
        for c in range(4):
            write_nifti(
                folder / (names[c].format(id=case.case_id) + ".nii.gz"),
                case.image[..., c],
                case.affine,
            )
        write_nifti(
            folder / (names[4].format(id=case.case_id) + ".nii.gz"), case.label, case.affine
        )
    return root


def dataset_json(root: Path) -> dict:
    return json.loads((root / "dataset.json").read_text())


def rewrite_json(root: Path, meta: dict) -> None:
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def exact_options(**overrides) -> PrepareOptions:
    """Options under which prepare does no resampling on the 12x14x10 1 mm fixtures."""
    kw = {"resolution": 14, "crop": "none", "folds": 2, "workers": 1}
    kw.update(overrides)
    return PrepareOptions(**kw)


# -- expectations -----------------------------------------------------------------------------


def to_store(volume: np.ndarray, resolution: int, pad: float) -> np.ndarray:
    """Where a RAS volume [X, Y, Z(, C)] lands in the store for axial slicing without resampling.

    The store's slice s shows z = s; row r is y = Y-1-r (anterior at the top), column is x,
    centred in a ``resolution`` wide square padded with ``pad``. Returns [S, R, R(, C)].
    """
    nx, ny, nz = volume.shape[:3]
    rest = volume.shape[3:]
    slices = np.swapaxes(volume, 0, 2)  # [Z, Y, X, ...]
    slices = slices[:, ::-1]
    out = np.full((nz, resolution, resolution, *rest), pad, dtype=np.float64)
    top, left = (resolution - ny) // 2, (resolution - nx) // 2
    out[:, top : top + ny, left : left + nx] = slices
    return out


def remap(label: np.ndarray, declared: list[int]) -> np.ndarray:
    """Declared values (any order) -> their rank among the sorted declared values."""
    table = {v: i for i, v in enumerate(sorted(declared))}
    out = np.zeros(label.shape, dtype=np.int64)
    for v, i in table.items():
        out[label == v] = i
    return out


def bright_expected(case: Case, channel: int) -> np.ndarray:
    """Mask [X, Y, Z] of the voxels that are bright in ``channel``."""
    mask = case.label > 0
    mask = mask.copy()
    mask[MARKER_XY[0], MARKER_XY[1], channel] = True
    return mask


def snapshot(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """Relative file name -> (size, mtime_ns, bytes) of everything under ``path``."""
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(path))] = (st.st_size, st.st_mtime_ns, p.read_bytes())
    return out


def leftovers(out: Path) -> list[str]:
    """Temporary siblings of ``out`` left behind by an atomic write (``.NAME.tmp-*``, ``.NAME.old-*``)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}"))
