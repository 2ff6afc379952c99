"""Benchmark: phantom generation and prepare throughput (volumes/s) and peak memory.

Target (issue 2): the 24-patient phantom generated and prepared at 64×64 with 5 folds in
under 60 s total on 2 cores, peak memory under 3 GB.

    .venv/bin/python benchmarks/prepare.py [--patients 24] [--repeats 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SYNTHAUG_QUIET", "1")

from synthaug.data import make_phantom, prepare  # noqa: E402
from synthaug.data.options import PrepareOptions  # noqa: E402


def peak_rss_gb() -> float:
    """Peak resident memory of this process and of its finished children (the workers), GB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()

    phantom_s, prepare_s = [], []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            make_phantom(
                Path(tmp) / "ds",
                patients=args.patients,
                task="tissue",
                seed=r,
                workers=args.workers,
            )
            t1 = time.perf_counter()
            store = prepare(
                Path(tmp) / "ds",
                Path(tmp) / "store",
                PrepareOptions(resolution=args.resolution, folds=5, workers=args.workers),
            )
            t2 = time.perf_counter()
        phantom_s.append(t1 - t0)
        prepare_s.append(t2 - t1)
        print(
            f"run {r}: phantom {t1 - t0:.1f} s, prepare {t2 - t1:.1f} s, {store.meta['num_slices']} slices"
        )

    ph, pr = statistics.median(phantom_s), statistics.median(prepare_s)
    n = args.patients
    print(
        f"\nmedian of {args.repeats} runs, {n} patients, {args.workers} workers, {args.resolution}×{args.resolution}:"
    )
    print(f"  phantom generation : {ph:6.1f} s  {n / ph:6.2f} volumes/s")
    print(f"  prepare            : {pr:6.1f} s  {n / pr:6.2f} volumes/s")
    print(f"  total              : {ph + pr:6.1f} s  (target < 60 s)")
    print(
        f"  peak memory        : {peak_rss_gb():6.2f} GB (largest process + largest worker; target < 3 GB)"
    )


if __name__ == "__main__":
    main()
