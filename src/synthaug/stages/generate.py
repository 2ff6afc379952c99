"""Stage: sample synthetic patients from a source and write them as an MSD v1 dataset.

A synthetic patient is S slices, S = the median slice count of the painter's real training
patients. ``real`` sources paint the masks of the fold's *training* patients only. With a pair
filter only accepted pairs are kept: sampling goes on until every patient is full, or stops
with an error at ``max_factor`` × the requested slices (nothing is written then).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthaug.data.mask_augment import deform_masks
from synthaug.data.provenance import check_patients, check_provenance
from synthaug.data.store import SliceStore
from synthaug.data.synthetic import SyntheticPatient, write_synthetic_dataset
from synthaug.errors import SynthaugError
from synthaug.generator import PairFilter, RunDescription, Sampler
from synthaug.precision import resolve_precision
from synthaug.progress import track
from synthaug.stages.families import family_of
from synthaug.stages.filters import consistency_filter
from synthaug.stages.sources import SourceKind, parse_filter, source_kind
from synthaug.stages.train_generator import chosen_snapshot
from synthaug.viz import pair_grid, png_bytes

REDRAWS_PER_MASK = 5
MASK_SEED_OFFSET = 500_009  # the mask generator's seeds differ from the painter's


@dataclass(frozen=True)
class GenerateOptions:
    """``patients`` synthetic patients of ``source`` from the painter run ``run`` into ``out``.

    mask_run: the mask generator's run (sources with generated masks). snapshot: the
    painter's weights (default: its best scored snapshot, else the latest). filter:
    ``consistency>=T`` keeps pairs the fold's real-only U-Net agrees with — ``reference_unet``
    (a real-only ``train-seg`` model.pt of ``unet_preset``) or one trained and cached.
    """

    run: str
    source: str
    patients: int
    out: str
    mask_run: str | None = None
    seed: int = 0
    truncation: float = 1.0
    overwrite: bool = False
    snapshot: str | None = None
    filter: str | None = None
    reference_unet: str | None = None
    unet_preset: str = "cpu-tiny"
    max_factor: float = 20.0
    precision: str | None = None  # sampling: None the run's, or auto / fp32 / bf16


@dataclass(frozen=True)
class GeneratedSet:
    """A written synthetic dataset: where, how much, from which weights, what the filter kept."""

    path: Path
    source: str
    patients: int
    slices_per_patient: int
    snapshot: str | None
    filter: dict | None = None

    @property
    def preview(self) -> Path:
        return self.path / "preview.png"


@dataclass
class FilterTally:
    """Counts what a pair filter saw and kept, and caps how much may be generated."""

    pair_filter: PairFilter
    cap: int
    generated: int = 0
    accepted: int = 0

    def keep(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        if self.generated >= self.cap:
            raise SynthaugError(
                f"filter {self.pair_filter.label}: only {self.accepted} of {self.generated} "
                f"generated pairs passed ({self.acceptance_rate:.1%}); stopped at the cap of "
                f"{self.cap} pairs before every patient was filled. Lower the threshold, raise "
                "--max-factor, or train the generator longer"
            )
        keep = np.asarray(self.pair_filter(images, masks), dtype=bool)
        self.generated += len(keep)
        self.accepted += int(keep.sum())
        return keep

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.generated if self.generated else float("nan")

    def describe(self) -> dict:
        return {
            **self.pair_filter.describe(),
            "generated": self.generated,
            "accepted": self.accepted,
            "acceptance_rate": round(self.acceptance_rate, 4),
        }


@dataclass(frozen=True)
class _Painting:
    """The samplers of one source and how to draw its masks."""

    painter: Sampler
    masker: Sampler | None
    truncation: float

    def pairs(
        self, masks: np.ndarray | None, count: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``count`` image–mask pairs: images [S, C, R, R], masks [S, R, R]."""
        if self.painter.outputs.masks:
            images, labels = self.painter.sample(count, seed, truncation=self.truncation)
        else:
            labels = masks
            if self.masker is not None:
                seed_m = seed + MASK_SEED_OFFSET
                _, labels = self.masker.sample(count, seed_m, truncation=self.truncation)
            images, painted = self.painter.sample(
                count, seed, masks=labels, truncation=self.truncation
            )
            if painted is not None:  # the masks the images belong to (e.g. deformed)
                labels = painted
        if images is None or labels is None:
            raise SynthaugError("generate: the generators returned no images or no masks")
        return images, labels


def _filtered_pairs(
    painting: _Painting,
    masks: np.ndarray | None,
    count: int,
    seed: int,
    tally: FilterTally,
    mask_pool: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``painting.pairs`` but only accepted pairs; rejected slices are drawn again.

    A real-mask patient first redraws only the images of its rejected masks; a mask still
    rejected after ``REDRAWS_PER_MASK`` tries (some masks are hard to paint whatever the
    latent) is swapped for another slice of the same real patient from ``mask_pool``.
    """
    images_out: list[np.ndarray] = []
    labels_out: list[np.ndarray] = []
    todo, pending = count, masks
    rng = np.random.default_rng(seed)
    for attempt in range(1_000_000):
        if pending is not None and mask_pool is not None and attempt >= REDRAWS_PER_MASK:
            pending = mask_pool[rng.integers(len(mask_pool), size=todo)]
        images, labels = painting.pairs(pending, todo, seed + attempt * 7_919)
        ok = tally.keep(images, labels)
        images_out.append(images[ok])
        labels_out.append(labels[ok])
        todo -= int(ok.sum())
        if todo == 0:
            break
        if pending is not None:
            pending = pending[~ok]
    return np.concatenate(images_out), np.concatenate(labels_out)


def _evenly(n_have: int, n_want: int) -> np.ndarray:
    """n_want indices spread evenly over 0..n_have-1 (in order; repeats when n_have < n_want)."""
    return np.round(np.linspace(0, n_have - 1, n_want)).astype(np.int64)


def sample_patients(
    painting: _Painting,
    kind: SourceKind,
    desc: RunDescription,
    patients: int,
    seed: int,
    tally: FilterTally | None = None,
) -> list[SyntheticPatient]:
    """``patients`` synthetic patients of ``desc.median_slices`` slices each."""
    store = SliceStore(desc.store) if kind.masks in ("real", "augmented") else None
    s = desc.median_slices
    out: list[SyntheticPatient] = []
    for i in track(range(patients), f"generate {kind.name}"):
        pseed = seed * 1_000_003 + i
        real_masks = pool = None
        if store is not None:
            real_id = desc.train_patients[i % len(desc.train_patients)]
            pool = store.training_arrays([real_id])[1]  # the masks training may use
            if kind.masks == "augmented":  # deformed, every class kept (data.mask_augment)
                pool = deform_masks(pool, pseed)
            real_masks = pool[_evenly(len(pool), s)]
        if tally is None:
            images, labels = painting.pairs(real_masks, s, pseed)
        else:
            images, labels = _filtered_pairs(painting, real_masks, s, pseed, tally, pool)
        out.append(SyntheticPatient(f"syn_{i:04d}", images, labels))
    return out


def _load_painting(options: GenerateOptions, kind: SourceKind) -> tuple[_Painting, Path | None]:
    """The source's samplers (painter at its chosen snapshot), checked against each other."""
    fam = family_of(options.run)
    desc = fam.describe(Path(options.run))
    if (desc.family, desc.variant) != (kind.painter.family, kind.painter.variant):
        raise SynthaugError(
            f"{options.run}: source {kind.name} needs a {kind.painter.family} "
            f"{kind.painter.variant} run, this run is {desc.family} {desc.variant}"
        )
    if desc.store_fingerprint:  # the store changed on disk since the run was trained?
        store = SliceStore(desc.store)
        check_provenance(options.run, "generator", desc.provenance(), store, desc.fold)
    snapshot = chosen_snapshot(options.run, options.snapshot)
    painter = fam.load(Path(options.run), snapshot)
    masker = None
    if kind.masks == "generated":
        masker = _load_masker(options, desc)
    if options.precision is not None:  # one precision for every network of the set
        used = resolve_precision(options.precision, "auto")
        for sampler in (painter, masker):
            if sampler is not None:
                sampler.precision = used
    return _Painting(painter, masker, options.truncation), snapshot


def _load_masker(options: GenerateOptions, desc: RunDescription) -> Sampler:
    if options.mask_run is None:
        raise SynthaugError(
            f"mask-run: source {options.source} needs --mask-run (a mask-variant run)"
        )
    fam = family_of(options.mask_run)
    mask_desc = fam.describe(Path(options.mask_run))
    store = SliceStore(desc.store)
    check_provenance(options.mask_run, "mask generator", mask_desc.provenance(), store, desc.fold)
    check_patients(
        options.mask_run, "mask generator", mask_desc.train_patients, desc.train_patients
    )
    if mask_desc.outputs.images or not mask_desc.outputs.masks:
        raise SynthaugError(
            f"{options.mask_run}: --mask-run must be a mask run, it is {mask_desc.variant}"
        )
    if mask_desc.labels != desc.labels or mask_desc.resolution != desc.resolution:
        raise SynthaugError(
            f"{options.mask_run}: mask run labels {mask_desc.labels} at {mask_desc.resolution} px "
            f"differ from the painter run's {desc.labels} at {desc.resolution} px"
        )
    return fam.load(Path(options.mask_run), chosen_snapshot(options.mask_run))


def _preview(patients: list[SyntheticPatient]) -> bytes:
    """Four slices of each of the first four patients, as an image–mask grid."""
    images = np.concatenate([p.images[:: max(1, len(p.images) // 4)][:4] for p in patients[:4]])
    labels = np.concatenate([p.labels[:: max(1, len(p.labels) // 4)][:4] for p in patients[:4]])
    return png_bytes(pair_grid(images, labels, columns=2), scale=2)


def _check(options: GenerateOptions) -> SourceKind:
    if Path(options.out).exists() and not options.overwrite:
        raise SynthaugError(f"{options.out}: already exists; pass --overwrite to replace it")
    kind = source_kind(options.source)
    if options.patients < 1:
        raise SynthaugError(f"patients: must be at least 1, got {options.patients}")
    if options.max_factor < 1:
        raise SynthaugError(f"max-factor: must be at least 1, got {options.max_factor}")
    return kind


def generate(options: GenerateOptions, pair_filter: PairFilter | None = None) -> GeneratedSet:
    """Write ``options.patients`` synthetic patients as an MSD v1 dataset (+ preview.png).

    ``pair_filter`` (else the one ``options.filter`` names) keeps only the pairs it accepts;
    what it saw and kept is recorded in dataset.json.
    """
    kind = _check(options)
    threshold = parse_filter(options.filter) if options.filter is not None else None
    painting, snapshot = _load_painting(options, kind)
    desc = family_of(options.run).describe(Path(options.run))
    if pair_filter is None and threshold is not None:
        store = SliceStore(desc.store)
        pair_filter = consistency_filter(
            store, desc.fold, threshold, options.reference_unet, options.unet_preset
        )
    tally = None
    if pair_filter is not None:
        cap = int(options.max_factor * options.patients * desc.median_slices)
        tally = FilterTally(pair_filter, cap)
    patients = sample_patients(painting, kind, desc, options.patients, options.seed, tally)
    provenance = {
        "name": f"{desc.store_name}-{options.source}",
        "source": options.source,
        "family": desc.family,
        "run": str(Path(options.run).resolve()),
        "snapshot": str(snapshot) if snapshot else None,
        "mask_run": str(Path(options.mask_run).resolve()) if options.mask_run else None,
        "store": desc.store,
        "store_fingerprint": desc.store_fingerprint,
        "fold": desc.fold,
        # the real patients behind the set: a U-Net may use it only with exactly these
        "train_patients": list(desc.train_patients),
        "seed": options.seed,
        "truncation_psi": options.truncation,
        "precision": painting.painter.precision,
        "slices_per_patient": desc.median_slices,
        "filter": None if tally is None else tally.describe(),
    }
    path = write_synthetic_dataset(
        options.out,
        patients,
        desc.modalities,
        desc.labels,
        pixel_size_mm=desc.pixel_size_mm,
        provenance=provenance,
        overwrite=options.overwrite,
        extra_files={"preview.png": _preview(patients)},
    )
    return GeneratedSet(
        path, options.source, options.patients, desc.median_slices, provenance["snapshot"],
        provenance["filter"],
    )  # fmt: skip
