"""Where everything of a study lives: the one place that derives a study folder's paths.

    study.json                                 the config and its fingerprint
    results.csv, timings.json, stats.json      the results table, wall time per phase, statistics
    gans/DATASET/foldF/VARIANT/                StyleGAN2 run (train-gan; quality.json)
    generators/DATASET/foldF/FAMILY-VARIANT/   a run of any other generator family
    synthetic/DATASET/foldF/SOURCE/            max-n synthetic patients (generate)
    cells/DATASET/foldF/seedS/SOURCE-nN/       U-Net run (train-seg); n = 0 uses SOURCE "none"
    references/DATASET/foldF/ROLE/             real-only U-Nets that are not cells: the pair
                                               filter's ("filter") and the quality judge's
    quality/DATASET/foldF/SOURCE.json          image-quality metrics of a synthetic set

SOURCE folders use the source's slug (``real-mask-conditional.consistency-ge-0.5``); the
results table uses its name (``real-mask-conditional[consistency>=0.5]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthaug.stages.sources import GeneratorRef, SourceSpec

BASELINE_SOURCE = "none"  # the results table's source of the shared real-only (n = 0) cells


@dataclass(frozen=True)
class StudyLayout:
    """Paths inside one study folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def meta(self) -> Path:
        return self.root / "study.json"

    @property
    def results(self) -> Path:
        return self.root / "results.csv"

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    @property
    def stats(self) -> Path:
        return self.root / "stats.json"

    # ``level``: the real-patients level (None: the whole fold, whose paths have no level part,
    # as in studies before the axis); an artifact of level r lives under .../foldF/rR/.

    def _fold(self, kind: str, dataset: str, fold: int, level: int | None) -> Path:
        folder = self.root / kind / dataset / f"fold{fold}"
        return folder if level is None else folder / f"r{level}"

    def generator_run(
        self, dataset: str, fold: int, generator: GeneratorRef, level: int | None = None
    ) -> Path:
        if generator.family == "stylegan2":
            return self._fold("gans", dataset, fold, level) / generator.variant
        name = f"{generator.family}-{generator.variant}"
        return self._fold("generators", dataset, fold, level) / name

    def synthetic(
        self, dataset: str, fold: int, source: SourceSpec, level: int | None = None
    ) -> Path:
        return self._fold("synthetic", dataset, fold, level) / source.slug

    def cell(
        self, dataset: str, fold: int, seed: int, source: SourceSpec | None, n: int,
        level: int | None = None,
    ) -> Path:  # fmt: skip
        """A U-Net run; ``source`` None is the shared real-only baseline (n = 0)."""
        slug = BASELINE_SOURCE if source is None else source.slug
        return self._fold("cells", dataset, fold, level) / f"seed{seed}" / f"{slug}-n{n}"

    def reference(self, dataset: str, fold: int, role: str, level: int | None = None) -> Path:
        """A real-only U-Net that is not a study cell: the pair filter's or the judge's run."""
        return self._fold("references", dataset, fold, level) / role

    def quality(
        self, dataset: str, fold: int, source: SourceSpec, level: int | None = None
    ) -> Path:
        return self._fold("quality", dataset, fold, level) / f"{source.slug}.json"
