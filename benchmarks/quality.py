"""Benchmark: all image-quality metrics for 1,000 real vs 1,000 synthetic 64×64 slices.

    .venv/bin/python benchmarks/quality.py [--workdir DIR] [--patients 30] [--n 1000]
                                           [--repeats 3] [--threads N] [--unet-steps N]

--threads N limits torch (and, with threadpoolctl installed, BLAS) threads: on a shared
machine, two OpenMP threads competing with other jobs for two cores run many times slower
than one.

Data: the ``phantom`` (tissue task: T1/T2/FLAIR, 5 classes) generated and prepared at 64×64
with 5 folds; the real set is 1,000 of fold 0's real training slices (the reference the metrics
use). "Synthetic" = 1,000 phantom slices drawn from all patients, perturbed: Gaussian noise
σ = 0.05, Gaussian blur σ = 0.6 px, per-slice contrast jitter (gamma 0.8–1.25) and masks shifted
by up to 2 px — a stand-in for a generator, so the numbers exercise every code path.

Timed separately (one-off per store and fold, cached on disk afterwards):
  * the domain encoders' training (one per modality + the joint one),
  * the reference real-only U-Net's training (train-seg, cpu-tiny preset).
Then the target: all metrics (per-modality and joint FID, KID with 100 subsets of 1,000,
precision/recall k=3, consistency on the synthetic set and on the real test slices, label
statistics, and the real-validation baseline) with encoders and U-Net cached — median of
``--repeats`` runs. Target: under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SYNTHAUG_QUIET", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage  # noqa: E402

from synthaug.data import SliceStore, make_phantom, prepare  # noqa: E402
from synthaug.data.options import PrepareOptions  # noqa: E402
from synthaug.quality.evaluate import QualityRequest, evaluate_quality  # noqa: E402
from synthaug.quality.features import load_or_train_domain_encoder  # noqa: E402
from synthaug.seg.reference import train_reference_unet  # noqa: E402


def build_store(workdir: Path, patients: int) -> tuple[SliceStore, float]:
    """The phantom store (reused when ``workdir`` already holds it) and its build time."""
    store_dir = workdir / "store"
    if (store_dir / "store.json").is_file():
        return SliceStore(store_dir), 0.0
    t0 = time.perf_counter()
    make_phantom(workdir / "phantom", patients=patients, task="tissue", seed=0, workers=2)
    prepare(workdir / "phantom", store_dir, PrepareOptions(resolution=64, folds=5, workers=2))
    return SliceStore(store_dir), time.perf_counter() - t0


def synthetic_set(store: SliceStore, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n perturbed phantom slices from all patients: images [n, 3, 64, 64], labels [n, 64, 64]."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(store.images), n, replace=len(store.images) < n))
    images = np.asarray(store.images[idx], dtype=np.float32)
    labels = np.asarray(store.labels[idx], dtype=np.int64)
    gamma = rng.uniform(0.8, 1.25, size=(n, 1, 1, 1))
    images = ((images + 1) / 2) ** gamma * 2 - 1
    images = ndimage.gaussian_filter(images, (0, 0, 0.6, 0.6))
    images = np.clip(images + rng.normal(0, 0.05, images.shape), -1, 1).astype(np.float32)
    for i in range(n):
        dy, dx = rng.integers(-2, 3, size=2)
        labels[i] = np.roll(labels[i], (dy, dx), axis=(0, 1))
    return images, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="reuse store and caches")
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--unet-steps", type=int, default=None, help="cap U-Net training steps")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        try:  # numpy/scipy BLAS too, when threadpoolctl (a scikit-learn dependency) is there
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        except ImportError:
            pass
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="synthaug-quality-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cache = workdir / "cache"

    store, build_s = build_store(workdir, args.patients)
    split = store.split(0)
    n_train = len(store.indices(split.train))
    print(
        f"store: {store}; fold 0: {n_train} real training slices; torch threads: "
        f"{torch.get_num_threads()}; cpu count: {os.cpu_count()}"
    )
    if build_s:
        print(f"phantom + prepare: {build_s:.1f} s (setup, not timed below)")

    # One-off: the domain encoders (per modality + joint), each timed.
    enc_times = []
    for chans in [[c] for c in range(store.num_channels)] + [None]:
        t0 = time.perf_counter()
        ex = load_or_train_domain_encoder(store, 0, cache, chans)
        wall = time.perf_counter() - t0
        name = "joint" if chans is None else store.modalities[chans[0]]
        enc_times.append(wall)
        print(
            f"domain encoder {name:6s}: {wall:6.1f} s ({'trained' if ex.train_seconds else 'cached'}, "
            f"{ex.meta['train_slices']} slices, {ex.meta['config']['steps']} steps, dim {ex.dim})"
        )
    print(f"domain encoders total: {sum(enc_times):.1f} s")

    t0 = time.perf_counter()
    unet = train_reference_unet(store, 0, cache, "cpu-tiny", max_steps=args.unet_steps)
    print(f"reference U-Net (cpu-tiny, real only): {time.perf_counter() - t0:.1f} s")

    images, labels = synthetic_set(store, args.n)
    totals, parts = [], []
    report: dict = {}
    for r in range(args.repeats):
        t0 = time.perf_counter()
        request = QualityRequest(store, 0, cache, reference_unet=unet, max_real=args.n, seed=r)
        report = evaluate_quality(request, images, labels)
        totals.append(time.perf_counter() - t0)
        parts.append(report["seconds"])
        print(f"run {r + 1}: {totals[-1]:.1f} s  {report['seconds']}")
    med = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    print(
        f"\nALL metrics, {report['n_real']} real vs {report['n_synthetic']} synthetic, encoders "
        f"and U-Net cached: median {statistics.median(totals):.1f} s over {len(totals)} runs "
        f"(min {min(totals):.1f}, max {max(totals):.1f})"
    )
    print("  median parts: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
    print("\nvalues (last run):")
    rows = {**report["modalities"], "joint": report["joint"]}
    base = report["real_baseline"]
    for name, m in rows.items():
        b = {**base["modalities"], "joint": base["joint"]}[name] if base else None
        print(
            f"  {name:6s} FID {m['fid']:8.3f}  KID {m['kid_mean']:.4f}±{m['kid_std']:.4f}  "
            f"P {m['precision']:.3f} R {m['recall']:.3f}"
            + (
                f"   | real-val baseline FID {b['fid']:.3f} P {b['precision']:.3f} "
                f"R {b['recall']:.3f} (n={base['n']})"
                if b
                else ""
            )
        )
    cons = report["consistency"]
    print(
        f"  consistency: synthetic {cons['synthetic']['mean']:.3f}, real test (ceiling) "
        f"{cons['real_test']['mean']:.3f}"
    )
    lab = report["labels"]
    print(
        f"  labels: class-frequency TV {lab['class_frequency']['total_variation']:.4f}, "
        f"mean count W1 {lab['summary']['mean_count_distance']:.3f}, "
        f"mean log-size W1 {lab['summary']['mean_log_size_distance']:.3f}"
    )
    print(f"\nworkdir: {workdir}")


if __name__ == "__main__":
    main()
