"""Each ``gpu-*`` preset for a few training steps on the GPU: img/s and peak memory.

    python benchmarks/gpu_check.py [--steps 20]

Random data at the preset's resolution (C = 3 modalities, K = 5 classes), the preset's
precision, the full training step of each family's trainer code path where it is cheap to
build (U-Net: DiceCE + Adam; painter and joint denoiser: x0/v target + AdamW; StyleGAN2: one
D and one G main step). Called by ``benchmarks/gpu_check.sh``; exits non-zero when a preset
fails, naming it.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "src"))

C, K = 3, 5


def _timed(step, steps: int, batch: int) -> tuple[float, float]:
    step(), step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return steps * batch / seconds, torch.cuda.max_memory_allocated() / 2**30


def seg_step(name: str):
    from monai.losses import DiceCELoss

    from synthaug.seg.network import build_unet
    from synthaug.seg.presets import seg_preset

    p, r = seg_preset(name), 256
    model = build_unet(C, K, p).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    x = torch.randn(p.batch, C, r, r, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, K, (p.batch, 1, r, r), device="cuda")
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, p.batch


def diffusion_step(name: str, variant: str):
    from synthaug.diffusion.networks import DiffusionSpec, build_denoiser
    from synthaug.diffusion.presets import diffusion_preset

    p = diffusion_preset(name)
    spec = DiffusionSpec(variant, C, K)
    model = build_denoiser(p, spec).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr)
    r, b = p.resolution, p.batch
    inp = torch.randn(b, spec.denoised_channels + spec.condition_channels, r, r, device="cuda")
    target = torch.randn(b, spec.denoised_channels, r, r, device="cuda")
    t = torch.randint(0, p.timesteps, (b,), device="cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=p.precision != "fp32"):
            pred = model(inp, timesteps=t)
        loss = torch.nn.functional.mse_loss(pred.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, b


def gan_step(name: str, variant: str):
    from synthaug.gan import build_networks
    from synthaug.gan.networks import masks_to_onehot
    from synthaug.gan.presets import gan_preset

    p = gan_preset(name)
    r, b = p.resolution, p.batch
    G, D = build_networks(
        variant, r, C, K, z_dim=p.z_dim, w_dim=p.w_dim, mapping_layers=p.mapping_layers,
        channel_base=p.channel_base, channel_max=p.channel_max, mbstd_group=p.mbstd_group,
        cond_embed_dim=p.cond_embed_dim, d_channel_base=p.d_channel_base,
        d_architecture=p.d_architecture,
    )  # fmt: skip
    G, D = G.cuda(), D.cuda()
    opt_g = torch.optim.Adam(G.parameters(), lr=p.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=p.lr * p.d_lr_scale, betas=(0.0, 0.99))
    mask = masks_to_onehot(torch.randint(0, K, (b, r, r)), K).cuda()
    cond = mask if variant == "conditional" else None
    d_in = {"joint": C + K, "mask": K, "conditional": C}[variant]
    real = torch.randn(b, d_in, r, r, device="cuda")

    def d(x):
        return D(x, cond) if cond is not None else D(x)

    def step() -> None:
        ac = torch.autocast("cuda", dtype=torch.bfloat16, enabled=p.precision != "fp32")
        z = torch.randn(b, G.z_dim, device="cuda")
        with ac:
            fake = G(z, cond)
            loss_d = (
                torch.nn.functional.softplus(d(fake.detach()).float()).mean()
                + torch.nn.functional.softplus(-d(real).float()).mean()
            )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with ac:
            loss_g = torch.nn.functional.softplus(-d(G(z, cond)).float()).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    return step, b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible to torch", file=sys.stderr)
        return 2
    from synthaug.diffusion.presets import DIFFUSION_PRESETS
    from synthaug.gan.presets import GAN_PRESETS
    from synthaug.seg.presets import SEG_PRESETS

    checks = [(f"seg {n}", lambda n=n: seg_step(n)) for n in SEG_PRESETS if n.startswith("gpu")]
    for n in (n for n in DIFFUSION_PRESETS if n.startswith("gpu")):
        checks += [(f"diffusion {n} {v}", lambda n=n, v=v: diffusion_step(n, v))
                   for v in ("painter", "joint")]  # fmt: skip
    for n in (n for n in GAN_PRESETS if n.startswith("gpu")):
        checks += [(f"stylegan2 {n} {v}", lambda n=n, v=v: gan_step(n, v))
                   for v in ("joint", "mask", "conditional")]  # fmt: skip
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"{'preset':36s} {'img/s':>9s} {'peak GiB':>9s}")
    failed = []
    for label, make in checks:
        try:
            step, batch = make()
            rate, peak = _timed(step, args.steps, batch)
            print(f"{label:36s} {rate:9.1f} {peak:9.2f}", flush=True)
        except Exception:  # report every preset, then fail
            failed.append(label)
            print(f"{label:36s} FAILED\n{traceback.format_exc(limit=3)}", flush=True)
        torch.cuda.empty_cache()
    if failed:
        print(f"gpu_check: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
