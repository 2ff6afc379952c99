"""How long must a U-Net train before validation stops it? Chooses the seg presets' schedules.

Trains real-only (and optionally real + n synthetic) U-Nets on prepared stores with a preset
and schedule overrides, two one-thread processes side by side, and prints per run: the step
early stopping ended at, the best step, whether the best is at the cap (``capped``),
validation and test Dice, and seconds.

    python benchmarks/seg_budget.py --store runs/demo/stores/phantom-lesion \\
        --store runs/demo/stores/phantom-tissue --folds 0 1 --preset cpu-tiny \\
        --set max_steps=4000 --set patience=4 --set val_every=50
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path


def _typed(preset, name: str, value: str):
    kind = {f.name: f.type for f in fields(preset)}[name]
    return float(value) if "float" in str(kind) else int(value)


def _run(job: tuple) -> dict:
    store, fold, seed, preset_name, overrides, synthetic, n, fraction = job
    import torch
    from threadpoolctl import threadpool_limits

    from synthaug.seg import presets
    from synthaug.seg.train import SegOptions, train_seg

    torch.set_num_threads(1)
    base = presets.SEG_PRESETS[preset_name]
    preset = replace(base, name="bench", **{k: _typed(base, k, v) for k, v in overrides})
    presets.SEG_PRESETS["bench"] = preset
    with threadpool_limits(1), tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        r = train_seg(
            SegOptions(
                store=store,
                fold=fold,
                out=out,
                seed=seed,
                preset="bench",
                synthetic=synthetic,
                n_patients=n,
                synthetic_fraction=fraction,
            )  # fmt: skip
        )
        seconds = time.perf_counter() - t0
    return {
        "store": Path(store).name, "fold": fold, "seed": seed, "n": n,
        "steps": r.steps, "best_step": r.best_step, "capped": r.capped,
        "val": r.val_dice, "test": r.test_mean_dice, "s": seconds,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", action="append", required=True)
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--preset", default="cpu-tiny")
    ap.add_argument("--set", action="append", default=[], help="NAME=VALUE preset override")
    ap.add_argument("--synthetic", default=None, help="synthetic set folder (one store only)")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--synthetic-fraction", type=float, default=None)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    overrides = tuple(tuple(s.split("=", 1)) for s in args.set)
    jobs = [
        (s, f, seed, args.preset, overrides, args.synthetic, args.n, args.synthetic_fraction)
        for s in args.store
        for f in args.folds
        for seed in args.seeds
    ]
    print(f"preset {args.preset} with {dict(overrides)}; {len(jobs)} runs, {args.workers} workers")
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = pool.map(_run, jobs)
    print("store | fold | seed | n | steps | best step | capped | val Dice | test Dice | s")
    for r in rows:
        print(
            f"{r['store']} | {r['fold']} | {r['seed']} | {r['n']} | {r['steps']} | "
            f"{r['best_step']} | {r['capped']} | {r['val']:.3f} | {r['test']:.3f} | {r['s']:.0f}"
        )
    print(
        f"median steps {statistics.median(r['steps'] for r in rows):.0f}, "
        f"capped {sum(r['capped'] for r in rows)}/{len(rows)}, "
        f"median seconds per run {statistics.median(r['s'] for r in rows):.0f}"
    )


if __name__ == "__main__":
    main()
