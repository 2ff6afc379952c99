"""Dataset layouts a user has on disk: MSD v1, nnU-Net v2 raw, BraTS-style folders.

:func:`load_dataset` inspects a folder, recognises its layout and returns a
:class:`DatasetSpec`: modality names, declared labels and one :class:`CaseSpec` per
patient. Only dataset.json and the folder listing are read here; image files are read
lazily by :meth:`CaseSpec.load`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthaug.data.volumes import (
    Volume,
    geometry_mismatch,
    is_image_file,
    read_volume,
    strip_image_suffix,
)
from synthaug.errors import DatasetError

LAYOUTS = ("msd", "nnunet", "brats")

# BraTS sequence suffixes, in the order the channels are stored. 2021-style names
# (t1, t1ce, t2, flair) and 2023-style names (t1n, t1c, t2w, t2f) are both recognised.
BRATS_SEQUENCES = {
    "2021": ("t1", "t1ce", "t2", "flair"),
    "2023": ("t1n", "t1c", "t2w", "t2f"),
}
BRATS_LABELS = {
    "2021": {0: "background", 1: "necrotic core", 2: "oedema", 4: "enhancing tumour"},
    "2023": {0: "background", 1: "necrotic core", 2: "oedema", 3: "enhancing tumour"},
}


@dataclass
class CaseSpec:
    """One patient: channel image files (one 4-D file, or one 3-D file per channel) and a label."""

    case_id: str
    image_paths: list[Path]
    label_path: Path

    def load(self, geometry_tolerance: float = 1e-3) -> tuple[Volume, Volume]:
        """Read image and label; image data is [X, Y, Z, C] float32, label [X, Y, Z].

        Per-channel files must share one grid (see ``geometry_mismatch`` for the tolerance).
        """
        label = read_volume(self.label_path)
        if label.data.ndim != 3:
            raise DatasetError(
                f"{self.label_path}: label must be 3-D, got shape {label.data.shape}"
            )
        channels: list[np.ndarray] = []
        first: Volume | None = None
        for path in self.image_paths:
            vol = read_volume(path)
            if first is None:
                first = vol
            else:
                mismatch = geometry_mismatch(first, vol, geometry_tolerance)
                if mismatch is not None:
                    raise DatasetError(
                        f"{path}: channel grid differs from {first.path.name} in case "
                        f"{self.case_id}: {mismatch}"
                    )
            data = vol.data if vol.data.ndim == 4 else vol.data[..., None]
            channels.append(data.astype(np.float32, copy=False))
        assert first is not None
        image = Volume(
            data=np.concatenate(channels, axis=3) if len(channels) > 1 else channels[0],
            affine=first.affine,
            path=first.path,
        )
        return image, label


@dataclass
class DatasetSpec:
    """A dataset as declared on disk."""

    root: Path
    layout: str
    name: str
    modalities: list[str]
    labels: dict[int, str]  # declared label value → name, background included
    cases: list[CaseSpec]
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def num_channels(self) -> int:
        return len(self.modalities)


def load_dataset(root: Path | str, layout: str = "auto") -> DatasetSpec:
    """Recognise and index a dataset folder.

    Args:
        root: the dataset folder (contains dataset.json for MSD/nnU-Net, case folders for BraTS).
        layout: "auto", "msd", "nnunet" or "brats".
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "msd":
        spec = _load_msd(root)
    elif layout == "nnunet":
        spec = _load_nnunet(root)
    elif layout == "brats":
        spec = _load_brats(root)
    else:
        raise DatasetError(f"unknown layout {layout!r}: choose one of auto, {', '.join(LAYOUTS)}")
    if not spec.cases:
        raise DatasetError(f"{root}: the dataset has no cases")
    return spec


def detect_layout(root: Path) -> str:
    """Tell MSD v1, nnU-Net v2 and BraTS folders apart from their files."""
    meta_path = root / "dataset.json"
    if meta_path.is_file():
        meta = _read_json(meta_path)
        if "channel_names" in meta:
            return "nnunet"
        if "modality" in meta or "training" in meta:
            return "msd"
        raise DatasetError(
            f"{meta_path}: neither MSD v1 ('modality', 'training') nor nnU-Net v2 "
            "('channel_names', 'labels', 'file_ending') keys found"
        )
    if any(_brats_case_files(d) for d in sorted(root.iterdir()) if d.is_dir()):
        return "brats"
    raise DatasetError(
        f"{root}: unknown layout: no dataset.json (MSD v1 / nnU-Net v2) and no BraTS-style case "
        "folders (CASE/CASE_t1.nii.gz, …, CASE_seg.nii.gz)"
    )


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from exc
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top level")
    return meta


def _require(meta: dict, keys: tuple[str, ...], path: Path, layout: str) -> None:
    missing = [k for k in keys if k not in meta]
    if missing:
        raise DatasetError(
            f"{path}: missing required key(s) {', '.join(missing)} for {layout} layout"
        )


def _parse_int_label(key: object, path: Path) -> int:
    try:
        return int(str(key))
    except ValueError:
        raise DatasetError(f"{path}: label value {key!r} is not an integer") from None


def _load_msd(root: Path) -> DatasetSpec:
    meta_path = root / "dataset.json"
    meta = _read_json(meta_path)
    _require(meta, ("modality", "labels", "training"), meta_path, "MSD v1")
    try:
        modality_items = sorted(meta["modality"].items(), key=lambda kv: int(kv[0]))
        labels = {_parse_int_label(k, meta_path): str(v) for k, v in meta["labels"].items()}
    except (AttributeError, ValueError) as exc:
        raise DatasetError(
            f"{meta_path}: 'modality' and 'labels' must map integers to names"
        ) from exc
    modalities = [str(v) for _, v in modality_items]
    if not isinstance(meta["training"], list):
        raise DatasetError(f"{meta_path}: 'training' must be a list of {{image, label}} entries")
    cases = []
    for i, entry in enumerate(meta["training"]):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise DatasetError(f"{meta_path}: training entry {i} lacks 'image' or 'label'")
        image = _resolve(root, entry["image"])
        label = _resolve(root, entry["label"])
        for p in (image, label):
            if not p.is_file():
                raise DatasetError(
                    f"{p}: listed in {meta_path.name} (training entry {i}) but missing"
                )
        cases.append(CaseSpec(strip_image_suffix(image.name), [image], label))
    return DatasetSpec(
        root=root,
        layout="msd",
        name=str(meta.get("name", root.name)),
        modalities=modalities,
        labels=labels,
        cases=cases,
        description=str(meta.get("description", "")),
    )


def _resolve(root: Path, rel: str) -> Path:
    return (root / str(rel)).resolve()


def _load_nnunet(root: Path) -> DatasetSpec:
    meta_path = root / "dataset.json"
    meta = _read_json(meta_path)
    _require(meta, ("channel_names", "labels", "file_ending"), meta_path, "nnU-Net v2")
    try:
        channel_items = sorted(meta["channel_names"].items(), key=lambda kv: int(kv[0]))
    except (AttributeError, ValueError) as exc:
        raise DatasetError(
            f"{meta_path}: 'channel_names' must map channel indices to names"
        ) from exc
    modalities = [str(v) for _, v in channel_items]
    labels: dict[int, str] = {}
    for name, value in meta["labels"].items():
        if isinstance(value, list):
            raise DatasetError(
                f"{meta_path}: label {name!r} is a region (list of values); region-based labels "
                "are not supported, declare one integer per label"
            )
        labels[_parse_int_label(value, meta_path)] = str(name)
    ending = str(meta["file_ending"])
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    if not labels_dir.is_dir():
        raise DatasetError(f"{labels_dir}: folder not found")
    label_files = sorted(
        p for p in labels_dir.iterdir() if p.name.endswith(ending) and not p.name.startswith(".")
    )
    channel_file = re.compile(rf"^(.*)_(\d{{4}}){re.escape(ending)}$")
    channels_found: dict[str, int] = {}
    if images_dir.is_dir():
        for p in images_dir.iterdir():
            m = channel_file.match(p.name)
            if m and not p.name.startswith("."):
                channels_found[m.group(1)] = max(
                    channels_found.get(m.group(1), 0), int(m.group(2)) + 1
                )
    cases = []
    for label_path in label_files:
        case_id = label_path.name[: -len(ending)]
        image_paths = [images_dir / f"{case_id}_{i:04d}{ending}" for i in range(len(modalities))]
        for p in image_paths:
            if not p.is_file():
                raise DatasetError(f"{p}: channel file of case {case_id} missing")
        if channels_found.get(case_id, 0) > len(modalities):
            raise DatasetError(
                f"{images_dir}: case {case_id} has {channels_found[case_id]} channel files but "
                f"dataset.json declares {len(modalities)} channels ({', '.join(modalities)})"
            )
        cases.append(CaseSpec(case_id, image_paths, label_path))
    expected = meta.get("numTraining")
    if isinstance(expected, int) and expected != len(cases):
        raise DatasetError(
            f"{meta_path}: numTraining is {expected} but {labels_dir} has {len(cases)} label files"
        )
    return DatasetSpec(
        root=root,
        layout="nnunet",
        name=str(meta.get("name", root.name)),
        modalities=modalities,
        labels=labels,
        cases=cases,
        description=str(meta.get("description", "")),
    )


def _brats_case_files(case_dir: Path) -> dict[str, Path]:
    """Map sequence/seg suffix → file for a BraTS case folder (empty if it is not one)."""
    found: dict[str, Path] = {}
    for f in case_dir.iterdir():
        if not is_image_file(f) or f.name.startswith("."):  # also macOS ._* resource forks
            continue
        stem = strip_image_suffix(f.name).lower()
        match = re.search(r"[_-]([a-z0-9]+)$", stem)
        if match:
            found[match.group(1)] = f
    if "seg" not in found:
        return {}
    return found


def _load_brats(root: Path) -> DatasetSpec:
    case_dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    cases: list[CaseSpec] = []
    convention: str | None = None
    for d in case_dirs:
        files = _brats_case_files(d)
        if not files:
            raise DatasetError(f"{d}: no *_seg image found in this BraTS case folder")
        this = next(
            (k for k, seqs in BRATS_SEQUENCES.items() if all(s in files for s in seqs)), None
        )
        if this is None:
            wanted = " or ".join("/".join(s) for s in BRATS_SEQUENCES.values())
            raise DatasetError(f"{d}: missing sequences; expected {wanted} (found {sorted(files)})")
        if convention is not None and this != convention:
            raise DatasetError(f"{d}: mixes BraTS 2021 and 2023 file naming with other cases")
        convention = this
        images = [files[s] for s in BRATS_SEQUENCES[this]]
        cases.append(CaseSpec(d.name, images, files["seg"]))
    conv = convention or "2021"
    labels = dict(BRATS_LABELS[conv])
    return DatasetSpec(
        root=root,
        layout="brats",
        name=root.name,
        modalities=[s.upper() for s in BRATS_SEQUENCES[conv]],
        labels=labels,
        cases=cases,
        extra={"brats_convention": conv},
    )
