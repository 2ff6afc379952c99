"""Stage: train a U-Net on a fold's real (+ n synthetic) patients, select it on REAL validation
patients and evaluate it on REAL test patients (``seg.train``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthaug.seg.train import MODEL, RESULTS, SegOptions, SegResults, train_seg


@dataclass(frozen=True)
class SegRun:
    """A finished U-Net run: its folder and what it measured (``results.json``)."""

    out: Path
    results: SegResults

    @property
    def test_mean_dice(self) -> float:
        """Mean over real test patients of the per-patient mean foreground Dice."""
        return float(self.results.test_mean_dice)

    @property
    def test_patients(self) -> int:
        return len({row["patient"] for row in self.results.test})

    @property
    def best_step(self) -> int:
        return int(self.results.best_step)

    @property
    def model(self) -> Path:
        return self.out / MODEL


def train_unet(options: SegOptions) -> SegRun:
    """Train (or resume, or read back when finished) one U-Net run."""
    return SegRun(Path(options.out), train_seg(options))


def is_finished(out: Path | str) -> bool:
    return (Path(out) / RESULTS).is_file()
