"""Options of the ``prepare`` stage (dataset on disk → slice store), validated in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from synthaug.errors import SynthaugError

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
NORMALIZATIONS = ("auto", "mr", "ct", "none")


@dataclass
class PrepareOptions:
    """Options of the ``prepare`` stage (dataset on disk → slice store).

    resolution: output slice size in pixels (square).
    axis: slicing axis in RAS terms: axial (z), coronal (y) or sagittal (x).
    normalization: per-modality method, "auto" picks "ct" for modality names containing CT
        and "mr" otherwise; a single entry applies to all channels.
    ct_window: HU range mapped to [-1, 1] for CT channels.
    mr_percentiles: foreground percentiles clipped and mapped to [-1, 1] for MR channels.
    crop: "foreground" crops to the bounding box of non-background voxels before resizing.
    drop_empty: train without slices whose label has no foreground.
    drop_edge: train without this fraction of the slices at each end of the slicing axis.
        Both only mark slices: every patient is a test patient of one fold, and test
        patients keep every slice and voxel (``SliceStore.training_arrays`` applies them).
    group: how cases map to patients, the unit of the folds: "auto" (known naming schemes,
        ``splits.KNOWN_GROUPINGS``), "none" (each case a patient) or a regular expression
        whose first capture group of a case id is its patient.
    repeats: repeat the k-fold split this many times, each repeat a partition of the patients
        under another seeded permutation (repeat 0 is the plain k-fold split of ``seed``), for
        repeated k-fold cross-validation (the analysis then uses the Bouckaert–Frank
        correction); the store holds ``repeats × folds`` splits, index r·folds + f.
    repair_nonfinite: replace NaN/Inf voxels by the channel's finite minimum instead of failing.
    geometry_tolerance: relative spacing / absolute direction tolerance between image and label.
    """

    resolution: int = 64
    axis: str = "axial"
    folds: int = 5
    seed: int = 0
    val_fraction: float = 0.2
    normalization: list[str] = field(default_factory=lambda: ["auto"])
    ct_window: tuple[float, float] = (-1000.0, 1000.0)
    mr_percentiles: tuple[float, float] = (0.5, 99.5)
    crop: str = "foreground"
    drop_empty: bool = False
    drop_edge: float = 0.0
    repair_nonfinite: bool = False
    geometry_tolerance: float = 1e-3
    layout: str = "auto"
    workers: int = 2
    group: str = "auto"
    repeats: int = 1

    def validate(self) -> PrepareOptions:
        if self.resolution < 8 or self.resolution > 2048:
            raise SynthaugError(f"resolution: {self.resolution} is outside 8..2048")
        if self.axis not in AXES:
            raise SynthaugError(f"axis: {self.axis!r} is not one of {', '.join(AXES)}")
        if self.folds < 2:
            raise SynthaugError(f"folds: need at least 2, got {self.folds}")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 1:
            raise SynthaugError(f"repeats: need a whole number of at least 1, got {self.repeats!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SynthaugError(f"val_fraction: {self.val_fraction} is outside [0, 1)")
        for method in self.normalization:
            if method not in NORMALIZATIONS:
                raise SynthaugError(
                    f"normalization: {method!r} is not one of {', '.join(NORMALIZATIONS)}"
                )
        lo, hi = self.ct_window
        if not lo < hi:
            raise SynthaugError(f"ct_window: low {lo} must be below high {hi}")
        plo, phi = self.mr_percentiles
        if not 0.0 <= plo < phi <= 100.0:
            raise SynthaugError(f"mr_percentiles: need 0 <= low < high <= 100, got {plo}, {phi}")
        if self.crop not in ("foreground", "none"):
            raise SynthaugError(f"crop: {self.crop!r} is not one of foreground, none")
        if not 0.0 <= self.drop_edge < 0.5:
            raise SynthaugError(f"drop_edge: {self.drop_edge} is outside [0, 0.5)")
        if self.workers < 1:
            raise SynthaugError(f"workers: need at least 1, got {self.workers}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ct_window"] = list(self.ct_window)
        d["mr_percentiles"] = list(self.mr_percentiles)
        return d
