"""The FID Inception-v3 network (TensorFlow "2015-12-05" graph, as ported by pytorch-fid).

The architecture is written out here in plain PyTorch so that no torchvision is needed. Module
names follow torchvision's ``Inception3`` (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn
.running_mean``, …), so the weights file used by pytorch-fid, ``pt_inception-2015-12-05-6726825d
.pth``, loads with ``strict=True``. The FID variant differs from torchvision's Inception-v3 in
the same places as pytorch-fid's: average pools exclude zero padding (``count_include_pad=False``,
TensorFlow's behaviour), the last block (Mixed_7c) max-pools in its pool branch, and the
classifier has 1008 outputs. Features are the 2048-d global average pool ("pool3").

Nothing is ever downloaded: the user supplies the weights file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthaug.errors import SynthaugError

WEIGHTS_ENV = "SYNTHAUG_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the 2015 TF graph's classifier; unused for features, kept so keys match


class BasicConv2d(nn.Module):
    """Conv (no bias) → BatchNorm (eps 1e-3) → ReLU."""

    def __init__(self, cin: int, cout: int, **kwargs: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg3(x: Tensor) -> Tensor:
    # TensorFlow's average pool ignores padded zeros: the FID graph's behaviour.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35×35 block: 1×1, 5×5, double 3×3 and pool branches → 224 + pool_features channels."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """35×35 → 17×17 reduction (Mixed_6a); identical in the FID graph."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    """17×17 block with factorised 7×7 convolutions → 768 channels."""

    def __init__(self, cin: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            bd = layer(bd)
        bp = self.branch_pool(_avg3(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """17×17 → 8×8 reduction (Mixed_7a); identical in the FID graph."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """8×8 block → 2048 channels. ``max_pool`` selects the FID graph's Mixed_7c variant."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        # The FID graph max-pools in its last block (a quirk of that TF graph, kept for parity).
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


def FIDInceptionE_1(cin: int) -> FIDInceptionE:  # noqa: N802 - pytorch-fid's block name
    return FIDInceptionE(cin, max_pool=False)


def FIDInceptionE_2(cin: int) -> FIDInceptionE:  # noqa: N802 - pytorch-fid's block name
    return FIDInceptionE(cin, max_pool=True)


class FIDInceptionV3(nn.Module):
    """Images [N, 3, H, W] in [-1, 1] → pool3 features [N, 2048].

    Inputs are resized bilinearly (align_corners=False, no antialiasing, as pytorch-fid does)
    to 299×299. ``fc`` only exists so that the published weights file loads strictly.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(dim=(2, 3))


def resolve_weights(path: Path | str | None) -> Path:
    """The weights file: ``path`` if given, else $SYNTHAUG_INCEPTION_WEIGHTS; must exist."""
    source = "the inception weights option"
    if path is None or str(path) == "":
        env = os.environ.get(WEIGHTS_ENV, "")
        if not env:
            raise SynthaugError(
                f"inception features need the FID Inception weights file ({WEIGHTS_FILE}, "
                f"as used by pytorch-fid); pass its path or set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE}"
                " (synthaug never downloads anything)"
            )
        path, source = env, WEIGHTS_ENV
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise SynthaugError(
            f"{resolved}: Inception weights file not found (from {source}); put {WEIGHTS_FILE} "
            f"there, or pass its path / set {WEIGHTS_ENV} (synthaug never downloads anything)"
        )
    return resolved


def _state_dict_of(obj: object) -> dict[str, Tensor] | None:
    """The tensor mapping inside a loaded file (a plain state dict or {'state_dict': ...})."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        return None
    return obj


def load_inception(path: Path | str | None = None) -> FIDInceptionV3:
    """Build the FID Inception-v3 and load the user's weights strictly; errors are one line."""
    weights = resolve_weights(path)
    try:
        obj = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged zip/pickle raises many types
        raise SynthaugError(
            f"{weights}: cannot read the Inception weights file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else 'corrupt'})"
        ) from exc
    state = _state_dict_of(obj)
    if state is None:
        raise SynthaugError(f"{weights}: not a PyTorch state dict of the FID Inception-v3")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    with torch.device("meta"):  # shapes only: no time spent initialising 24M parameters
        expected = FIDInceptionV3().state_dict()
    for key, value in state.items():
        if key in expected and tuple(value.shape) != tuple(expected[key].shape):
            raise SynthaugError(
                f"{weights}: not the FID Inception-v3 weights ({WEIGHTS_FILE}): {key} has shape "
                f"{list(value.shape)}, expected {list(expected[key].shape)}"
            )
    # BatchNorm counters may be absent (files saved by old PyTorch); unused in eval mode.
    counters = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - counters)
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise SynthaugError(
            f"{weights}: not the FID Inception-v3 weights ({WEIGHTS_FILE}): keys "
            + ", ".join(parts)
        )
    for key in counters - set(state):
        state[key] = torch.zeros((), dtype=torch.long)
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise SynthaugError(f"{weights}: corrupt Inception weights ({key} holds NaN/Inf)")
    with torch.device("meta"):
        model = FIDInceptionV3()
    model = model.to_empty(device="cpu")  # every tensor is then overwritten by the file's
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)
