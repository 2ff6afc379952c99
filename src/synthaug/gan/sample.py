"""Sampling synthetic patients from trained generators (the ``generate`` stage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthaug.config import SOURCE_VARIANTS, SOURCES
from synthaug.data.store import SliceStore
from synthaug.data.synthetic import SyntheticPatient, write_synthetic_dataset
from synthaug.errors import SynthaugError
from synthaug.gan.checkpoint import CHECKPOINT, best_snapshot, list_snapshots, load_torch
from synthaug.gan.networks import Generator, masks_to_onehot
from synthaug.gan.run import RunInfo
from synthaug.progress import track


@dataclass
class LoadedGenerator:
    """A run's G_ema in eval mode with its metadata."""

    generator: Generator
    info: RunInfo
    snapshot: Path


def load_generator_path(run: Path | str, snapshot: Path | str | None = None) -> Path:
    """The weights ``load_generator`` would read (see there)."""
    if snapshot is not None:
        return Path(snapshot)
    snaps = list_snapshots(Path(run))
    return best_snapshot(Path(run)) or (snaps[-1] if snaps else Path(run) / CHECKPOINT)


def load_generator(run: Path | str, snapshot: Path | str | None = None) -> LoadedGenerator:
    """Load G_ema of a run: the named snapshot, else the best one by in-domain FID on the
    fold's training patients (``RUN/quality.json``), else the latest one (else checkpoint.pt)."""
    run = Path(run)
    info = RunInfo.read(run)
    snapshot = load_generator_path(run, snapshot)
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


@dataclass
class ConsistencyFilter:
    """Keeps a generated pair when a real-only U-Net finds its mask in its image: per-slice
    consistency Dice (mean over the foreground classes in either mask or prediction) at least
    ``threshold``. Slices with no foreground in mask nor prediction have nothing to disagree on
    and are kept. At most ``max_factor`` × the requested slices are generated (the cap)."""

    model: nn.Module
    threshold: float
    num_classes: int
    max_factor: float = 20.0
    generated: int = 0
    accepted: int = 0

    def keep(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        from synthaug.quality.consistency import consistency_dice

        dice = consistency_dice(self.model, images, labels, self.num_classes)
        keep = ~(dice < self.threshold)  # NaN (nothing to agree on) is kept
        self.generated += len(keep)
        self.accepted += int(keep.sum())
        return keep

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.generated if self.generated else float("nan")

    def describe(self) -> dict:
        return {
            "metric": "consistency",
            "threshold": self.threshold,
            "generated": self.generated,
            "accepted": self.accepted,
            "acceptance_rate": round(self.acceptance_rate, 4),
        }


def _patient_slices(
    gen: LoadedGenerator,
    masker: LoadedGenerator | None,
    real_labels: np.ndarray | None,
    count: int,
    seed: int,
    truncation_psi: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` image–mask pairs for one patient: images [S, C, R, R], labels [S, R, R]."""
    if gen.info.variant == "joint":
        images, labels = generate_slices(gen, count, seed, truncation_psi=truncation_psi)
    else:
        if masker is not None:
            _, labels = generate_slices(
                masker, count, seed + 500_009, truncation_psi=truncation_psi
            )
        else:
            labels = real_labels
        images, _ = generate_slices(gen, count, seed, labels=labels, truncation_psi=truncation_psi)
    assert images is not None and labels is not None
    return images, labels


REDRAWS_PER_MASK = 5


def _filtered_patient(
    gen: LoadedGenerator,
    masker: LoadedGenerator | None,
    real_labels: np.ndarray | None,
    count: int,
    seed: int,
    truncation_psi: float,
    keep: ConsistencyFilter,
    cap: int,
    mask_pool: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_patient_slices` but only accepted pairs; rejected slices are drawn again.

    A real-mask patient first redraws only the images of its rejected masks; a mask still
    rejected after ``REDRAWS_PER_MASK`` tries (some masks are hard to paint whatever the
    latent) is swapped for another slice of the same real patient from ``mask_pool``.
    """
    images_out: list[np.ndarray] = []
    labels_out: list[np.ndarray] = []
    todo = count
    pending = real_labels
    rng = np.random.default_rng(seed)
    for attempt in range(1_000_000):
        if pending is not None and mask_pool is not None and attempt >= REDRAWS_PER_MASK:
            pending = mask_pool[rng.integers(len(mask_pool), size=todo)]
        if keep.generated >= cap:
            raise SynthaugError(
                f"filter consistency>={keep.threshold:g}: only {keep.accepted} of "
                f"{keep.generated} generated pairs passed ({keep.acceptance_rate:.1%}); "
                f"stopped at the cap of {cap} pairs before every patient was filled. Lower the "
                "threshold, raise --max-factor, or train the generator longer"
            )
        images, labels = _patient_slices(
            gen, masker, pending, todo, seed + attempt * 7_919, truncation_psi
        )
        ok = keep.keep(images, labels)
        images_out.append(images[ok])
        labels_out.append(labels[ok])
        todo -= int(ok.sum())
        if todo == 0:
            break
        if pending is not None:
            pending = pending[~ok]
    return np.concatenate(images_out), np.concatenate(labels_out)


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
    consistency_filter: ConsistencyFilter | None = None,
) -> tuple[list[SyntheticPatient], RunInfo]:
    """Synthetic patients from a source (joint | mask-conditional | real-mask-conditional).

    Each patient is S slices, S = the median slice count of the run's real training patients.
    ``real-mask-conditional`` paints the masks of the fold's *training* patients only. With
    ``consistency_filter`` only pairs it accepts are kept, sampling on until every patient
    is full (or its cap is hit: an error, nothing is returned).
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
    cap = int(consistency_filter.max_factor * patients * s) if consistency_filter is not None else 0
    out: list[SyntheticPatient] = []
    for i in track(range(patients), f"generate {source}"):
        pseed = seed * 1_000_003 + i
        real_labels = patient_labels = None
        if store is not None:
            real_id = info.train_patients[i % len(info.train_patients)]
            patient_labels = store.patient(real_id)[1].astype(np.int64)
            real_labels = patient_labels[_evenly(len(patient_labels), s)]
        if consistency_filter is None:
            images, labels = _patient_slices(gen, masker, real_labels, s, pseed, truncation_psi)
        else:
            images, labels = _filtered_patient(
                gen,
                masker,
                real_labels,
                s,
                pseed,
                truncation_psi,
                consistency_filter,
                cap,
                patient_labels,
            )
        out.append(SyntheticPatient(f"syn_{i:04d}", images, labels))
    return out, info


def make_consistency_filter(
    run: Path | str,
    threshold: float,
    reference_unet: Path | str | None = None,
    unet_preset: str = "cpu-tiny",
    max_factor: float = 20.0,
) -> ConsistencyFilter:
    """A :class:`ConsistencyFilter` for a run's fold: the given real-only U-Net weights
    (``model.pt`` of a real-only ``train-seg`` run with ``unet_preset``), else one trained on the
    fold's real training patients and cached in the store's cache folder."""
    from synthaug.quality.consistency import load_unet, train_reference_unet

    if not 0.0 <= threshold <= 1.0:
        raise SynthaugError(f"filter: threshold must be in [0, 1], got {threshold}")
    if max_factor < 1:
        raise SynthaugError(f"max-factor: must be at least 1, got {max_factor}")
    info = RunInfo.read(run)
    store = SliceStore(info.store)
    if reference_unet is not None:
        model = load_unet(reference_unet, store, unet_preset)
    else:
        model = train_reference_unet(store, info.fold, store.cache_dir, unet_preset)
    return ConsistencyFilter(model.eval(), threshold, store.num_classes, max_factor)


def generate(
    run: Path | str,
    source: str,
    patients: int,
    out: Path | str,
    seed: int = 0,
    mask_run: Path | str | None = None,
    truncation_psi: float = 1.0,
    overwrite: bool = False,
    snapshot: Path | str | None = None,
    consistency_filter: ConsistencyFilter | None = None,
) -> Path:
    """Write ``patients`` synthetic patients from ``source`` as an MSD v1 dataset (+ preview.png).

    The generator is the named ``snapshot``, else the run's best by in-domain FID (when it was
    scored), else its latest. ``consistency_filter`` keeps only pairs it accepts; its
    acceptance rate is recorded in dataset.json.
    """
    from synthaug.viz import pair_grid, png_bytes

    out = Path(out)
    if out.exists() and not overwrite:
        raise SynthaugError(f"{out}: already exists; pass --overwrite to replace it")
    synthetic, info = sample_patients(
        run,
        source,
        patients,
        seed,
        mask_run,
        truncation_psi,
        snapshot=snapshot,
        consistency_filter=consistency_filter,
    )
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
        "snapshot": str(load_generator_path(run, snapshot)),
        "mask_run": str(Path(mask_run).resolve()) if mask_run else None,
        "fold": info.fold,
        "seed": seed,
        "truncation_psi": truncation_psi,
        "slices_per_patient": info.median_slices,
        "filter": None if consistency_filter is None else consistency_filter.describe(),
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
