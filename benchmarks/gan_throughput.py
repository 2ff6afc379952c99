"""Throughput of the StyleGAN2 core on this machine, per variant.

    .venv/bin/python benchmarks/gan_throughput.py [--quick] [--variants joint mask]
                                                  [--profile joint] [--threads 2]
    .venv/bin/python benchmarks/gan_throughput.py --ab [--repeats 3]

``--ab`` decides CPU settings by measurement: training img/s of every combination of glibc's
allocator (default / ``tune_cpu_allocator``) and Adam (plain / ``fused=True``), each in its own
child process, interleaved ``--repeats`` times, for the reference configuration and for the
demo's ``cpu-tiny`` networks; prints medians and ratios to the plain setting measured in the
same run.

Fixed comparison configuration: 64x64, C=3 modalities, K=2 classes (joint G emits 5
channels), channel_base 2048, channel_max 128 (widths 128,128,128,64,32 at 4..64 px),
z = w = 512, mapping depth 2, batch 8, 2 threads.

For each variant (each in its own child process, so peak memory is per variant):

* training img/s: full steps -- D step (real + fake through ADA at p=0.2), G step, lazy R1
  every 16 minibatches and path length every 4 (each its own Adam step, lr 0.0025,
  betas (0.0, 0.99) adjusted for lazy regularisation), G_ema update. Median over windows of
  16 steps (every window holds exactly one R1 and four path-length steps).
* generation img/s: batch 64, ``torch.no_grad``, G_ema, noise_mode="random".
* peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the child.
* GFLOP/s: FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode`` -- G and D
  forward per image, and a whole 16-step training window (forward + backward + double
  backward exactly, not a 3x estimate) -- divided by the measured time, next to the fp32
  matmul rate (2048x2048, median) measured in the same process.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from synthaug.gan import (  # noqa: E402
    AdaptiveAugment,
    StyleGAN2Loss,
    VariantSpec,
    build_networks,
    default_r1_gamma,
    ema_beta,
    lazy_regularization_adam,
    tune_cpu_allocator,
    update_ema,
)

CONFIG = {
    "resolution": 64,
    "num_modalities": 3,
    "num_classes": 2,
    "channel_base": 2048,
    "channel_max": 128,
    "z_dim": 512,
    "w_dim": 512,
    "mapping_layers": 2,
    "batch": 8,
    "gen_batch": 64,
    "lr": 0.0025,
    "betas": (0.0, 0.99),
    "r1_interval": 16,
    "pl_interval": 4,
    "ada_p": 0.2,
    "fused_adam": True,
}


def cpu_tiny_config(variant: str) -> dict:
    """The demo's cpu-tiny networks (tissue phantom: C=3, K=5) in this benchmark's terms."""
    from synthaug.gan.presets import gan_preset

    p = gan_preset("cpu-tiny").for_variant(variant)
    return {
        **CONFIG,
        "num_classes": 5,
        "channel_base": p.channel_base,
        "channel_max": p.channel_max,
        "z_dim": p.z_dim,
        "w_dim": p.w_dim,
        "mapping_layers": p.mapping_layers,
        "batch": p.batch,
    }


def timings(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    return statistics.median(timings(fn, repeats, warmup))


class OthersCpuShare:
    """Share of the machine's CPU time used by OTHER processes while measuring (Linux).

    The figures here are only meaningful when this is near 0: on a shared 2-core machine
    another process's load stalls every 2-thread parallel region.
    """

    def __enter__(self) -> OthersCpuShare:
        self.start = self._busy_seconds(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy0, own0, wall0 = self.start
        busy1, own1, wall1 = self._busy_seconds(), time.process_time(), time.perf_counter()
        capacity = (wall1 - wall0) * (os.cpu_count() or 1)
        if busy0 is None or busy1 is None or capacity <= 0:
            self.share = float("nan")
        else:
            self.share = max(0.0, (busy1 - busy0) - (own1 - own0)) / capacity

    @staticmethod
    def _busy_seconds() -> float | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def matmul_gflops(repeats: int) -> float:
    a = torch.randn(2048, 2048)
    b = torch.randn(2048, 2048)
    seconds = median_time(lambda: a @ b, repeats, warmup=2)
    return 2 * 2048**3 / seconds / 1e9


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of every op ``fn`` dispatches, using torch's own per-op formulas.

    ``FlopCounterMode`` itself cannot be used around ``autograd.grad`` (R1, path length):
    its module tracker rejects it, so this counts at the dispatch level without modules.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class _Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                _Count.total += int(formula(*args, **kwargs, out_val=out))
            return out

    with _Count():
        fn()
    return _Count.total


class Trainer:
    """The full training step of the benchmark (the same calls a training loop makes)."""

    def __init__(self, variant: str, cfg: dict | None = None) -> None:
        cfg = self.cfg = cfg or CONFIG
        res, c, k, batch = (
            cfg["resolution"],
            cfg["num_modalities"],
            cfg["num_classes"],
            cfg["batch"],
        )
        self.spec = VariantSpec(variant, c, k)
        self.G, self.D = build_networks(
            variant,
            res,
            c,
            k,
            z_dim=cfg["z_dim"],
            w_dim=cfg["w_dim"],
            mapping_layers=cfg["mapping_layers"],
            channel_base=cfg["channel_base"],
            channel_max=cfg["channel_max"],
            mbstd_group=4,
            cond_embed_dim=128,
        )
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.augment = AdaptiveAugment(initial_p=cfg["ada_p"], speed_kimg=1e9)
        self.loss = StyleGAN2Loss(
            self.G,
            self.D,
            self.spec,
            self.augment,
            r1_gamma=default_r1_gamma(res, batch),
            r1_interval=cfg["r1_interval"],
            pl_interval=cfg["pl_interval"],
        )
        d_lr, d_betas = lazy_regularization_adam(cfg["lr"], cfg["betas"], cfg["r1_interval"])
        g_lr, g_betas = lazy_regularization_adam(cfg["lr"], cfg["betas"], cfg["pl_interval"])
        fused = cfg["fused_adam"]
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=d_lr, betas=d_betas, fused=fused)
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=g_lr, betas=g_betas, fused=fused)
        # A fixed pool of "real" data: smooth random images and blob masks.
        pool = 64
        images = torch.nn.functional.avg_pool2d(torch.randn(pool, c, res, res), 5, 1, 2)
        self.images = (images / images.abs().amax()).clamp(-1, 1)
        field = torch.nn.functional.avg_pool2d(torch.randn(pool, 1, res, res), 9, 1, 4)
        self.labels = (field[:, 0] > 0).long() * (k - 1)
        self.step_index = 0
        self.cur_nimg = 0

    def batch(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        idx = torch.randint(0, self.images.shape[0], (self.cfg["batch"],))
        images = None if self.spec.variant == "mask" else self.images[idx]
        return images, self.labels[idx]

    def step(self) -> None:
        batch = self.cfg["batch"]
        images, labels = self.batch()
        loss = self.loss
        self.d_opt.zero_grad(set_to_none=True)
        loss.d_loss(images, labels).backward()
        self.d_opt.step()
        if self.step_index % loss.r1_interval == 0:
            self.d_opt.zero_grad(set_to_none=True)
            loss.d_loss(images, labels, do_main=False, do_r1=True).backward()
            self.d_opt.step()
        self.g_opt.zero_grad(set_to_none=True)
        loss.g_loss(labels=labels, batch_size=batch).backward()
        self.g_opt.step()
        if self.step_index % loss.pl_interval == 0:
            self.g_opt.zero_grad(set_to_none=True)
            loss.g_loss(labels=labels, batch_size=batch, do_main=False, do_pl=True).backward()
            self.g_opt.step()
        self.cur_nimg += batch
        update_ema(self.G_ema, self.G, ema_beta(batch, self.cur_nimg))
        self.step_index += 1

    def window(self) -> None:
        """16 steps: exactly one R1 step and four path-length steps."""
        for _ in range(self.cfg["r1_interval"]):
            self.step()

    def generate(self) -> torch.Tensor:
        n = CONFIG["gen_batch"]
        z = torch.randn(n, self.cfg["z_dim"])
        cond = None
        if self.spec.g_cond_channels:
            idx = torch.randint(0, self.labels.shape[0], (n,))
            cond = self.spec.generator_condition(self.labels[idx], torch.float32)
        with torch.no_grad():
            return self.G_ema(z, cond)


def run_child(variant: str, quick: bool, threads: int, tune_allocator: bool) -> dict:
    if tune_allocator:
        tune_cpu_allocator()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    matmul = matmul_gflops(5 if quick else 15)
    trainer = Trainer(variant)
    batch, gen_batch = CONFIG["batch"], CONFIG["gen_batch"]

    # FLOPs: forward per image, and one exact 16-step training window.
    z1 = torch.randn(batch, CONFIG["z_dim"])
    _, labels = trainer.batch()
    cond = trainer.spec.generator_condition(labels, torch.float32)
    with torch.no_grad():
        g_flops = count_flops(lambda: trainer.G_ema(z1, cond)) / batch
        d_input = trainer.spec.real_d_input(*trainer.batch())
        d_flops = count_flops(lambda: trainer.D(d_input)) / batch
    window_flops = count_flops(trainer.window)

    trainer.window()  # warm-up (allocator, oneDNN primitive caches)
    with OthersCpuShare() as others:
        window_times = timings(trainer.window, 1 if quick else 3, warmup=0)
        gen_times = timings(trainer.generate, 3 if quick else 7, warmup=1)
    images_per_window = CONFIG["r1_interval"] * batch
    train_seconds = statistics.median(window_times)
    gen_seconds = statistics.median(gen_times)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "variant": variant,
        "train_img_s": images_per_window / train_seconds,
        "train_img_s_best": images_per_window / min(window_times),
        "gen_img_s": gen_batch / gen_seconds,
        "gen_img_s_best": gen_batch / min(gen_times),
        "peak_mem_mb": peak_mb,
        "g_fwd_gflop_per_img": g_flops / 1e9,
        "d_fwd_gflop_per_img": d_flops / 1e9,
        "train_gflop_per_img": window_flops / images_per_window / 1e9,
        "train_gflop_s": window_flops / train_seconds / 1e9,
        "gen_gflop_s": g_flops * gen_batch / gen_seconds / 1e9,
        "matmul_gflop_s": matmul,
        "others_cpu_share": others.share,
        "threads": threads,
    }


def run_ab_child(
    variant: str, config: str, fused: bool, tune_allocator: bool, threads: int
) -> dict:
    """Training img/s of one setting (median of 3 windows after a warm-up window)."""
    if tune_allocator:
        tune_cpu_allocator()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = {**(CONFIG if config == "reference" else cpu_tiny_config(variant)), "fused_adam": fused}
    trainer = Trainer(variant, cfg)
    with OthersCpuShare() as others:
        times = timings(trainer.window, 3, warmup=1)
    images = cfg["r1_interval"] * cfg["batch"]
    return {"img_s": images / statistics.median(times), "others": others.share}


def run_ab(variants: list[str], repeats: int, threads: int, configs: list[str]) -> None:
    settings = [
        ("glibc, Adam", False, False),
        ("glibc, fused Adam", False, True),
        ("tuned, Adam", True, False),
        ("tuned, fused Adam", True, True),
    ]
    print(f"torch {torch.__version__}, {threads} threads; training img/s, median of {repeats} "
          "interleaved child runs (each the median of 3 windows of 16 steps)")  # fmt: skip
    print(f"{'config':<10}{'variant':<13}" + "".join(f"{name:>20}" for name, _, _ in settings))
    for config in configs:
        for variant in variants:
            found: dict[str, list[float]] = {name: [] for name, _, _ in settings}
            others = []
            for _ in range(repeats):
                for name, tuned, fused in settings:
                    cmd = [sys.executable, __file__, "--ab-child", variant, "--config", config,
                           "--threads", str(threads)]  # fmt: skip
                    cmd += ["--fused"] if fused else []
                    cmd += [] if tuned else ["--no-tune-allocator"]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                    r = json.loads(out.strip().splitlines()[-1])
                    found[name].append(r["img_s"])
                    others.append(r["others"])
            base = statistics.median(found[settings[0][0]])
            cells = "".join(
                f"{statistics.median(v):>11.1f} ({statistics.median(v) / base:4.2f}x)"
                for v in found.values()
            )
            print(f"{config:<10}{variant:<13}{cells}   others {max(others):.0%}", flush=True)


def run_profile(variant: str, threads: int, tune_allocator: bool, rows: int = 25) -> None:
    from torch.profiler import ProfilerActivity, profile

    if tune_allocator:
        tune_cpu_allocator()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    trainer = Trainer(variant)
    trainer.window()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.window()
    print(f"== training window (16 steps), {variant}: self CPU time ==")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    trainer.generate()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.generate()
    print(f"== generation (batch {CONFIG['gen_batch']}), {variant}: self CPU time ==")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 1 min)")
    parser.add_argument("--variants", nargs="+", default=["joint", "mask", "conditional"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", metavar="VARIANT", help="print torch.profiler tables")
    parser.add_argument(
        "--no-tune-allocator",
        dest="tune_allocator",
        action="store_false",
        help="leave glibc's mmap threshold alone (shows what tune_cpu_allocator buys)",
    )
    parser.add_argument("--child", metavar="VARIANT", help=argparse.SUPPRESS)
    parser.add_argument("--ab", action="store_true", help="allocator × fused-Adam comparison")
    parser.add_argument("--repeats", type=int, default=3, help="--ab: interleaved repeats")
    parser.add_argument(
        "--configs", nargs="+", default=["reference", "cpu-tiny"], help="--ab: configurations"
    )
    parser.add_argument("--ab-child", metavar="VARIANT", help=argparse.SUPPRESS)
    parser.add_argument("--config", default="reference", help=argparse.SUPPRESS)
    parser.add_argument("--fused", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.ab_child:
        r = run_ab_child(args.ab_child, args.config, args.fused, args.tune_allocator, args.threads)
        print(json.dumps(r))
        return
    if args.ab:
        run_ab(args.variants, args.repeats, args.threads, args.configs)
        return

    if args.profile:
        run_profile(args.profile, args.threads, args.tune_allocator)
        return
    if args.child:
        print(json.dumps(run_child(args.child, args.quick, args.threads, args.tune_allocator)))
        return

    load = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {args.threads} threads, load average {load:.2f} "
        "(other processes on the machine slow every figure down)"
    )
    print(
        "config: 64x64, C=3 K=2, channel_base 2048, channel_max 128, z=w=512, "
        f"mapping 2, batch {CONFIG['batch']}, ADA p={CONFIG['ada_p']}, "
        "R1 every 16, path length every 4, "
        f"allocator {'tuned' if args.tune_allocator else 'glibc default'}"
    )
    print(
        "train/gen img/s: median (best) of the timed repeats; train GF/img counts forward, "
        "backward and regularisers exactly; 'others' = CPU share used by other processes"
    )
    header = (
        f"{'variant':<12}{'train img/s':>15}{'gen img/s':>15}{'peak MB':>9}"
        f"{'G fwd GF/img':>13}{'D fwd GF/img':>13}{'train GF/img':>13}"
        f"{'train GF/s':>11}{'gen GF/s':>10}{'matmul GF/s':>12}{'others':>8}"
    )
    print(header)
    for variant in args.variants:
        cmd = [sys.executable, __file__, "--child", variant, "--threads", str(args.threads)]
        if args.quick:
            cmd.append("--quick")
        if not args.tune_allocator:
            cmd.append("--no-tune-allocator")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        train = f"{r['train_img_s']:.1f} ({r['train_img_s_best']:.1f})"
        gen = f"{r['gen_img_s']:.0f} ({r['gen_img_s_best']:.0f})"
        print(
            f"{variant:<12}{train:>15}{gen:>15}{r['peak_mem_mb']:>9.0f}"
            f"{r['g_fwd_gflop_per_img']:>13.3f}{r['d_fwd_gflop_per_img']:>13.3f}"
            f"{r['train_gflop_per_img']:>13.2f}{r['train_gflop_s']:>11.1f}"
            f"{r['gen_gflop_s']:>10.1f}{r['matmul_gflop_s']:>12.1f}"
            f"{r['others_cpu_share']:>7.0%} ",
            flush=True,
        )


if __name__ == "__main__":
    main()
