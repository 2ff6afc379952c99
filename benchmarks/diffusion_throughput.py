"""Throughput of the diffusion painter on this machine, next to the StyleGAN2 painter.

    .venv/bin/python benchmarks/diffusion_throughput.py [--threads 2] [--repeats 3]
        [--widths 32,64,64 16,32,64] [--steps 10]

64×64, C = 3 modalities, K = 5 classes (the tissue phantom). For each denoiser width (each in
its own child process, so peak memory is per setting): training img/s (batch 16, full steps:
augmentation, noise, forward, MSE on the preset's target, AdamW, EMA) and sampling img/s (batch 64, DDIM at
``--steps`` steps, the mask concatenated); then the StyleGAN2 conditional generator of the
cpu-tiny preset (training img/s with lazy R1 and path length, generation img/s) from the same
run. Medians of ``--repeats`` timed repeats after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("SYNTHAUG_QUIET", "1")

C, K, R = 3, 5, 64


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitive caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def diffusion_child(widths: tuple[int, ...], steps: int, repeats: int) -> dict:
    from monai.inferers import DiffusionInferer

    from synthaug.diffusion.augment import augment
    from synthaug.diffusion.networks import DiffusionSpec, build_denoiser, training_scheduler
    from synthaug.diffusion.presets import diffusion_preset
    from synthaug.diffusion.sample import denoise

    base = diffusion_preset("cpu-tiny")
    preset = replace(
        base, channels=widths, attention_levels=(False,) * len(widths), sample_steps=steps
    )
    spec = DiffusionSpec("painter", C, K)
    model = build_denoiser(preset, spec)
    opt = torch.optim.AdamW(model.parameters(), lr=preset.lr)
    sched = training_scheduler(preset)
    inferer = DiffusionInferer(sched)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(256, C, R, R) * 2 - 1
    labels = torch.randint(0, K, (256, R, R))
    batch = preset.batch

    def train_steps(n: int = 8) -> None:
        for _ in range(n):
            idx = torch.randint(256, (batch,), generator=g)
            x, y = augment(images[idx], labels[idx], preset.augment_p, g)
            noise = torch.randn_like(x)
            t = torch.randint(0, preset.timesteps, (batch,))
            pred = inferer(inputs=x, diffusion_model=model, noise=noise, timesteps=t,
                           condition=spec.condition(y), mode="concat")  # fmt: skip
            loss = torch.nn.functional.mse_loss(pred, sched.get_velocity(x, noise, t))
            opt.zero_grad()
            loss.backward()
            opt.step()

    train_s = _median_seconds(train_steps, repeats)
    masks = labels[:64].numpy()
    sample_s = _median_seconds(lambda: denoise(model, spec, preset, 64, 0, masks), repeats)
    return {
        "setting": f"diffusion {','.join(map(str, widths))} ({steps} DDIM steps)",
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "train_img_s": 8 * batch / train_s,
        "sample_img_s": 64 / sample_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def gan_child(repeats: int) -> dict:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from gan_throughput import Trainer, cpu_tiny_config

    from synthaug.gan.layers import tune_cpu_allocator

    tune_cpu_allocator()
    cfg = {**cpu_tiny_config("conditional"), "num_modalities": C, "num_classes": K}
    trainer = Trainer("conditional", cfg)
    train_s = _median_seconds(trainer.window, repeats)
    gen_s = _median_seconds(trainer.generate, repeats)
    return {
        "setting": "StyleGAN2 conditional (cpu-tiny)",
        "params_m": sum(p.numel() for p in trainer.G.parameters()) / 1e6,
        "train_img_s": cfg["r1_interval"] * cfg["batch"] / train_s,
        "sample_img_s": cfg["gen_batch"] / gen_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--widths", nargs="+", default=["32,64,64", "16,32,64"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child == "gan":
        print(json.dumps(gan_child(args.repeats)))
        return
    if args.child:
        widths = tuple(int(w) for w in args.child.split(","))
        print(json.dumps(diffusion_child(widths, args.steps, args.repeats)))
        return
    print(f"torch {torch.__version__}, {args.threads} threads, 64×64, C={C}, K={K}; medians of "
          f"{args.repeats} repeats; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'setting':<44}{'params M':>9}{'train img/s':>13}{'sample img/s':>14}{'peak MB':>9}")
    for child in [*args.widths, "gan"]:
        cmd = [sys.executable, __file__, "--child", child, "--threads", str(args.threads),
               "--repeats", str(args.repeats), "--steps", str(args.steps)]  # fmt: skip
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(f"{r['setting']:<44}{r['params_m']:>9.2f}{r['train_img_s']:>13.1f}"
              f"{r['sample_img_s']:>14.1f}{r['peak_mb']:>9.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
