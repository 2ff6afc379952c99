"""Device and numeric precision of training and sampling: ``fp32``, ``bf16`` autocast, or
``auto``.

``auto`` takes bf16 autocast where it is both fast and measured to keep a family's quality:
on CUDA where the GPU supports bf16; on the CPU where the instruction set has native bf16
(AVX512-BF16 or AMX) **and** a short timed probe finds a 3×3 convolution faster in bf16 than
in fp32 on this machine. Everything else runs in fp32. Under autocast only the forward
convolutions and matmuls run in bf16: weights, gradients, optimiser state, EMA, losses and
the StyleGAN2 R1 / path-length penalties stay fp32 (the callers compute them outside the
autocast region or on ``.float()`` outputs).

Measured side by side in ``benchmarks/precision.py`` (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

import torch

from synthaug.errors import SynthaugError

PRECISIONS = ("auto", "fp32", "bf16")
# bf16 must beat fp32 by this factor in the probe before ``auto`` takes it: a small gain is
# not worth a numeric change.
PROBE_MIN_SPEEDUP = 1.15


def resolve_device(name: str) -> torch.device:
    """A run's device from ``auto`` (CUDA when there is one), ``cpu`` or ``cuda[:i]``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SynthaugError(f"device: {name} requested but no CUDA device is available")
    return torch.device(name)


def check_precision(name: str | None, what: str = "precision") -> str | None:
    """``name`` when it is one of PRECISIONS (or None: the preset's); else one clear error."""
    if name is not None and name not in PRECISIONS:
        raise SynthaugError(f"{what}: {name!r} is not one of {', '.join(PRECISIONS)}")
    return name


def cpu_bf16_instructions() -> list[str]:
    """The CPU's native bf16 instruction sets found in /proc/cpuinfo (Linux; [] elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("amx_bf16", "avx512_bf16")})


def _median_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


@functools.cache
def cpu_bf16_speedup() -> float:
    """fp32 time / bf16-autocast time of a 3×3 convolution (16×32×32×32 → 32 channels), the
    workload of the U-Nets and painters here; median of five runs after a warm-up (~0.1 s)."""
    x = torch.randn(16, 32, 32, 32)
    conv = torch.nn.Conv2d(32, 32, 3, padding=1)

    def fp32() -> None:
        with torch.no_grad():
            conv(x)

    def bf16() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            conv(x)

    fp32(), bf16()  # warm-up: oneDNN picks its kernels on the first call
    return _median_seconds(fp32) / max(_median_seconds(bf16), 1e-9)


def matmul_gflops(threads: int | None = None, size: int = 2048) -> float:
    """This machine's fp32 matmul rate in GFLOP/s (2048², median of five): the figure
    the README's times are stated with, and the demo's speed probe (~1 s)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm-up
        return 2 * size**3 / _median_seconds(lambda: a @ b) / 1e9
    finally:
        torch.set_num_threads(previous)


def auto_precision(
    device: torch.device | str, bf16_keeps_quality: bool = True, needs_amx: bool = False
) -> str:
    """What ``auto`` resolves to on ``device``; ``bf16_keeps_quality`` False (a family whose
    quality was not shown to hold in bf16) always gives fp32; ``needs_amx``: a network whose
    kernels are too small to gain from AVX512-BF16 alone takes bf16 on the CPU only with AMX."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if not bf16_keeps_quality:
        return "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    instructions = cpu_bf16_instructions()
    if device.type != "cpu" or not instructions:
        return "fp32"
    if needs_amx and "amx_bf16" not in instructions:
        return "fp32"
    return "bf16" if cpu_bf16_speedup() >= PROBE_MIN_SPEEDUP else "fp32"


def resolve_precision(
    name: str | None,
    device: torch.device | str,
    bf16_keeps_quality: bool = True,
    needs_amx: bool = False,
) -> str:
    """``fp32`` or ``bf16``: what a run with precision ``name`` (None counts as auto) uses on
    ``device`` (a torch device, or "auto": CUDA when there is one)."""
    check_precision(name)
    if name in (None, "auto"):
        return auto_precision(device, bf16_keeps_quality, needs_amx)
    return name


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The autocast context of a resolved precision (a no-op context for fp32)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
