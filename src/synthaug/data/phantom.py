"""The embedded ``phantom`` dataset: semi-synthetic brain MRI patients built offline.

Anatomy comes from the MNI152 (ICBM 2009a symmetric) T1 template and its grey/white-matter
probability maps that ship inside the nilearn wheel (read from the package's data folder;
nothing is downloaded). Each virtual patient is a random affine + elastic deformation of that
anatomy, with three contrasts synthesised from the tissue maps (T1-, T2- and FLAIR-like, with
per-patient contrast jitter), a smooth bias field, Rician noise and random lesion(s).

It is SEMI-SYNTHETIC: one real anatomy, deformed; its realism is limited, and results on it say
how the pipeline behaves, not how synthetic data helps on real patients.

Two tasks share the anatomy:
    tissue: 0 background, 1 CSF, 2 grey matter, 3 white matter, 4 lesion
    lesion: 0 background, 1 lesion core, 2 surrounding oedema (BraTS-like, more varied lesions)
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from synthaug.atomic import atomic_dir
from synthaug.errors import SynthaugError
from synthaug.progress import track

MODALITIES = ("T1", "T2", "FLAIR")
TASKS: dict[str, dict[int, str]] = {
    "tissue": {0: "background", 1: "CSF", 2: "grey matter", 3: "white matter", 4: "lesion"},
    "lesion": {0: "background", 1: "lesion core", 2: "oedema"},
}
VOXEL_MM = 2.0

# Mean intensity of each tissue in each contrast (rows: CSF, GM, WM, lesion core, oedema),
# roughly the ordering seen in clinical T1w / T2w / FLAIR images.
TISSUE_CONTRAST = np.array(
    [
        # T1    T2    FLAIR
        [0.25, 1.00, 0.10],  # CSF
        [0.60, 0.62, 0.62],  # grey matter
        [0.85, 0.45, 0.45],  # white matter
        [0.35, 0.85, 1.00],  # lesion core
        [0.50, 0.80, 0.85],  # oedema
    ],
    dtype=np.float32,
)

_TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


@dataclass(frozen=True)
class Anatomy:
    """Tissue probabilities [4, X, Y, Z] (background, CSF, GM, WM) on a 2 mm grid, and its affine."""

    probs: np.ndarray
    affine: np.ndarray


def _template_path(name: str) -> Path:
    path = Path(str(resources.files("nilearn.datasets") / "data" / _TEMPLATE_FILES[name]))
    if not path.is_file():
        raise SynthaugError(
            f"{path}: MNI152 template missing from the nilearn package; reinstall nilearn"
        )
    return path


def _downsample2(x: np.ndarray) -> np.ndarray:
    """Average 2×2×2 blocks (1 mm → 2 mm), trimming odd edges."""
    sx, sy, sz = (s // 2 * 2 for s in x.shape)
    x = x[:sx, :sy, :sz]
    return x.reshape(sx // 2, 2, sy // 2, 2, sz // 2, 2).mean(axis=(1, 3, 5))


@lru_cache(maxsize=1)
def load_anatomy() -> Anatomy:
    """The MNI152 anatomy as tissue probabilities, cropped to the brain with a margin."""
    t1_img = nib.load(str(_template_path("t1")))
    brain = (np.asarray(t1_img.dataobj) > 0).astype(np.float32)
    gm = np.asarray(nib.load(str(_template_path("gm"))).dataobj, dtype=np.float32) / 255.0
    wm = np.asarray(nib.load(str(_template_path("wm"))).dataobj, dtype=np.float32) / 255.0
    gm, wm = gm * brain, wm * brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    bg = 1.0 - brain
    probs = np.stack([_downsample2(p) for p in (bg, csf, gm, wm)])
    probs /= probs.sum(axis=0, keepdims=True)
    inside = np.argwhere(probs[0] < 0.5)
    margin = 4
    lo = np.maximum(inside.min(axis=0) - margin, 0)
    hi = np.minimum(inside.max(axis=0) + margin + 1, probs.shape[1:])
    probs = np.ascontiguousarray(probs[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
    affine = np.asarray(t1_img.affine, dtype=np.float64) @ np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] += affine[:3, :3] @ lo
    return Anatomy(probs=probs, affine=affine)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], coarse: int) -> np.ndarray:
    """Zero-mean, unit-std random field varying on a scale of ``coarse`` voxels."""
    small = tuple(max(2, s // coarse + 2) for s in shape)
    field = ndimage.gaussian_filter(rng.standard_normal(small).astype(np.float32), 0.7)
    field = ndimage.zoom(field, [s / n for s, n in zip(shape, small, strict=True)], order=1)
    field = field[tuple(slice(0, s) for s in shape)]
    return (field - field.mean()) / (field.std() + 1e-6)


def _deformation(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Sampling coordinates [3, X, Y, Z] of a random affine + smooth elastic warp."""
    center = (np.array(shape) - 1) / 2.0
    angles = np.deg2rad(rng.uniform(-7, 7, size=3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rot = (
        np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    )
    matrix = rot @ np.diag(1.0 / rng.uniform(0.9, 1.1, size=3))
    shift = rng.uniform(-3, 3, size=3)
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1) - center[:, None]
    coords = (matrix @ grid).astype(np.float32) + (center + shift)[:, None]
    coords = coords.reshape(3, *shape)
    amplitude = rng.uniform(1.0, 2.5)  # voxels (2–5 mm)
    for axis in range(3):
        coords[axis] += amplitude * _smooth_noise(rng, shape, coarse=10)
    return coords


def _blob(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    center: np.ndarray,
    radii: np.ndarray,
    irregularity: float,
) -> np.ndarray:
    """Normalised ellipsoidal distance field around ``center`` (1 = ellipsoid surface),
    randomly rotated and perturbed by smooth noise so every lesion has its own shape."""
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1) - center[:, None]
    local = (q.T @ grid) / radii[:, None]
    dist = np.sqrt((local**2).sum(axis=0)).reshape(shape)
    return dist * (1.0 + irregularity * _smooth_noise(rng, shape, coarse=4))


def _connected_to(mask: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The connected component of ``mask`` nearest ``center``: a lesion is one piece, not islands."""
    components, n = ndimage.label(mask)
    if n <= 1:
        return mask
    c = tuple(int(round(v)) for v in center)
    keep = components[c]
    if keep == 0:  # the noise carved the centre out: keep the largest piece
        keep = int(np.argmax(np.bincount(components.ravel())[1:])) + 1
    return components == keep


def _lesions(
    rng: np.random.Generator, tissue: np.ndarray, task: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lesion core and oedema inside the brain: hard masks (bool) and soft maps in [0, 1], [X, Y, Z]."""
    shape = tissue.shape[1:]
    brain = tissue[0] < 0.5
    host = (tissue[3] > 0.6) if task == "tissue" else brain & (tissue[1] < 0.3)
    candidates = np.argwhere(host)
    core = np.zeros(shape, dtype=bool)
    oedema = np.zeros(shape, dtype=bool)
    n_lesions = 1 if task == "tissue" else int(rng.integers(1, 3))
    for _ in range(n_lesions):
        center = candidates[rng.integers(len(candidates))].astype(np.float32)
        if task == "tissue":
            radii = rng.uniform(2.5, 5.0, size=3)
            core |= _connected_to(_blob(rng, shape, center, radii, 0.15) < 1.0, center)
        else:
            radii = rng.uniform(3.5, 9.0, size=3)
            core |= _connected_to(_blob(rng, shape, center, radii, 0.3) < 1.0, center)
            swelling = rng.uniform(1.5, 2.6)
            oedema |= _connected_to(_blob(rng, shape, center, radii * swelling, 0.35) < 1.0, center)
    core &= brain
    oedema &= brain & ~core
    soft = [
        np.clip(ndimage.gaussian_filter(m.astype(np.float32), 0.6), 0, 1) for m in (core, oedema)
    ]
    return core, oedema, soft[0], soft[1]


def make_patient(seed: int, index: int, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One virtual patient: image [X, Y, Z, 3] int16 (0..~1000), label [X, Y, Z] uint8, affine."""
    if task not in TASKS:
        raise SynthaugError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    anatomy = load_anatomy()
    rng = np.random.default_rng([seed, index])  # patient i is the same whatever N is
    shape = anatomy.probs.shape[1:]
    coords = _deformation(rng, shape)
    tissue = np.stack(
        [
            ndimage.map_coordinates(
                p, coords, order=1, mode="constant", cval=1.0 if t == 0 else 0.0
            )
            for t, p in enumerate(anatomy.probs)
        ]
    )
    tissue /= np.maximum(tissue.sum(axis=0, keepdims=True), 1e-6)
    core, oedema, core_soft, oedema_soft = _lesions(rng, tissue, task)
    healthy = 1.0 - core_soft - oedema_soft
    brain_soft = 1.0 - tissue[0]

    contrast = TISSUE_CONTRAST * rng.uniform(0.9, 1.1, size=TISSUE_CONTRAST.shape).astype(
        np.float32
    )
    noise_sigma = rng.uniform(0.015, 0.035)
    texture = 0.03 * _smooth_noise(rng, shape, coarse=2)
    channels = []
    for m in range(len(MODALITIES)):
        mix = sum(tissue[t + 1] * contrast[t, m] for t in range(3))
        signal = healthy * mix + brain_soft * (
            core_soft * contrast[3, m] + oedema_soft * contrast[4, m]
        )
        bias = np.exp(0.12 * _smooth_noise(rng, shape, coarse=24))
        signal = signal * bias * (1.0 + texture)
        n1, n2 = rng.standard_normal((2, *shape)).astype(np.float32) * noise_sigma
        magnitude = np.sqrt((signal + n1) ** 2 + n2**2)  # Rician, as in magnitude MR images
        channels.append(np.where(brain_soft > 0.5, magnitude, 0.0))
    image = np.clip(np.stack(channels, axis=-1) * 1000.0, 0, 32767).astype(np.int16)

    brain = tissue[0] < 0.5
    if task == "tissue":
        label = np.where(brain, np.argmax(tissue[1:], axis=0) + 1, 0).astype(np.uint8)
        label[core] = 4
    else:
        label = np.zeros(shape, dtype=np.uint8)
        label[oedema] = 2
        label[core] = 1
    return image, label, anatomy.affine


def _write_patient(args: tuple[Path, int, int, str]) -> str:
    out, seed, index, task = args
    case_id = f"phantom_{index:03d}"
    image, label, affine = make_patient(seed, index, task)
    nib.save(nib.Nifti1Image(image, affine), str(out / "imagesTr" / f"{case_id}.nii.gz"))
    nib.save(nib.Nifti1Image(label, affine), str(out / "labelsTr" / f"{case_id}.nii.gz"))
    return case_id


def dataset_json(task: str, case_ids: list[str], seed: int) -> dict:
    return {
        "name": f"phantom-{task}",
        "description": (
            "SEMI-SYNTHETIC brain MRI phantom generated by synthaug from the MNI152 2009a template "
            "and its tissue maps (shipped inside nilearn): random deformations of one real anatomy "
            "with synthesised T1/T2/FLAIR-like contrasts, bias field, noise and random lesions. "
            "Not patient data; use it to exercise the pipeline, not to draw clinical conclusions."
        ),
        "reference": "synthaug phantom; MNI ICBM152 2009a (Fonov et al. 2011) via nilearn",
        "licence": "see MNI ICBM152 template terms",
        "release": f"seed {seed}",
        "tensorImageSize": "4D",
        "modality": {str(i): m for i, m in enumerate(MODALITIES)},
        "labels": {str(k): v for k, v in TASKS[task].items()},
        "numTraining": len(case_ids),
        "numTest": 0,
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in case_ids
        ],
        "test": [],
        "semi_synthetic": True,
    }


def make_phantom(
    out: Path | str,
    patients: int = 24,
    task: str = "tissue",
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
) -> Path:
    """Write a phantom dataset in MSD v1 layout at ``out`` (atomically) and return its path."""
    if task not in TASKS:
        raise SynthaugError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    if patients < 1:
        raise SynthaugError(f"patients: need at least 1, got {patients}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise SynthaugError(f"{out}: already exists; pass --overwrite to replace it")
    load_anatomy()  # fail early (and warm the cache inherited by forked workers)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        jobs = [(tmp, seed, i, task) for i in range(patients)]
        workers = max(1, min(workers, patients))
        if workers == 1:
            case_ids = list(track(map(_write_patient, jobs), f"phantom {task}", total=patients))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                case_ids = list(
                    track(pool.map(_write_patient, jobs), f"phantom {task}", total=patients)
                )
        (tmp / "dataset.json").write_text(json.dumps(dataset_json(task, case_ids, seed), indent=2))
    return out
