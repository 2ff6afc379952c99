"""The fold's reference U-Net: a real-only segmenter that judges synthetic pairs (mask–image
consistency) and filters them. A ``model.pt`` of a real-only ``train-seg`` run, or one trained
here on the fold's real patients and cached in the store's cache folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from synthaug.data.provenance import check_provenance
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.seg.network import build_unet
from synthaug.seg.presets import seg_preset
from synthaug.seg.train import MODEL, SEG_META, SegOptions, train_seg


def unet_provenance(path: Path | str) -> dict | None:
    """The store and fold a ``train-seg`` model.pt belongs to (its run's seg.json)."""
    meta = Path(path).parent / SEG_META
    try:
        return json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def load_checked_unet(
    path: Path | str, store: SliceStore, fold: int, preset: str = "cpu-tiny"
) -> nn.Module:
    """A user-given real-only U-Net, refused unless it was trained on ``fold`` of ``store``
    (one of another fold has seen this fold's test patients)."""
    check_provenance(path, "U-Net", unet_provenance(path), store, fold)
    return load_unet(path, store, preset)


def load_unet(path: Path | str, store: SliceStore, preset: str = "cpu-tiny") -> nn.Module:
    """A U-Net from a ``model.pt`` written by ``train-seg`` (weights only), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise SynthaugError(f"{path}: U-Net weights not found")
    model = build_unet(store.num_channels, store.num_classes, seg_preset(preset))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise SynthaugError(
            f"{path}: not U-Net weights for this store and preset {preset!r} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''})"
        ) from exc
    return model.eval()


def reference_unet_dir(
    store: SliceStore,
    fold: int,
    cache_dir: Path | str,
    preset: str = "cpu-tiny",
    seed: int = 0,
    max_steps: int | None = None,
) -> Path:
    """Where the cached real-only reference U-Net of (store, fold, preset, seed) lives."""
    split = store.split(fold)
    key = hashlib.sha256(
        json.dumps(
            {
                "store": store.fingerprint,
                "train": split.train,
                "val": split.val,
                "preset": preset,
                "seed": seed,
                "max_steps": max_steps,
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:12]
    return Path(cache_dir) / f"reference-unet-fold{fold}-{preset}-s{seed}-{key}"


def train_reference_unet(
    store: SliceStore,
    fold: int,
    cache_dir: Path | str,
    preset: str = "cpu-tiny",
    seed: int = 0,
    device: str = "cpu",
    max_steps: int | None = None,
) -> nn.Module:
    """The real-only U-Net of the fold (train-seg with no synthetic data), trained once and
    cached under ``cache_dir``; a finished run is reused, an interrupted one resumed."""
    seg_preset(preset)  # unknown preset → clear error before any work
    out = reference_unet_dir(store, fold, cache_dir, preset, seed, max_steps)
    train_seg(
        SegOptions(
            store=str(store.path),
            fold=fold,
            out=str(out),
            seed=seed,
            preset=preset,
            device=device,
            resume=True,
            max_steps=max_steps,
        )
    )
    return load_unet(out / MODEL, store, preset).to(device)
