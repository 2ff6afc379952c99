"""Multi-process StyleGAN2 training under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_torchrun_two_processes_end_with_identical_weights(toy_store, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "synthaug",
        "train-gan",
        "--store",
        str(toy_store.path),
        "--fold",
        "0",
        "--variant",
        "conditional",
        "--preset",
        "cpu-micro",
        "--kimg",
        "0.048",
        "--out",
        str(run),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-quality",
    ]
    env = {**os.environ, "SYNTHAUG_QUIET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["nimg"] == 48  # the global batch of 8 is split 4 + 4
    assert summary["rank_max_param_diff"] == 0.0
