"""The study report's quality sections: generator health and FID over training (from each
run's snapshot scores) and the image quality of each synthetic set (``quality/…/SOURCE.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from synthaug.data.store import SliceStore
from synthaug.quality.evaluate import consistency_ceiling, synthetic_arrays
from synthaug.quality.snapshots import unusable_reason
from synthaug.stages.families import family_of
from synthaug.stages.sources import GeneratorRef
from synthaug.stages.train_generator import snapshot_scores
from synthaug.study.config import StudyConfig
from synthaug.study.layout import StudyLayout
from synthaug.viz import pair_grid, save_figure, save_png


@dataclass(frozen=True)
class ScoredRun:
    """A study generator run with its snapshot scores."""

    dataset: str
    fold: int
    generator: GeneratorRef
    run: Path
    scores: dict

    @property
    def space(self) -> str:
        """The feature space the run is ranked in (older score files lack the field)."""
        return self.scores.get("space", "mask" if self.generator.variant == "mask" else "image")

    @property
    def name(self) -> str:
        g = self.generator
        return g.variant if g.family == "stylegan2" else f"{g.family} {g.variant}"


def scored_runs(layout: StudyLayout, config: StudyConfig) -> list[ScoredRun]:
    """Every scored generator run of the study."""
    runs = []
    for ds in config.datasets:
        for fold in config.folds:
            for generator in config.generators():
                run = layout.generator_run(ds.name, fold, generator)
                scores = snapshot_scores(run)
                if scores:
                    runs.append(ScoredRun(ds.name, fold, generator, run, scores))
    return runs


def _training_warnings(run: Path) -> list[str]:
    health = family_of(run).health(run)
    return health.warnings if health else []


def _baseline(scores: dict) -> dict:
    """The real baseline of a run's scores (older score files call it "held_out")."""
    return scores.get("baseline") or scores.get("held_out") or {}


def gan_health_table(layout: StudyLayout, config: StudyConfig) -> pd.DataFrame:
    """Per generator run: the best snapshot, its FID / precision / recall / diversity against
    the validation reference in the run's ranking space, the real baseline of each (training
    slices at equal N), memorisation, and whether the run is usable."""
    rows = []
    for r in scored_runs(layout, config):
        dataset, fold, q, space = r.dataset, r.fold, r.scores, r.space
        best = q["best"][space]
        held = _baseline(q)[space]
        memo = q["best"].get("memorisation") or {}
        rows.append(
            {
                "dataset": dataset,
                "fold": fold,
                "variant": r.name,
                "space": space,
                "best kimg": q["best"]["nimg"] / 1000,
                "FID": best["fid"],
                "FID real": held["fid"],
                "precision": best["precision"],
                "precision real": held["precision"],
                "recall": best["recall"],
                "recall real": held["recall"],
                "diversity": best["diversity"],
                "too close": memo.get("too_close", np.nan),
                "consistency": q["best"].get("consistency", np.nan),
                "consistency real": _baseline(q).get("consistency", np.nan),
                "usable": "yes" if q["usable"] else f"NO ({unusable_reason(q)})",
                "unusable snapshots": len(q.get("warnings", [])),
                "D-won ticks": len(_training_warnings(r.run)),
            }
        )
    return pd.DataFrame(rows).dropna(axis=1, how="all")


def plot_fid_over_training(layout: StudyLayout, config: StudyConfig, path: Path) -> bool:
    """One panel per dataset: FID of each generator's snapshots (fold-wise lines) against kimg,
    the held-out real FID dashed. Returns False (and writes nothing) when no run was scored."""
    runs = scored_runs(layout, config)
    if not runs:
        return False
    datasets = sorted({r.dataset for r in runs})
    names = sorted({r.name for r in runs}, key=[r.name for r in runs].index)
    colours = {name: f"C{i}" for i, name in enumerate(names)}
    fig = Figure(figsize=(4.2 * len(datasets), 3.0))
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        seen = set()
        for run in runs:
            if run.dataset != dataset:
                continue
            q, space, colour = run.scores, run.space, colours[run.name]
            kimg = [r["nimg"] / 1000 for r in q["snapshots"]]
            fid = [r[space]["fid"] for r in q["snapshots"]]
            label = f"{run.name} ({space})" if run.name not in seen else None
            seen.add(run.name)
            ax.plot(kimg, fid, marker="o", ms=3, lw=1, color=colour, label=label)
            ax.axhline(_baseline(q)[space]["fid"], color=colour, ls="--", lw=0.7)
            for r in q["snapshots"]:
                if r["collapsed"]:
                    ax.plot(r["nimg"] / 1000, r[space]["fid"], "x", color="red", ms=7)
        ax.set_yscale("log")
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("kimg", fontsize=8)
        ax.set_ylabel("in-domain FID (log)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def synthetic_quality_table(layout: StudyLayout, config: StudyConfig) -> pd.DataFrame:
    """Per (dataset, source), averaged over folds: joint in-domain FID / KID / precision /
    recall of the synthetic set and of held-out real slices, mask–image consistency of the
    synthetic pairs and of real validation slices (the ceiling; real test slices in a
    ``quality.json`` written before the ceiling moved to validation), and a filter's acceptance
    rate."""
    rows = []
    for ds in config.datasets:
        for spec in config.source_specs():
            for fold in config.folds:
                path = layout.quality(ds.name, fold, spec)
                if not path.is_file():
                    continue
                q = json.loads(path.read_text())
                joint = q.get("joint") or {}
                held = (q.get("real_baseline") or {}).get("joint") or {}
                cons = q.get("consistency") or {}
                memo = q.get("memorisation") or {}
                rows.append(
                    {
                        "dataset": ds.name,
                        "source": spec.name,
                        "N": q.get("n_compared", np.nan),
                        "FID": joint.get("fid", np.nan),
                        "FID held-out": held.get("fid", np.nan),
                        "KID": joint.get("kid_mean", np.nan),
                        "precision": joint.get("precision", np.nan),
                        "recall": joint.get("recall", np.nan),
                        "consistency": (cons.get("synthetic") or {}).get("mean", np.nan),
                        "consistency real val": (consistency_ceiling(cons) or {}).get(
                            "mean", np.nan
                        ),
                        "too close": memo.get("too_close", np.nan),
                        "accepted": (q.get("filter") or {}).get("acceptance_rate", np.nan),
                        "class TV": q["labels"]["class_frequency"]["total_variation"],
                        **{
                            f"FID {m}": v["fid"]
                            for m, v in (q.get("modalities") or {}).items()
                            if v is not None
                        },
                    }
                )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    out = df.groupby(["dataset", "source"], sort=False).mean(numeric_only=True).reset_index()
    return out.dropna(axis=1, how="all")


def closest_pairs_grids(
    layout: StudyLayout, config: StudyConfig, out: Path
) -> list[tuple[str, str]]:
    """Per (dataset, source), first fold: the synthetic slices closest to a real training slice,
    each beside that training slice — copying is something a person can see."""
    figures = []
    fold = config.folds[0]
    for ds in config.datasets:
        store = SliceStore(ds.store)
        for spec in config.source_specs():
            path = layout.quality(ds.name, fold, spec)
            memo = (json.loads(path.read_text()) if path.is_file() else {}).get("memorisation")
            if not memo or not memo.get("closest"):
                continue
            images, masks = synthetic_arrays(layout.synthetic(ds.name, fold, spec), store)
            pairs_x, pairs_y = [], []
            for pair in memo["closest"]:
                pairs_x += [images[pair["synthetic"]], store.images[pair["store_slice"]]]
                pairs_y += [masks[pair["synthetic"]], store.labels[pair["store_slice"]]]
            name = f"closest-{ds.name}-{spec.slug}.png"
            grid = pair_grid(np.stack(pairs_x).astype(np.float32), np.stack(pairs_y), columns=2)
            save_png(out / name, grid, scale=2)
            figures.append(
                (
                    f"{ds.name} · {spec.name}: the {len(memo['closest'])} synthetic slices closest "
                    f"to a real training slice (left) beside it (right), fold {fold}; "
                    f"{memo['too_close']:.0%} of the set is closer than 95% of real validation "
                    "slices are (about 5% expected without copying)",
                    name,
                )
            )
    return figures
