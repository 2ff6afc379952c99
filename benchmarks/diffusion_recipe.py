"""Compare diffusion painter recipes at equal training length on a phantom store.

    .venv/bin/python benchmarks/diffusion_recipe.py --store runs/demo/stores/phantom-tissue \
        --kimg 8 --recipe v: --recipe eps:prediction=epsilon --recipe x0:prediction=sample

Each recipe is ``NAME:FIELD=VALUE,...`` over the cpu-tiny diffusion preset (values parsed as
Python literals where they can be). Recipes train side by side in one-thread worker processes
(``--workers``), one snapshot at the end, scored like any generator run: against the fold's
validation slices at equal N, next to the real baseline (training slices at the same N).
Prints, per recipe: training seconds, FID / precision / recall as ratios to the baseline,
consistency against its ceiling, memorisation, and sampling seconds per image; with
``--steps`` several DDIM step counts are scored for each recipe.
"""

from __future__ import annotations

import argparse
import ast
import multiprocessing as mp
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("SYNTHAUG_QUIET", "1")


def _parse(recipe: str) -> tuple[str, dict]:
    name, _, rest = recipe.partition(":")
    fields = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            fields[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            fields[key] = value
    return name, fields


def _register(name: str, fields: dict) -> str:
    from synthaug.diffusion.presets import DIFFUSION_PRESETS

    if "channels" in fields:
        fields.setdefault("attention_levels", (False,) * len(fields["channels"]))
    preset = replace(DIFFUSION_PRESETS["cpu-tiny"], name=f"recipe-{name}", **fields)
    DIFFUSION_PRESETS[preset.name] = preset
    return preset.name


def _train(job: tuple) -> tuple[str, float]:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # BLAS too: workers run side by side
    name, fields, store, fold, kimg, out = job
    from synthaug.diffusion.train import train
    from synthaug.generator import TrainRequest

    preset = _register(name, fields)
    t0 = time.perf_counter()
    train(TrainRequest(store, fold, "painter", out, preset, kimg, resume=True, snapshot_kimg=kimg))
    return name, time.perf_counter() - t0


def _score(run: Path, steps: int | None) -> dict:
    from synthaug.diffusion import run as diffusion_run
    from synthaug.stages.train_generator import score_run

    if steps is not None:  # score with another step count: a copy of the scores per count
        info = diffusion_run.read_meta(run)
        info.preset = {**info.preset, "sample_steps": steps}
        (run / "run.json").write_text(__import__("json").dumps(info.to_dict()))
        (run / "quality.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    q = score_run(run)
    seconds = time.perf_counter() - t0
    best, base = q["snapshots"][-1], q["baseline"]
    memo = best.get("memorisation") or {}
    return {
        "fid_ratio": best["image"]["fid"] / base["image"]["fid"],
        "precision_ratio": best["image"]["precision"] / max(base["image"]["precision"], 1e-9),
        "recall_ratio": best["image"]["recall"] / max(base["image"]["recall"], 1e-9),
        "consistency_ratio": best["consistency"] / base["consistency"],
        "too_close": memo.get("too_close", float("nan")),
        "score_seconds": seconds,
        "n": best["image"]["n"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--kimg", type=float, default=8.0)
    parser.add_argument("--recipe", action="append", required=True)
    parser.add_argument("--steps", type=int, nargs="*", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-diffusion-recipe"))
    args = parser.parse_args()
    recipes = [_parse(r) for r in args.recipe]
    jobs = [
        (
            name,
            fields,
            str(args.store),
            args.fold,
            args.kimg,
            str(args.out / f"{name}-{args.kimg:g}"),
        )
        for name, fields in recipes
    ]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        walls = dict(pool.map(_train, jobs))
    import torch

    torch.set_num_threads(2)
    print(f"store {args.store}, fold {args.fold}, {args.kimg:g} kimg per recipe; ratios to the "
          "real baseline (training slices vs validation at equal N)")  # fmt: skip
    print(f"{'recipe':<14}{'steps':>6}{'train s':>9}{'FID×':>7}{'prec×':>7}{'rec×':>7}"
          f"{'cons×':>7}{'close':>7}{'s/img':>7}")  # fmt: skip
    for name, fields in recipes:
        run = args.out / f"{name}-{args.kimg:g}"
        _register(name, fields)
        for steps in args.steps or [None]:
            r = _score(run, steps)
            shown = steps or _steps(run)
            print(f"{name:<14}{shown:>6}{walls[name]:>9.0f}{r['fid_ratio']:>7.1f}"
                  f"{r['precision_ratio']:>7.2f}{r['recall_ratio']:>7.2f}"
                  f"{r['consistency_ratio']:>7.2f}{r['too_close']:>7.2f}"
                  f"{r['score_seconds'] / r['n']:>7.3f}", flush=True)  # fmt: skip


def _steps(run: Path) -> int:
    from synthaug.diffusion.run import read_meta

    return int(read_meta(run).preset["sample_steps"])


if __name__ == "__main__":
    main()
