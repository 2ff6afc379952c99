"""Do the generators learn the phantom at the demo's budget? Issue 6's targets, measured.

    .venv/bin/python benchmarks/gan_quality.py                      # cpu-tiny at the demo budget
    .venv/bin/python benchmarks/gan_quality.py --kimg 2 --set ada_kimg=2 --set lr=0.002
    .venv/bin/python benchmarks/gan_quality.py --tasks tissue --variants joint --out /tmp/gq

For each phantom task (64×64, the demo's patients and folds) it trains the three variants on
fold 0 — two one-thread processes side by side, as the demo's study does — scores every
snapshot, takes the best one by in-domain FID on the fold's training patients (the snapshot
`generate` would use), and prints, against what real held-out (validation) patients score
with the same extractor:

* joint, mask: precision and recall (ratio to held-out; target ≥ 0.5 each), in-domain FID
  (ratio to the held-out FID at equal N; target ≤ 3), and the smallest distance between two
  of 16 uncurated samples relative to the median distance of 16 real slices (target: no pair
  below 0.1, i.e. nearly identical; empty masks of the mask variant are left out: two empty
  masks are identical without any collapse);
* conditional fed the real training masks: mask–image consistency of a real-only U-Net
  relative to the same U-Net on real test slices (target ≥ 0.7).

Wall time and kimg go with each row; the 16-sample grids are saved beside ``results.json``
in ``--out``. ``--set FIELD=VALUE`` overrides fields of the preset (see config.GanPreset).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("SYNTHAUG_QUIET", "1")

import numpy as np  # noqa: E402

from synthaug.data.options import PrepareOptions  # noqa: E402
from synthaug.demo import FULL  # noqa: E402

NEAR_IDENTICAL = 0.1
GRID = 16


def _train(job: tuple) -> tuple[str, float]:
    store, variant, kimg, out, base, overrides, snapshot_kimg = job
    import torch

    torch.set_num_threads(1)
    from synthaug.gan.train import train
    from synthaug.generator import TrainRequest

    t0 = time.perf_counter()
    train(
        TrainRequest(
            store=store,
            fold=0,
            variant=variant,
            preset=base,
            settings=overrides,  # applied after the variant's own settings
            kimg=kimg,
            out=out,
            resume=True,
            snapshot_kimg=snapshot_kimg,
        )
    )
    return out, time.perf_counter() - t0


def _data(root: Path, task: str) -> Path:
    from synthaug.data.phantom import make_phantom
    from synthaug.data.prepare import prepare

    dataset, store = root / "datasets" / task, root / "stores" / task
    if not dataset.exists():
        make_phantom(dataset, patients=FULL.patients, task=task, seed=0, workers=2)
    if not store.exists():
        prepare(
            dataset,
            store,
            PrepareOptions(resolution=FULL.resolution, folds=FULL.prepare_folds, seed=0),
        )
    return store


def _pairwise(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1).astype(np.float64)
    sq = (flat**2).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0))
    return d[np.triu_indices(len(x), 1)]


def _as_pixels(images: np.ndarray | None, labels: np.ndarray | None, k: int) -> np.ndarray:
    parts = []
    if images is not None:
        parts.append(images.reshape(len(images), -1))
    if labels is not None:
        onehot = np.eye(k, dtype=np.float32)[labels].transpose(0, 3, 1, 2) * 2 - 1
        parts.append(onehot.reshape(len(labels), -1))
    return np.concatenate(parts, axis=1)


def evaluate(run: Path, store, reference, out: Path, tag: str) -> dict:
    """Issue 6's figures for one trained run (see the module docstring)."""
    from synthaug.gan.sample import generate_slices, load_generator
    from synthaug.quality.consistency import consistency
    from synthaug.stages import chosen_snapshot, score_run
    from synthaug.viz import pair_grid, save_png

    q = score_run(run)
    gen = load_generator(run, chosen_snapshot(run))
    variant = gen.info.variant
    split = store.split(0)
    train_x, train_y = store.arrays(split.train)
    idx = np.round(np.linspace(0, len(train_y) - 1, GRID)).astype(int)
    masks = train_y[idx].astype(np.int64) if variant == "conditional" else None
    images, labels = generate_slices(gen, GRID, seed=123, labels=masks)
    labels = masks if labels is None else labels
    show_images = images if images is not None else np.zeros((GRID, 0, *labels.shape[1:]))
    save_png(out / f"{tag}.png", pair_grid(show_images, labels, columns=4), scale=2)
    row = {"variant": variant, "best_kimg": q["best"]["nimg"] / 1000, "usable": q["usable"]}
    best = next(r for r in q["snapshots"] if r["snapshot"] == q["best"]["snapshot"])
    for s in ("image", "mask"):
        if s in q["baseline"]:
            held, got = q["baseline"][s], best[s]
            row[f"{s}_fid"] = got["fid"]
            row[f"{s}_fid_ratio"] = got["fid"] / held["fid"]
            row[f"{s}_precision_ratio"] = got["precision"] / max(held["precision"], 1e-9)
            row[f"{s}_recall_ratio"] = got["recall"] / max(held["recall"], 1e-9)
    real_idx = np.round(np.linspace(0, len(train_y) - 1, GRID)).astype(int)
    k = store.num_classes
    real_d = np.median(_pairwise(_as_pixels(train_x[real_idx], train_y[real_idx], k)))
    # Two empty masks are identical without any collapse (many real lesion slices have none):
    # for the mask variant only samples with foreground take part in the closest-pair check.
    keep = (labels > 0).any(axis=(1, 2)) if images is None else np.ones(len(labels), bool)
    pairs = _pairwise(_as_pixels(None if images is None else images[keep], labels[keep], k))
    row["closest_pair"] = float(pairs.min() / real_d) if len(pairs) else float("nan")
    if variant == "conditional":
        # Fed the fold's real training masks (all of them, as real-mask-conditional does).
        fake, _ = generate_slices(gen, len(train_y), seed=7, labels=train_y.astype(np.int64))
        test_x, test_y = store.arrays(split.test)
        row["consistency"] = consistency(reference, fake, train_y.astype(np.int64), k)
        row["consistency_real"] = consistency(reference, test_x, test_y.astype(np.int64), k)
        row["consistency_ratio"] = row["consistency"] / row["consistency_real"]
        # The last snapshot too: the ranking's in-domain consistency is a noisy estimate.
        from synthaug.gan.run import layout

        last = load_generator(run, snapshot=layout(run).snapshot_files()[-1])
        fake, _ = generate_slices(last, len(train_y), seed=7, labels=train_y.astype(np.int64))
        final = consistency(reference, fake, train_y.astype(np.int64), k)
        row["consistency_final_ratio"] = final / row["consistency_real"]
    row["ranked_by"] = q["ranked_by"]
    return row


def _passes(row: dict) -> bool:
    if row["variant"] == "conditional":
        return row["consistency_ratio"] >= 0.7
    s = "mask" if row["variant"] == "mask" else "image"
    ok = (
        row[f"{s}_precision_ratio"] >= 0.5
        and row[f"{s}_recall_ratio"] >= 0.5
        and row[f"{s}_fid_ratio"] <= 3
    )
    return bool(ok and row["closest_pair"] >= NEAR_IDENTICAL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["tissue", "lesion"])
    parser.add_argument("--variants", nargs="+", default=["joint", "mask", "conditional"])
    parser.add_argument("--preset", default=FULL.gan_preset)
    parser.add_argument(
        "--kimg", type=float, default=None, help="every variant (default: the demo's per variant)"
    )
    parser.add_argument(
        "--kimg-scale",
        type=float,
        default=1.0,
        help="multiply the demo's per-variant budget (compare faster settings at equal wall time)",
    )
    parser.add_argument("--snapshot-kimg", type=float, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-gan-quality"))
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    args.out.mkdir(parents=True, exist_ok=True)
    data_root = args.out.parent / "bench-gan-quality-data"
    stores = {task: _data(data_root, task) for task in args.tasks}
    tag = args.preset + "".join(f"-{k}{v}" for k, v in sorted(overrides.items()))
    if args.kimg_scale != 1.0:
        tag += f"-x{args.kimg_scale:g}"
    kimg = {v: (args.kimg or FULL.gan_kimg[v]) * args.kimg_scale for v in args.variants}
    snap = args.snapshot_kimg or min(kimg.values()) / 4
    jobs = [
        (
            str(stores[t]),
            v,
            kimg[v],
            str(args.out / tag / f"{t}-{v}"),
            args.preset,
            overrides,
            snap,
        )
        for t in args.tasks
        for v in args.variants
    ]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        walls = dict(pool.map(_train, jobs))
    train_wall = time.perf_counter() - t0

    import torch

    from synthaug.data.store import SliceStore
    from synthaug.seg.reference import train_reference_unet

    torch.set_num_threads(2)
    rows = []
    for task, store_path in stores.items():
        store = SliceStore(store_path)
        reference = (
            train_reference_unet(store, 0, store.cache_dir)
            if "conditional" in args.variants
            else None
        )
        for variant in args.variants:
            run = args.out / tag / f"{task}-{variant}"
            row = evaluate(run, store, reference, args.out / tag, f"{task}-{variant}")
            row.update(task=task, kimg=kimg[variant], train_seconds=round(walls[str(run)], 1))
            row["pass"] = _passes(row)
            rows.append(row)
    (args.out / tag / "results.json").write_text(json.dumps(rows, indent=2))
    print(
        f"preset {args.preset} {overrides or ''}: {args.kimg} kimg per run, "
        f"training wall {train_wall:.0f} s for {len(jobs)} runs on {args.workers} workers"
    )
    print(
        f"{'task':7s} {'variant':12s} {'s':>5s} {'best':>5s} {'FIDx':>6s} {'prec':>5s} "
        f"{'rec':>5s} {'mFIDx':>6s} {'mprec':>5s} {'mrec':>5s} {'pair':>5s} {'cons':>5s} pass"
    )
    for r in rows:

        def f(key: str, fmt: str = "5.2f", r: dict = r) -> str:
            v = r.get(key)
            return format(v, fmt) if v is not None else " " * int(fmt.split(".")[0])

        print(
            f"{r['task']:7s} {r['variant']:12s} {r['train_seconds']:5.0f} {r['best_kimg']:5.2f} "
            f"{f('image_fid_ratio', '6.2f')} {f('image_precision_ratio')} {f('image_recall_ratio')} "
            f"{f('mask_fid_ratio', '6.2f')} {f('mask_precision_ratio')} {f('mask_recall_ratio')} "
            f"{r['closest_pair']:5.2f} {f('consistency_ratio')} {'yes' if r['pass'] else 'NO'}"
            + (
                f"  (last snapshot: cons {r['consistency_final_ratio']:.2f})"
                if "consistency_final_ratio" in r
                else ""
            )
        )
    print(
        "FIDx, prec, rec: ratios to held-out real patients (targets ≤ 3, ≥ 0.5, ≥ 0.5); "
        "pair: closest 2 of 16 samples / median real distance (≥ 0.1); cons: consistency / "
        f"real ceiling (≥ 0.7). Grids: {args.out / tag}"
    )


if __name__ == "__main__":
    main()
