"""Quality per CPU-minute: train generators in chunks and score them at fixed training times.

    .venv/bin/python benchmarks/time_to_quality.py --out runs/ttq --minutes 2.5 5 10 20 \
        --curve lesion-painter=diffusion:painter:runs/demo/stores/phantom-lesion:0 \
        --curve tissue-joint=stylegan2:joint:runs/demo/stores/phantom-tissue:0

Each ``--curve NAME=FAMILY:VARIANT:STORE:FOLD[:PRESET]`` trains one run (``PRESET`` may carry
settings, ``cpu-tiny+lecam_weight=0.3+d_lr_scale=0.5``, as ``train-generator --set`` does) in its own one-thread
process (``--workers`` curves side by side, so the time axis is single-core CPU minutes of
training, scoring excluded). The run is trained to each time point in turn — the kimg for the
next point from the throughput measured so far — and its snapshot there is scored like any
generator run: against the fold's validation slices at equal N, next to the real baseline
(the fold's training slices at the same N). Interrupted, the same command continues: training
resumes from the run's checkpoint and earlier scores are reused.

Prints one table per curve (CPU minutes, kimg, FID / precision / recall as ratios to the
baseline, consistency against its ceiling for painters, memorisation, flags) and writes
``OUT/curves.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("SYNTHAUG_QUIET", "1")

PROBE_KIMG = 0.5  # the first chunk measures throughput; its snapshot is the "barely trained" point
NO_PERIODIC_SNAPSHOTS = 1e6  # kimg: snapshots only where a chunk ends


def _parse_curve(text: str) -> dict:
    name, _, spec = text.partition("=")
    parts = spec.split(":")
    if not name or len(parts) not in (4, 5):
        raise SystemExit(f"--curve {text!r}: expected NAME=FAMILY:VARIANT:STORE:FOLD[:PRESET]")
    family, variant, store, fold = parts[:4]
    preset = parts[4] if len(parts) == 5 else "cpu-tiny"
    return {"name": name, "family": family, "variant": variant, "store": store,
            "fold": int(fold), "preset": preset}  # fmt: skip


def _preset_and_settings(preset: str) -> tuple[str, dict[str, str]]:
    name, *pairs = preset.split("+")
    return name, dict(pair.split("=", 1) for pair in pairs)


def _summary(run: Path) -> dict | None:
    try:
        return json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def _train_to(curve: dict, run: Path, kimg: float) -> dict:
    from synthaug.generator import TrainRequest
    from synthaug.stages.families import family

    request = TrainRequest(
        store=curve["store"], fold=curve["fold"], variant=curve["variant"], out=str(run),
        preset=_preset_and_settings(curve["preset"])[0],
        settings=_preset_and_settings(curve["preset"])[1], kimg=kimg, resume=run.exists(),
        snapshot_kimg=NO_PERIODIC_SNAPSHOTS, device="cpu",
    )  # fmt: skip
    family(curve["family"]).train(request)
    return _summary(run) or {}


def _curve(job: tuple[dict, list[float], str]) -> str:
    """Train and score one curve (in a one-thread worker process)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # BLAS too: workers run side by side
    from synthaug.stages.train_generator import score_run

    curve, minutes, out = job
    run = Path(out) / curve["name"]
    summary = _summary(run) or _train_to(curve, run, PROBE_KIMG)
    score_run(run)
    for target_min in minutes:
        seconds, nimg = summary["train_seconds"], summary["nimg"]
        if seconds >= target_min * 60 * 0.98:
            continue
        rate = nimg / max(seconds, 1e-9)
        kimg = (nimg + (target_min * 60 - seconds) * rate) / 1000
        summary = _train_to(curve, run, kimg)
        score_run(run)
        print(f"{curve['name']}: {summary['train_seconds'] / 60:.1f} min, "
              f"{summary['kimg']:.1f} kimg scored", flush=True)  # fmt: skip
    return curve["name"]


def _ratio(value: float | None, base: float | None) -> float:
    if value is None or base is None:
        return float("nan")
    return value / max(base, 1e-9)


def _points(run: Path) -> list[dict]:
    """One row per scored snapshot: training time, kimg and ratios to the real baseline."""
    from synthaug.runlog import read_metrics

    scores = json.loads((run / "quality.json").read_text())
    elapsed = {int(r["nimg"]): r["elapsed_s"] for r in read_metrics(run) if "elapsed_s" in r}
    base = scores["baseline"]
    rows = []
    for snap in scores["snapshots"]:
        row = {"snapshot": snap["snapshot"], "kimg": snap["nimg"] / 1000,
               "cpu_min": elapsed.get(int(snap["nimg"]), float("nan")) / 60}  # fmt: skip
        for space in ("image", "mask"):
            if space in snap and space in base:
                s, b = snap[space], base[space]
                row[space] = {"fid": _ratio(s["fid"], b["fid"]),
                              "precision": _ratio(s["precision"], b["precision"]),
                              "recall": _ratio(s["recall"], b["recall"]),
                              "fid_abs": s["fid"], "fid_real": b["fid"]}  # fmt: skip
        if snap.get("consistency") is not None and base.get("consistency"):
            row["consistency"] = snap["consistency"] / base["consistency"]
        memo = snap.get("memorisation") or {}
        row["too_close"] = memo.get("too_close")
        row["median_ratio"] = memo.get("median_ratio")
        row["pixel_diversity"] = snap.get("pixel_diversity")
        row["flags"] = [snap["failure"]] if snap.get("failure") else []
        rows.append(row)
    return rows


def _table(name: str, rows: list[dict]) -> str:
    head = ("| CPU min | kimg | space | FID × | precision × | recall × | consistency × | "
            "pixel diversity | too close | flags |")  # fmt: skip
    lines = [f"**{name}**", "", head, "|" + "---|" * 10]
    for r in rows:
        for space in ("image", "mask"):
            if space not in r:
                continue
            s = r[space]
            cons = f"{r['consistency']:.2f}" if "consistency" in r and space == "image" else "–"
            close = f"{r['too_close']:.2f}" if r.get("too_close") is not None else "–"
            pixel = r.get("pixel_diversity")
            pixel = f"{pixel:.2f}" if pixel is not None else "–"
            lines.append(
                f"| {r['cpu_min']:.1f} | {r['kimg']:.1f} | {space} | {s['fid']:.1f} | "
                f"{s['precision']:.2f} | {s['recall']:.2f} | {cons} | {pixel} | {close} | "
                f"{', '.join(r['flags']) or '–'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curve", action="append", required=True, type=_parse_curve)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5, 10, 20, 40, 60])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/time-to-quality"))
    parser.add_argument(
        "--report-only", action="store_true", help="print the tables, train nothing"
    )
    parser.add_argument("--figure", type=Path, help="also draw the curves into this PNG")
    args = parser.parse_args()
    minutes = sorted(args.minutes)
    if not args.report_only:
        jobs = [(c, minutes, str(args.out)) for c in args.curve]
        with mp.get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
            for name in pool.imap_unordered(_curve, jobs):
                print(f"{name}: done", flush=True)
    curves = {}
    for c in args.curve:
        run = args.out / c["name"]
        if (run / "quality.json").exists():
            curves[c["name"]] = {**c, "points": _points(run)}
            print(_table(f"{c['name']} ({c['family']} {c['variant']}, {Path(c['store']).name} "
                         f"fold {c['fold']}, {c['preset']})", curves[c["name"]]["points"]))  # fmt: skip
            print()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curves.json").write_text(json.dumps(curves, indent=1))
    if args.figure:
        _figure(curves, args.figure)


def _figure(curves: dict, path: Path) -> None:
    """FID, precision and recall ratios against training minutes, one line per curve (the
    image space; the mask space for mask generators)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, curve in curves.items():
        rows = [r for r in curve["points"] if "image" in r or "mask" in r]
        space = "image" if "image" in rows[0] else "mask"
        x = [r["cpu_min"] for r in rows]
        for ax, metric in zip(axes, ("fid", "precision", "recall"), strict=True):
            ax.plot(x, [r[space][metric] for r in rows], marker="o", label=f"{name} ({space})")
    for ax, metric, target in zip(axes, ("FID ×", "precision ×", "recall ×"), (3, 0.5, 0.5),
                                  strict=True):  # fmt: skip
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("single-thread training minutes")
        ax.set_title(f"{metric} (dashed: target)")
    axes[0].set_yscale("log")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
