"""What synthetic patients are worth in real patients, from the real-only learning curve.

A study with several real-patients levels (``real_patients: [4, 8, all]``) has, per dataset,
a real-only curve: Dice against the number of real training patients. A cell "r real + n
synthetic" reaching Dice d is worth the r′ real patients at which that curve reaches d:
interpolated monotonically (the curve made non-decreasing by pooling adjacent violators) and
linearly in log r′ between the measured levels — never extrapolated. Outside the measured
range the answer is a bound ("more than the largest level", "less than the smallest").

The interval comes from the folds: each fold has its own curve (its levels are subsets of its
own training patients) and its own cell, so each fold gives its own r′; the interval is their
range (min–max), which with 2–5 folds is a description of the spread, not a confidence
interval, and is labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from synthaug.stats.core import BASELINE_SOURCE

LEVEL = "real_patients"  # the results table's level column ("4", "8", "all")
COUNT = "train_patients"  # the real training patients a cell actually had


def pooled_monotone(values: Sequence[float]) -> list[float]:
    """The closest non-decreasing sequence (pool adjacent violators, equal weights)."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    out: list[float] = []
    for total, count in blocks:
        out += [total / count] * int(count)
    return out


def equivalent_real_patients(
    patients: Sequence[float], dice: Sequence[float], target: float
) -> tuple[float | None, str]:
    """r′ at which the real-only curve (``dice`` at ``patients``, ascending) reaches
    ``target``: (value, "") inside the measured range, else (None, the bound)."""
    xs = [float(x) for x in patients]
    ys = pooled_monotone(dice)
    if not math.isfinite(target) or not xs:
        return None, "no value"
    if target < ys[0]:
        return None, f"less than {xs[0]:g} real patients (below the smallest level)"
    if target > ys[-1]:
        return None, f"more than {xs[-1]:g} real patients (the largest level)"
    for (x0, y0), (x1, y1) in zip(
        zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False
    ):
        if y0 <= target <= y1:
            if y1 == y0:
                return x0, ""  # the curve is flat here: the fewest patients that reach it
            frac = (target - y0) / (y1 - y0)
            return float(math.exp(math.log(x0) + frac * (math.log(x1) - math.log(x0)))), ""
    return xs[0], ""  # target equals the first point of a one-point curve


def _fold_table(df: pd.DataFrame, metric: str, class_name: str) -> pd.DataFrame:
    """Seed-averaged value and real-patient count per (dataset, level, source, n, fold)."""
    rows = df[df["class_name"] == class_name] if "class_name" in df else df
    keys = ["dataset", LEVEL, "source", "n", "fold"]
    return (
        rows.groupby(keys, sort=False)
        .agg(value=(metric, "mean"), count=(COUNT, "mean"))
        .reset_index()
    )


def _curve(table: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Real-only (x = real patients, y = value), ascending in x."""
    base = table.sort_values("count")
    return base["count"].tolist(), base["value"].tolist()


def worth_table(df: pd.DataFrame, metric: str = "dice", class_name: str = "mean") -> list[dict]:
    """One entry per (dataset, source, n > 0, real level) of a study with at least two levels:
    ``equivalent_real_patients`` (None outside the curve), ``ci`` (the folds' range, or None)
    and a ``note``. Empty for studies with one level (no learning curve to read)."""
    if LEVEL not in df or COUNT not in df or df[LEVEL].astype(str).nunique() < 2:
        return []
    table = _fold_table(df.assign(**{LEVEL: df[LEVEL].astype(str)}), metric, class_name)
    entries = []
    for dataset, data in table.groupby("dataset", sort=True):
        base = data[data["source"] == BASELINE_SOURCE]
        if base[LEVEL].nunique() < 2:
            continue  # one level of this dataset: no curve to read
        mean_curve = _curve(
            base.groupby(LEVEL).agg(value=("value", "mean"), count=("count", "mean"))
        )
        fold_curves = {fold: _curve(rows) for fold, rows in base.groupby("fold")}
        cells = data[(data["source"] != BASELINE_SOURCE) & (data["n"] > 0)]
        for (source, n, level), rows in cells.groupby(["source", "n", LEVEL], sort=True):
            entries.append(_entry(dataset, source, int(n), level, rows, mean_curve, fold_curves))
    return entries


def _entry(dataset, source, n, level, rows, mean_curve, fold_curves) -> dict:
    value, note = equivalent_real_patients(*mean_curve, float(rows["value"].mean()))
    per_fold = []
    for fold, cell in rows.groupby("fold"):
        if fold in fold_curves:
            per_fold.append(
                equivalent_real_patients(*fold_curves[fold], float(cell["value"].mean()))[0]
            )
    known = [v for v in per_fold if v is not None]
    ci = [min(known), max(known)] if len(known) >= 2 else None
    if ci is not None and len(known) < len(per_fold):
        note = (
            note + "; " if note else ""
        ) + f"{len(per_fold) - len(known)} fold(s) outside the curve"
    return {
        "dataset": dataset,
        "source": source,
        "n": n,
        "real_patients": level,
        "real_patients_count": float(np.mean(rows["count"])),
        "equivalent_real_patients": value,
        "ci": ci,
        "ci_kind": "range over folds (min–max), not a confidence interval",
        "note": note,
    }
