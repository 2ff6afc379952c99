"""Stage: train a generator on one fold's training patients, then score its snapshots.

Scores go to ``RUN/quality.json`` (written by ``quality.snapshots``); the family's own files
never depend on it. ``generate`` uses the best usable snapshot recorded there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.generator import RunDescription, TrainingHealth, TrainRequest
from synthaug.quality.features import DomainEncoderConfig
from synthaug.quality.snapshots import read_snapshot_scores, score_snapshots
from synthaug.stages.families import family, family_of

SNAPSHOT_SCORES = "quality.json"


@dataclass(frozen=True)
class GeneratorRun:
    """A trained run: where it is, what it learnt from, how training went and (when scored)
    its snapshot scores (``quality.snapshots.score_snapshots``'s result)."""

    run: Path
    description: RunDescription
    health: TrainingHealth | None
    scores: dict | None = None
    score_error: str | None = None

    @property
    def usable(self) -> bool | None:
        return None if self.scores is None else bool(self.scores["usable"])


def is_main_process() -> bool:
    """False in the non-zero ranks of a torchrun job, which leave artifacts to rank 0."""
    return os.environ.get("RANK", "0") == "0"


def train_generator(
    request: TrainRequest,
    family_name: str = "stylegan2",
    score: bool = True,
    tolerate_score_errors: bool = False,
) -> GeneratorRun:
    """Train (or resume) ``request`` with a family, then score every snapshot on the fold's
    validation patients. With ``tolerate_score_errors`` a scoring failure is returned in
    ``score_error`` instead of raised (the run itself is fine)."""
    fam = family(family_name)
    run = fam.train(request)
    result = GeneratorRun(run, fam.describe(run), fam.health(run))
    if not score or not is_main_process():
        return result
    try:
        scores = score_run(run)
    except SynthaugError as exc:
        if not tolerate_score_errors:
            raise
        return GeneratorRun(run, result.description, result.health, None, str(exc))
    return GeneratorRun(run, result.description, result.health, scores)


def score_run(
    run: Path | str,
    samples: int | None = None,
    cache_dir: Path | str | None = None,
    encoder_config: DomainEncoderConfig | None = None,
    seed: int = 0,
) -> dict:
    """Score every snapshot of a run (reusing earlier scores); writes ``RUN/quality.json``."""
    run = Path(run)
    fam = family_of(run)
    desc = fam.describe(run)
    return score_snapshots(
        SliceStore(desc.store),
        desc.fold,
        desc.variant,
        desc.outputs,
        fam.snapshots(run),
        lambda snap: fam.load(run, snap.path),
        run / SNAPSHOT_SCORES,
        samples=samples,
        cache_dir=cache_dir,
        encoder_config=encoder_config,
        seed=seed,
    )


def snapshot_scores(run: Path | str) -> dict | None:
    """The run's snapshot scores, None when it was not scored (or the file is torn)."""
    return read_snapshot_scores(Path(run) / SNAPSHOT_SCORES)


def chosen_snapshot(run: Path | str, named: Path | str | None = None) -> Path | None:
    """The snapshot ``generate`` uses: ``named``, else the best scored one, else the latest
    (None when the run has no snapshots)."""
    if named is not None:
        return Path(named)
    snapshots = {s.name: s.path for s in family_of(run).snapshots(Path(run))}
    scores = snapshot_scores(run)
    best = (scores or {}).get("best", {}).get("snapshot") if isinstance(scores, dict) else None
    if best in snapshots:
        return snapshots[best]
    return list(snapshots.values())[-1] if snapshots else None


def is_trained(run: Path | str, kimg: float) -> bool:
    """Whether a training call ended at ``kimg`` thousand images or beyond, or stopped early
    on its own (a sustained collapse: training on would not help)."""
    run = Path(run)
    try:
        fam = family_of(run)
    except SynthaugError:  # nothing trained there yet
        return False
    health = fam.health(run)
    return health is not None and (health.nimg >= kimg * 1000 or bool(health.stopped_early))


def is_scored(run: Path | str) -> bool:
    """Whether every snapshot of the run has a score."""
    scores = snapshot_scores(run)
    if not scores:
        return False
    scored = {r["snapshot"] for r in scores.get("snapshots", [])}
    return scored >= {s.name for s in family_of(run).snapshots(Path(run))}
