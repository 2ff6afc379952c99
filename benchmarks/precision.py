"""fp32 against bf16 autocast (and channels_last / torch.compile) per network, side by side.

    .venv/bin/python benchmarks/precision.py [--threads 1] [--repeats 5] [--compile]
        [--quality STORE] [--seeds 3] [--steps 600] [--painter-steps 200]

Throughput: one full training step (forward, loss in fp32, backward, optimiser step) of
* the ``cpu-tiny`` U-Net (MONAI UNet 8-64, batch 16, 64², 3 channels, 5 classes, DiceCE),
* the ``cpu-tiny`` diffusion painter (MONAI DiffusionModelUNet 16-64, batch 16, x0 target),
* the ``cpu-tiny`` StyleGAN2 conditional G and D (one G and one D main step, no penalties),
in every setting, interleaved round-robin ``--repeats`` times in one process, so the ratios
compare settings under the same load; medians in ms per step. ``--compile`` adds
torch.compile settings and prints their compile time (the first two steps).

Quality (``--quality STORE``): U-Nets trained ``--steps`` steps with ``train_seg`` in fp32
and in bf16 for each of ``--seeds`` seeds on the store's fold 0; validation Dice of each,
the mean difference and the seed-to-seed spread; and the painter's held-out denoising MSE
(fixed noise and timesteps) after the same number of steps in each precision.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("SYNTHAUG_QUIET", "1")

C, K, R, B = 3, 5, 64, 16


def _settings(with_compile: bool) -> dict[str, tuple[bool, bool, bool]]:
    """name → (channels_last, bf16, compile)."""
    s = {
        "fp32": (False, False, False),
        "bf16": (False, True, False),
        "channels_last": (True, False, False),
        "channels_last+bf16": (True, True, False),
    }
    if with_compile:
        s |= {"compile": (False, False, True), "compile+bf16": (False, True, True)}
    return s


def _unet_step(cl: bool, bf16: bool, comp: bool):
    from monai.losses import DiceCELoss

    from synthaug.seg.network import build_unet
    from synthaug.seg.presets import seg_preset

    torch.manual_seed(0)
    model = build_unet(C, K, seg_preset("cpu-tiny"))
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    fwd = torch.compile(model) if comp else model
    x = (torch.rand(B, C, R, R) * 2 - 1).contiguous(memory_format=fmt)
    y = torch.randint(0, K, (B, 1, R, R))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = fwd(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _painter(cl: bool):
    from synthaug.diffusion.networks import DiffusionSpec, build_denoiser
    from synthaug.diffusion.presets import diffusion_preset

    preset = diffusion_preset("cpu-tiny")
    spec = DiffusionSpec("painter", C, K)
    torch.manual_seed(0)
    model = build_denoiser(preset, spec)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    return preset, spec, model


def _painter_step(cl: bool, bf16: bool, comp: bool):
    preset, spec, model = _painter(cl)
    opt = torch.optim.AdamW(model.parameters(), lr=preset.lr)
    fwd = torch.compile(model) if comp else model
    x0 = torch.rand(B, C, R, R) * 2 - 1
    cond = spec.condition(torch.randint(0, K, (B, R, R)))
    inp = torch.cat([x0 + torch.randn_like(x0), cond], dim=1)
    if cl:
        inp = inp.contiguous(memory_format=torch.channels_last)
    t = torch.randint(0, preset.timesteps, (B,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = fwd(inp, timesteps=t)
        loss = torch.nn.functional.mse_loss(pred.float(), x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _gan_step(cl: bool, bf16: bool, comp: bool):
    from synthaug.gan import build_networks
    from synthaug.gan.networks import masks_to_onehot
    from synthaug.gan.presets import gan_preset

    if comp:
        return None  # StyleGAN2's modulated convolutions are not compiled here
    p = gan_preset("cpu-tiny")
    torch.manual_seed(0)
    G, D = build_networks(
        "conditional", R, C, K, z_dim=p.z_dim, w_dim=p.w_dim, mapping_layers=p.mapping_layers,
        channel_base=p.channel_base, channel_max=p.channel_max, mbstd_group=p.mbstd_group,
        cond_embed_dim=p.cond_embed_dim, d_channel_base=p.d_channel_base,
        d_architecture=p.d_architecture, channels_last=cl,
    )  # fmt: skip
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    real = torch.rand(8, C, R, R) * 2 - 1
    cond = masks_to_onehot(torch.randint(0, K, (8, R, R)), K)

    def step() -> None:
        ac = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
        z = torch.randn(8, G.z_dim)
        with ac:
            fake = G(z, cond)
            d_loss = (
                torch.nn.functional.softplus(D(fake.detach(), cond).float()).mean()
                + torch.nn.functional.softplus(-D(real, cond).float()).mean()
            )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with ac:
            g_loss = torch.nn.functional.softplus(-D(G(z, cond), cond).float()).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step


NETWORKS = {"U-Net": _unet_step, "painter": _painter_step, "StyleGAN2": _gan_step}


def throughput(repeats: int, with_compile: bool, steps_per_repeat: int = 5) -> None:
    settings = _settings(with_compile)
    for net, make in NETWORKS.items():
        steps, compile_s = {}, {}
        for name, flags in settings.items():
            t0 = time.perf_counter()
            step = make(*flags)
            if step is None:
                continue
            step(), step()  # warm-up (and compile)
            steps[name], compile_s[name] = step, time.perf_counter() - t0
        times: dict[str, list[float]] = {n: [] for n in steps}
        for _ in range(repeats):  # round-robin: every setting sees the same load
            for name, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(steps_per_repeat):
                    step()
                times[name].append((time.perf_counter() - t0) / steps_per_repeat)
        base = statistics.median(times["fp32"])
        print(f"\n{net} training step ({torch.get_num_threads()} threads, median of {repeats})")
        print(f"  {'setting':20s} {'ms/step':>8s} {'vs fp32':>8s} {'first 2 steps':>14s}")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:20s} {med * 1000:8.1f} {base / med:7.2f}x {compile_s[name]:12.1f} s")


def unet_quality(store: str, seeds: int, steps: int) -> None:
    from synthaug.seg.train import SegOptions, train_seg

    dice: dict[str, list[float]] = {"fp32": [], "bf16": []}
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for seed in range(seeds):
        for precision in dice:
            with tempfile.TemporaryDirectory() as out:
                r = train_seg(
                    SegOptions(store=store, fold=0, out=out, seed=seed, max_steps=steps,
                               precision=precision)
                )  # fmt: skip
            dice[precision].append(r.val_dice)
            seconds[precision].append(r.train_seconds / max(r.steps, 1))
    print(f"\nU-Net validation Dice after at most {steps} steps (early stopping on), fold 0")
    for precision, values in dice.items():
        print(
            f"  {precision}: " + " ".join(f"{v:.3f}" for v in values)
            + f"  mean {statistics.mean(values):.3f} (seed SD {statistics.stdev(values):.3f}),"
            f" {statistics.median(seconds[precision]) * 1000:.1f} ms/step incl. validation"
        )  # fmt: skip
    diffs = [b - a for a, b in zip(dice["fp32"], dice["bf16"], strict=True)]
    print(f"  bf16 - fp32 per seed: {' '.join(f'{d:+.3f}' for d in diffs)}")


def painter_quality(store: str, seeds: int, steps: int) -> None:
    """Held-out denoising MSE of the painter after ``steps`` steps, fp32 against bf16."""
    from synthaug.data.store import SliceStore
    from synthaug.diffusion.networks import DiffusionSpec, build_denoiser, training_scheduler
    from synthaug.diffusion.presets import diffusion_preset

    s = SliceStore(store)
    split = s.split(0)
    train_x, train_y = (torch.from_numpy(a) for a in s.training_arrays(split.train))
    val_x, val_y = (torch.from_numpy(a) for a in s.training_arrays(split.val))
    preset = diffusion_preset("cpu-tiny")
    spec = DiffusionSpec("painter", s.num_channels, s.num_classes)
    sched = training_scheduler(preset)
    gen = torch.Generator().manual_seed(123)
    val_x, val_y = val_x[:64], val_y[:64]
    noise = torch.randn(val_x.shape, generator=gen)
    t_val = torch.randint(0, preset.timesteps, (len(val_x),), generator=gen)
    losses: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for seed in range(seeds):
        for precision in losses:
            torch.manual_seed(seed)
            model = build_denoiser(preset, spec)
            opt = torch.optim.AdamW(model.parameters(), lr=preset.lr)
            g = torch.Generator().manual_seed(seed)
            bf16 = precision == "bf16"
            for _ in range(steps):
                idx = torch.randint(len(train_x), (preset.batch,), generator=g)
                x0, cond = train_x[idx], spec.condition(train_y[idx])
                nz = torch.randn(x0.shape, generator=g)
                t = torch.randint(0, preset.timesteps, (len(x0),), generator=g)
                xt = sched.add_noise(x0, nz, t)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    pred = model(torch.cat([xt, cond], 1), timesteps=t)
                loss = torch.nn.functional.mse_loss(pred.float(), x0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                xt = sched.add_noise(val_x, noise, t_val)
                pred = model(torch.cat([xt, spec.condition(val_y)], 1), timesteps=t_val)
                losses[precision].append(float(torch.nn.functional.mse_loss(pred, val_x)))
    print(f"\nPainter held-out x0 MSE after {steps} steps (evaluated in fp32)")
    for precision, values in losses.items():
        print(
            f"  {precision}: " + " ".join(f"{v:.4f}" for v in values)
            + f"  mean {statistics.mean(values):.4f} (seed SD {statistics.stdev(values):.4f})"
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--quality", metavar="STORE", help="a 64-px store for the quality runs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=600, help="U-Net steps (at most)")
    parser.add_argument("--painter-steps", type=int, default=200)
    parser.add_argument("--no-throughput", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from synthaug.precision import cpu_bf16_instructions, cpu_bf16_speedup

    print(
        f"CPU bf16 instructions: {', '.join(cpu_bf16_instructions()) or 'none'}; "
        f"torch capability {torch.backends.cpu.get_cpu_capability()}; "
        f"probe: bf16 conv {cpu_bf16_speedup():.2f}x fp32"
    )
    if not args.no_throughput:
        throughput(args.repeats, args.compile)
    if args.quality:
        unet_quality(args.quality, args.seeds, args.steps)
        painter_quality(args.quality, args.seeds, args.painter_steps)


if __name__ == "__main__":
    main()
