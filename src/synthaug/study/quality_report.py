"""The study report's quality sections: GAN health and FID over training (from each GAN run's
``quality.json``) and the image quality of each synthetic set (``quality/…/SOURCE.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from synthaug.config import parse_source
from synthaug.gan.checkpoint import QUALITY
from synthaug.quality.snapshots import primary_space, unusable_reason


def _gan_runs(root: Path, config: dict) -> list[tuple[str, int, str, dict]]:
    """(dataset, fold, variant, quality.json) of every scored GAN run of the study."""
    runs = []
    for ds in config.get("datasets", []):
        for fold in config.get("folds", []):
            base = root / "gans" / ds["name"] / f"fold{fold}"
            for variant in ("joint", "mask", "conditional"):
                path = base / variant / QUALITY
                if path.is_file():
                    runs.append((ds["name"], fold, variant, json.loads(path.read_text())))
    return runs


def _training_warnings(root: Path, dataset: str, fold: int, variant: str) -> list[str]:
    path = root / "gans" / dataset / f"fold{fold}" / variant / "summary.json"
    return json.loads(path.read_text()).get("warnings", []) if path.is_file() else []


def gan_health_table(root: Path, config: dict) -> pd.DataFrame:
    """Per GAN run: the best snapshot, its FID / precision / recall / diversity in the run's
    ranking space, the held-out real value of each, and whether the run is usable."""
    rows = []
    for dataset, fold, variant, q in _gan_runs(root, config):
        space = primary_space(variant)
        best = q["best"][space]
        held = q["held_out"][space]
        rows.append(
            {
                "dataset": dataset,
                "fold": fold,
                "variant": variant,
                "space": space,
                "best kimg": q["best"]["nimg"] / 1000,
                "FID": best["fid"],
                "FID held-out": held["fid"],
                "precision": best["precision"],
                "precision held-out": held["precision"],
                "recall": best["recall"],
                "recall held-out": held["recall"],
                "diversity": best["diversity"],
                "consistency": q["best"].get("consistency", np.nan),
                "consistency held-out": q["held_out"].get("consistency", np.nan),
                "usable": "yes" if q["usable"] else f"NO ({unusable_reason(q)})",
                "unusable snapshots": len(q.get("warnings", [])),
                "D-won ticks": len(_training_warnings(root, dataset, fold, variant)),
            }
        )
    return pd.DataFrame(rows).dropna(axis=1, how="all")


def plot_fid_over_training(root: Path, config: dict, path: Path) -> bool:
    """One panel per dataset: FID of each variant's snapshots (fold-wise lines) against kimg,
    the held-out real FID dashed. Returns False (and writes nothing) when no run was scored."""
    from synthaug.study.report import save_figure

    runs = _gan_runs(root, config)
    if not runs:
        return False
    datasets = sorted({r[0] for r in runs})
    colours = {"joint": "C0", "mask": "C1", "conditional": "C2"}
    fig = Figure(figsize=(4.2 * len(datasets), 3.0))
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        seen = set()
        for ds, _fold, variant, q in runs:
            if ds != dataset:
                continue
            space = primary_space(variant)
            kimg = [r["nimg"] / 1000 for r in q["snapshots"]]
            fid = [r[space]["fid"] for r in q["snapshots"]]
            label = f"{variant} ({space})" if variant not in seen else None
            seen.add(variant)
            ax.plot(kimg, fid, marker="o", ms=3, lw=1, color=colours[variant], label=label)
            ax.axhline(q["held_out"][space]["fid"], color=colours[variant], ls="--", lw=0.7)
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


def synthetic_quality_table(root: Path, config: dict) -> pd.DataFrame:
    """Per (dataset, source), averaged over folds: joint in-domain FID / KID / precision /
    recall of the synthetic set and of held-out real slices, mask–image consistency of the
    synthetic pairs and of real test slices (the ceiling), and a filter's acceptance rate."""
    rows = []
    for ds in config.get("datasets", []):
        for source in config.get("sources", []):
            slug = parse_source(source).slug
            for fold in config.get("folds", []):
                path = root / "quality" / ds["name"] / f"fold{fold}" / f"{slug}.json"
                if not path.is_file():
                    continue
                q = json.loads(path.read_text())
                joint = q.get("joint") or {}
                held = (q.get("real_baseline") or {}).get("joint") or {}
                cons = q.get("consistency") or {}
                rows.append(
                    {
                        "dataset": ds["name"],
                        "source": source,
                        "FID": joint.get("fid", np.nan),
                        "FID held-out": held.get("fid", np.nan),
                        "KID": joint.get("kid_mean", np.nan),
                        "precision": joint.get("precision", np.nan),
                        "recall": joint.get("recall", np.nan),
                        "consistency": (cons.get("synthetic") or {}).get("mean", np.nan),
                        "consistency real test": (cons.get("real_test") or {}).get("mean", np.nan),
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
