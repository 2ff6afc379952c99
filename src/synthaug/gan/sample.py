"""Sampling synthetic patients from trained generators (the ``generate`` stage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthaug.config import SOURCE_VARIANTS, SOURCES
from synthaug.data.store import SliceStore
from synthaug.data.synthetic import SyntheticPatient, write_synthetic_dataset
from synthaug.errors import SynthaugError
from synthaug.gan.checkpoint import CHECKPOINT, list_snapshots, load_torch
from synthaug.gan.networks import Generator, masks_to_onehot
from synthaug.gan.run import RunInfo
from synthaug.progress import track


@dataclass
class LoadedGenerator:
    """A run's G_ema in eval mode with its metadata."""

    generator: Generator
    info: RunInfo
    snapshot: Path


def load_generator(run: Path | str, snapshot: Path | str | None = None) -> LoadedGenerator:
    """Load G_ema of a run: the named snapshot, else the latest one (else checkpoint.pt)."""
    run = Path(run)
    info = RunInfo.read(run)
    if snapshot is None:
        snaps = list_snapshots(run)
        snapshot = snaps[-1] if snaps else run / CHECKPOINT
    snapshot = Path(snapshot)
    state = load_torch(snapshot)
    meta = state["meta"]
    if meta.get("variant") != info.variant or meta.get("resolution") != info.resolution:
        raise SynthaugError(
            f"{snapshot}: checkpoint is {meta.get('variant')} at {meta.get('resolution')} px, "
            f"but {run} is a {info.variant} run at {info.resolution} px"
        )
    generator, _ = info.build()
    try:
        generator.load_state_dict(state["G_ema"])
    except (RuntimeError, KeyError) as exc:
        raise SynthaugError(
            f"{snapshot}: weights do not fit the run's network ({str(exc)[:160]})"
        ) from exc
    generator.eval().requires_grad_(False)
    return LoadedGenerator(generator, info, snapshot)


@torch.no_grad()
def generate_slices(
    gen: LoadedGenerator,
    count: int,
    seed: int,
    labels: np.ndarray | None = None,
    truncation_psi: float = 1.0,
    batch: int = 64,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``count`` slices from one generator, deterministic for ``seed``.

    Returns (images [N, C, R, R] float32 | None, labels [N, R, R] int64 | None); for the
    conditional variant ``labels`` [N, R, R] are the masks to paint.
    """
    spec = gen.info.spec
    torch.manual_seed(seed)  # also seeds the per-layer noise inputs
    g = torch.Generator().manual_seed(seed)
    images, masks = [], []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        z = torch.randn(n, gen.generator.z_dim, generator=g)
        cond = None
        if spec.variant == "conditional":
            assert labels is not None
            cond = masks_to_onehot(torch.from_numpy(labels[start : start + n]), spec.num_classes)
        out = gen.generator(z, cond, truncation_psi=truncation_psi, noise_mode="random")
        img, lab = spec.split_generated(out)
        if img is not None:
            images.append(img.clamp(-1, 1).numpy())
        if lab is not None:
            masks.append(lab.numpy())
    return (
        np.concatenate(images) if images else None,
        np.concatenate(masks) if masks else None,
    )


def _evenly(n_have: int, n_want: int) -> np.ndarray:
    """n_want indices spread evenly over 0..n_have-1 (in order; repeats when n_have < n_want)."""
    return np.round(np.linspace(0, n_have - 1, n_want)).astype(np.int64)


def sample_patients(
    run: Path | str,
    source: str,
    patients: int,
    seed: int = 0,
    mask_run: Path | str | None = None,
    truncation_psi: float = 1.0,
    slices_per_patient: int | None = None,
    snapshot: Path | str | None = None,
    mask_snapshot: Path | str | None = None,
) -> tuple[list[SyntheticPatient], RunInfo]:
    """Synthetic patients from a source (joint | mask-conditional | real-mask-conditional).

    Each patient is S slices, S = the median slice count of the run's real training patients.
    ``real-mask-conditional`` paints the masks of the fold's *training* patients only.
    """
    if source not in SOURCES:
        raise SynthaugError(
            f"source: unknown source {source!r}; choose one of {', '.join(SOURCES)}"
        )
    if patients < 1:
        raise SynthaugError(f"patients: must be at least 1, got {patients}")
    gen = load_generator(run, snapshot)
    info = gen.info
    wanted = SOURCE_VARIANTS[source][-1]  # the variant that paints the images
    if info.variant != wanted:
        raise SynthaugError(
            f"{run}: source {source} needs a {wanted} run, this run is {info.variant}"
        )
    masker: LoadedGenerator | None = None
    if source == "mask-conditional":
        if mask_run is None:
            raise SynthaugError(
                "mask-run: source mask-conditional needs --mask-run (a mask-variant run)"
            )
        masker = load_generator(mask_run, mask_snapshot)
        if masker.info.variant != "mask":
            raise SynthaugError(
                f"{mask_run}: --mask-run must be a mask run, it is {masker.info.variant}"
            )
        if masker.info.labels != info.labels or masker.info.resolution != info.resolution:
            raise SynthaugError(
                f"{mask_run}: mask run labels {masker.info.labels} at {masker.info.resolution} px differ "
                f"from the conditional run's {info.labels} at {info.resolution} px"
            )
    store = SliceStore(info.store) if source == "real-mask-conditional" else None
    s = slices_per_patient or info.median_slices
    out: list[SyntheticPatient] = []
    for i in track(range(patients), f"generate {source}"):
        pseed = seed * 1_000_003 + i
        if source == "joint":
            images, labels = generate_slices(gen, s, pseed, truncation_psi=truncation_psi)
        else:
            if masker is not None:
                _, labels = generate_slices(
                    masker, s, pseed + 500_009, truncation_psi=truncation_psi
                )
            else:
                assert store is not None
                real_id = info.train_patients[i % len(info.train_patients)]
                real_labels = store.patient(real_id)[1]
                labels = real_labels[_evenly(len(real_labels), s)]
            images, _ = generate_slices(gen, s, pseed, labels=labels, truncation_psi=truncation_psi)
        assert images is not None and labels is not None
        out.append(SyntheticPatient(f"syn_{i:04d}", images, labels))
    return out, info


def generate(
    run: Path | str,
    source: str,
    patients: int,
    out: Path | str,
    seed: int = 0,
    mask_run: Path | str | None = None,
    truncation_psi: float = 1.0,
    overwrite: bool = False,
) -> Path:
    """Write ``patients`` synthetic patients from ``source`` as an MSD v1 dataset (+ preview.png)."""
    from synthaug.viz import pair_grid, png_bytes

    out = Path(out)
    if out.exists() and not overwrite:
        raise SynthaugError(f"{out}: already exists; pass --overwrite to replace it")
    synthetic, info = sample_patients(run, source, patients, seed, mask_run, truncation_psi)
    preview_images = np.concatenate(
        [p.images[:: max(1, len(p.images) // 4)][:4] for p in synthetic[:4]]
    )
    preview_labels = np.concatenate(
        [p.labels[:: max(1, len(p.labels) // 4)][:4] for p in synthetic[:4]]
    )
    preview = png_bytes(pair_grid(preview_images, preview_labels, columns=2), scale=2)
    provenance = {
        "name": f"{info.store_name}-{source}",
        "source": source,
        "run": str(Path(run).resolve()),
        "mask_run": str(Path(mask_run).resolve()) if mask_run else None,
        "fold": info.fold,
        "seed": seed,
        "truncation_psi": truncation_psi,
        "slices_per_patient": info.median_slices,
    }
    return write_synthetic_dataset(
        out,
        synthetic,
        info.modalities,
        info.labels,
        pixel_size_mm=info.pixel_size_mm,
        provenance=provenance,
        overwrite=overwrite,
        extra_files={"preview.png": preview},
    )
