"""Benchmark: wall time of each stage of `synthaug demo` (target: full demo ≤ 10 min on 2 cores).

.venv/bin/python benchmarks/demo_stages.py            # the cpu demo (18 min at 147 GFLOP/s)
.venv/bin/python benchmarks/demo_stages.py --quick    # the two-minute test version
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SYNTHAUG_QUIET", "1")

from synthaug.demo import run_demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="run here and keep the artifacts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "demo"
        t0 = time.perf_counter()
        run_demo(out, quick=args.quick, workers=args.workers)
        total = time.perf_counter() - t0
        timings = json.loads((out / "study" / "timings.json").read_text())
    print(f"demo ({'quick' if args.quick else 'full'}, {args.workers} workers) stage wall times:")
    for stage in (
        "phantom+prepare",
        "train-generators",
        "train-seg",
        "reference",
        "generate",
        "quality",
        "report",
    ):
        print(f"  {stage:16s} {timings.get(stage, 0.0):8.1f} s")
    print(
        f"  {'total':16s} {total:8.1f} s  ({total / 60:.1f} min; target ≤ 10 min for the cpu demo)"
    )


if __name__ == "__main__":
    main()
