"""Feature extractors for FID/KID and precision/recall, behind one small interface.

Every extractor maps images [N, C, H, W] in [-1, 1] to features [N, dim] (float64 numpy), in
batches, without gradients, in eval mode:

``inception``
    The standard FID Inception-v3 (pytorch-fid's ``pt_inception-2015-12-05`` weights, 2048-d
    pool3 features), loaded from a file the user supplies (path or $SYNTHAUG_INCEPTION_WEIGHTS).
    Only these numbers are comparable to published FIDs — and even then only for 3-channel
    RGB-like inputs; medical modalities are fed one at a time, replicated to 3 channels.

``domain`` (default)
    A small CNN trained to *segment* the fold's REAL training slices from the given channel
    subset (one modality alone, or all of them), cached on disk and reused. Its features are the
    per-channel spatial mean and standard deviation of each encoder stage's activations. They
    know what the anatomy and labels of this dataset look like, which ImageNet features do not,
    but the numbers are NOT comparable to published FIDs nor across datasets, folds or
    encoder settings: compare synthetic sets with each other under the same encoder.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthaug.atomic import atomic_file
from synthaug.data.store import SliceStore
from synthaug.errors import SynthaugError
from synthaug.quality.inception import FEATURE_DIM, load_inception

KINDS = ("domain", "inception")
ENCODER_FORMAT = "synthaug-domain-encoder"
ENCODER_VERSION = 1  # bump when the architecture or training changes: invalidates caches


def as_image_tensor(images: Tensor | np.ndarray, what: str = "images") -> Tensor:
    """[N, C, H, W] float32 tensor (CPU) from an array or tensor; one-line error otherwise."""
    # ascontiguousarray: reversed or strided views (images[::-1]) are fine too.
    x = torch.as_tensor(np.ascontiguousarray(images) if not isinstance(images, Tensor) else images)
    if x.ndim != 4:
        raise SynthaugError(f"{what}: expected [N, C, H, W], got shape {list(x.shape)}")
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise SynthaugError(f"{what}: contains NaN or Inf values")
    return x


class FeatureExtractor(ABC):
    """images [N, C, H, W] in [-1, 1] → features [N, dim] float64.

    ``channels``: indices of the store's modality channels this extractor reads (None: all it
    is given). Images holding exactly ``len(channels)`` channels are taken as already selected;
    images with more channels have ``channels`` picked out of them.
    """

    name: str
    dim: int
    channels: tuple[int, ...] | None = None
    batch_size: int = 128
    device: torch.device = torch.device("cpu")
    comparable_to_published: bool = False

    @abstractmethod
    def _forward(self, x: Tensor) -> Tensor:
        """One batch [n, c, h, w] float32 on ``device`` → [n, dim]."""

    def _select(self, x: Tensor) -> Tensor:
        if self.channels is None or x.shape[1] == len(self.channels):
            return x
        if max(self.channels) >= x.shape[1]:
            raise SynthaugError(
                f"{self.name} features: images have {x.shape[1]} channels, extractor reads "
                f"channels {list(self.channels)}"
            )
        return x[:, list(self.channels)]

    @torch.no_grad()
    def __call__(self, images: Tensor | np.ndarray) -> np.ndarray:
        x = self._select(as_image_tensor(images))
        out = np.zeros((len(x), self.dim), dtype=np.float64)
        for i in range(0, len(x), self.batch_size):
            batch = x[i : i + self.batch_size].to(self.device)
            out[i : i + len(batch)] = self._forward(batch).double().cpu().numpy()
        return out

    def describe(self) -> dict:
        """What produced the features, for reports."""
        return {
            "extractor": self.name,
            "dim": self.dim,
            "channels": None if self.channels is None else list(self.channels),
            "comparable_to_published": self.comparable_to_published,
        }


# -- inception --------------------------------------------------------------------------------


class InceptionExtractor(FeatureExtractor):
    """FID Inception-v3 pool3 features (2048-d) from the user's weights file.

    Single-channel images are replicated to 3 channels; 3-channel images are used as RGB; any
    other channel count is refused (feed modalities one at a time).
    """

    comparable_to_published = True

    def __init__(
        self,
        weights: Path | str | None = None,
        channels: Sequence[int] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ) -> None:
        self.name = "inception"
        self.dim = FEATURE_DIM
        self.channels = None if channels is None else tuple(int(c) for c in channels)
        if self.channels is not None and len(self.channels) not in (1, 3):
            raise SynthaugError(
                f"inception features: need 1 or 3 channels, got {len(self.channels)}; "
                "use one modality at a time"
            )
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_inception(weights).to(self.device)

    def _forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise SynthaugError(
                f"inception features: images have {x.shape[1]} channels; Inception takes 1 "
                "(replicated) or 3; use one modality at a time"
            )
        return self.model(x)


# -- domain encoder ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainEncoderConfig:
    """Architecture and training budget of the in-domain encoder.

    widths: channels of each encoder stage; stage 0 is at full resolution, each later stage
        halves it with a stride-2 convolution (then one more 3×3 convolution).
    steps, batch, lr: Adam training on the real training slices (Dice + cross-entropy).
    max_resolution: slices larger than this are downsampled (area) first, for training and
        features alike (cost grows with resolution²).
    bn_samples: training slices used to re-estimate BatchNorm statistics after training.
    """

    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    steps: int = 200
    batch: int = 16
    lr: float = 3e-3
    seed: int = 0
    max_resolution: int = 128
    bn_samples: int = 512

    def validate(self) -> DomainEncoderConfig:
        if not self.widths or min(self.widths) < 1:
            raise SynthaugError(f"domain encoder widths: need positive widths, got {self.widths}")
        if self.steps < 1 or self.batch < 1 or self.lr <= 0 or self.max_resolution < 8:
            raise SynthaugError(f"domain encoder: invalid training settings {self}")
        return self

    @property
    def dim(self) -> int:
        return 2 * sum(self.widths)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    # BatchNorm (not instance norm): per-image intensity and contrast stay visible in the
    # features, and in eval mode each image's features do not depend on its batch.
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DomainNet(nn.Module):
    """A light segmentation CNN: [N, C, R, R] → logits [N, K, R, R]; ``features`` → [N, dim].

    Encoder stages at R, R/2, R/4, …; each stage has a 1×1 head to K logits, upsampled to R and
    summed (an FCN-style decoder: cheap on CPU, and it forces every stage — including the
    full-resolution one that sees noise and blur — to carry label-relevant information).
    """

    def __init__(
        self, in_channels: int, num_classes: int, widths: Sequence[int], max_resolution: int
    ) -> None:
        super().__init__()
        self.max_resolution = max_resolution
        stages = []
        prev = in_channels
        for i, w in enumerate(widths):
            if i == 0:
                stages.append(_conv(prev, w))
            else:
                stages.append(nn.Sequential(_conv(prev, w, stride=2), _conv(w, w)))
            prev = w
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(nn.Conv2d(w, num_classes, 1) for w in widths)

    def _resize(self, x: Tensor) -> Tensor:
        if x.shape[-1] > self.max_resolution or x.shape[-2] > self.max_resolution:
            x = F.interpolate(x, size=(self.max_resolution,) * 2, mode="area")
        return x

    def _stages(self, x: Tensor) -> list[Tensor]:
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        acts = self._stages(self._resize(x))
        # Coarse-to-fine sum of the heads: one 2× upsampling per stage instead of one
        # full-resolution upsampling per stage (those took a quarter of a CPU training step).
        logits = self.heads[-1](acts[-1])
        for act, head in zip(acts[-2::-1], self.heads[-2::-1], strict=True):
            logits = head(act) + F.interpolate(
                logits, size=act.shape[-2:], mode="bilinear", align_corners=False
            )
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def features(self, x: Tensor) -> Tensor:
        """Spatial mean and std of every stage's activations, concatenated → [N, 2·Σwidths].

        The mean says what is there (tissue, lesion, contrast), the std how it varies (edges,
        texture, noise) — the full-resolution stage is what makes noise and blur visible.
        """
        parts = []
        for act in self._stages(self._resize(x)):
            std, mean = torch.std_mean(act, dim=(2, 3), correction=0)
            parts += [mean, std]
        return torch.cat(parts, dim=1)


class DomainExtractor(FeatureExtractor):
    """Features of a trained :class:`DomainNet` (see the module docstring for caveats)."""

    def __init__(
        self,
        network: DomainNet,
        channels: Sequence[int],
        meta: dict,
        path: Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        train_seconds: float = 0.0,
    ) -> None:
        self.name = "domain"
        self.channels = tuple(int(c) for c in channels)
        self.network = network.to(device, memory_format=torch.channels_last)
        self.network.eval().requires_grad_(False)
        self.dim = int(meta["dim"])
        self.meta = meta
        self.path = path
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.train_seconds = train_seconds  # 0 when loaded from the cache

    def _forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != len(self.channels):
            raise SynthaugError(
                f"domain features: images have {x.shape[1]} channels, the encoder reads "
                f"{len(self.channels)} (store channels {list(self.channels)})"
            )
        return self.network.features(x.contiguous(memory_format=torch.channels_last))

    def describe(self) -> dict:
        return {
            **super().describe(),
            "encoder": str(self.path) if self.path else None,
            "modalities": self.meta.get("modalities"),
            "fold": self.meta.get("fold"),
            "train_seconds": self.meta.get("train_seconds"),
        }


@dataclass
class _TrainData:
    images: Tensor  # [N, c, R, R] float32, channel subset
    labels: Tensor  # [N, R, R] int64
    num_classes: int


def _train_data(store: SliceStore, fold: int, channels: tuple[int, ...]) -> _TrainData:
    split = store.split(fold)
    images, labels = store.training_arrays(split.train)
    if len(images) < 2:
        raise SynthaugError(
            f"domain encoder: fold {fold} has {len(images)} real training slices; need at least 2"
        )
    images = np.ascontiguousarray(images[:, list(channels)])
    return _TrainData(torch.from_numpy(images), torch.from_numpy(labels), store.num_classes)


def _cache_key(
    store: SliceStore,
    fold: int,
    channels: tuple[int, ...],
    config: DomainEncoderConfig,
    data: _TrainData,
) -> str:
    """Hash of everything the trained weights depend on (settings, patients, pixel data)."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {
                "version": ENCODER_VERSION,
                "config": asdict(config),
                "fold": fold,
                "channels": list(channels),
                "modalities": store.modalities,
                "labels": store.label_names,
                "train": store.split(fold).train,
            },
            sort_keys=True,
        ).encode()
    )
    h.update(data.images.numpy().tobytes())
    h.update(data.labels.numpy().astype(np.uint8).tobytes())
    return h.hexdigest()[:16]


def _train_network(
    data: _TrainData, config: DomainEncoderConfig, device: torch.device
) -> DomainNet:
    """Train a DomainNet to segment ``data`` (Dice + CE), then re-estimate BatchNorm stats."""
    from monai.losses import DiceCELoss  # heavy import, only when training

    with torch.random.fork_rng(devices=[]):  # do not disturb the caller's global RNG
        torch.manual_seed(config.seed)
        # channels_last: ~30% faster small convolutions on CPU (oneDNN's native layout).
        net = DomainNet(
            data.images.shape[1], data.num_classes, config.widths, config.max_resolution
        ).to(device, memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        g = torch.Generator().manual_seed(config.seed)
        net.train()
        for _ in range(config.steps):
            idx = torch.randint(len(data.images), (config.batch,), generator=g)
            x = data.images[idx].to(device).contiguous(memory_format=torch.channels_last)
            y = data.labels[idx].to(device)
            loss = loss_fn(net(x), y.unsqueeze(1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        # Running BatchNorm statistics are an EMA of the last few batches; recompute them as a
        # plain average over a fixed sample so the features do not hinge on those batches.
        idx = torch.randperm(len(data.images), generator=g)[: config.bn_samples]
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        with torch.no_grad():
            for i in range(0, len(idx), 128):
                x = data.images[idx[i : i + 128]].to(device)
                net.features(x.contiguous(memory_format=torch.channels_last))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    return net.eval()


def encoder_path(cache_dir: Path | str, fold: int, channels: Sequence[int], key: str) -> Path:
    tag = "c" + "-".join(str(c) for c in channels)
    return Path(cache_dir) / f"domain-encoder-fold{fold}-{tag}-{key}.pt"


def _load_cached(path: Path, in_channels: int, num_classes: int) -> tuple[DomainNet, dict] | None:
    """The cached encoder at ``path``, or None (with a warning) when it is unreadable."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(obj["meta"])
        if obj.get("format") != ENCODER_FORMAT or meta.get("version") != ENCODER_VERSION:
            raise ValueError("not a current synthaug domain encoder")
        cfg = meta["config"]
        net = DomainNet(in_channels, num_classes, cfg["widths"], cfg["max_resolution"])
        net.load_state_dict(obj["state_dict"], strict=True)
    except Exception as exc:  # corrupt / stale cache entries are rebuilt, never trusted
        warnings.warn(
            f"{path}: unusable cached domain encoder ({type(exc).__name__}); retraining",
            stacklevel=3,
        )
        return None
    return net, meta


def load_or_train_domain_encoder(
    store: SliceStore,
    fold: int,
    cache_dir: Path | str,
    channels: Sequence[int] | None = None,
    config: DomainEncoderConfig | None = None,
    device: str | torch.device = "cpu",
) -> DomainExtractor:
    """The domain encoder for (store, fold, channels): from the cache, or trained and cached.

    The cache file ``<cache_dir>/domain-encoder-fold{F}-c{channels}-{hash}.pt`` is written
    atomically; the hash covers the settings, the fold's training patients and their pixels.
    """
    config = (config or DomainEncoderConfig()).validate()
    chans = (
        tuple(range(store.num_channels)) if channels is None else tuple(int(c) for c in channels)
    )
    if (
        not chans
        or min(chans) < 0
        or max(chans) >= store.num_channels
        or len(set(chans)) != len(chans)
    ):
        raise SynthaugError(
            f"domain encoder channels: {list(chans)} are not distinct channels of "
            f"0..{store.num_channels - 1} ({', '.join(store.modalities)})"
        )
    device = torch.device(device)
    data = _train_data(store, fold, chans)
    key = _cache_key(store, fold, chans, config, data)
    path = encoder_path(cache_dir, fold, chans, key)
    if path.is_file():
        cached = _load_cached(path, len(chans), store.num_classes)
        if cached is not None:
            net, meta = cached
            return DomainExtractor(net, chans, meta, path, device)
    t0 = time.perf_counter()
    net = _train_network(data, config, device).cpu()
    seconds = time.perf_counter() - t0
    meta = {
        "version": ENCODER_VERSION,
        "config": {**asdict(config), "widths": list(config.widths)},
        "dim": config.dim,
        "fold": fold,
        "channels": list(chans),
        "modalities": [store.modalities[c] for c in chans],
        "num_classes": store.num_classes,
        "train_slices": len(data.images),
        "train_seconds": round(seconds, 2),
        "store": str(store.path),
    }
    buffer = io.BytesIO()
    torch.save(
        {"format": ENCODER_FORMAT, "meta": json.dumps(meta), "state_dict": net.state_dict()}, buffer
    )
    with atomic_file(path) as handle:
        handle.write(buffer.getbuffer())
    return DomainExtractor(net, chans, meta, path, device, train_seconds=seconds)


# -- factory ----------------------------------------------------------------------------------


def get_extractor(
    kind: str = "domain",
    *,
    store: SliceStore | None = None,
    fold: int = 0,
    channels: Sequence[int] | None = None,
    cache_dir: Path | str | None = None,
    weights: Path | str | None = None,
    config: DomainEncoderConfig | None = None,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """A feature extractor by name.

    domain: needs ``store``, ``fold`` and ``cache_dir``; ``channels`` selects the modality
        channels the encoder reads (default all: the joint encoder).
    inception: ``weights`` (else $SYNTHAUG_INCEPTION_WEIGHTS); ``channels`` optional (1 or 3).
    """
    if kind == "inception":
        return InceptionExtractor(weights, channels, device)
    if kind == "domain":
        if store is None or cache_dir is None:
            raise SynthaugError("domain features: need the slice store and a cache directory")
        return load_or_train_domain_encoder(store, fold, cache_dir, channels, config, device)
    raise SynthaugError(f"feature extractor: {kind!r} is not one of {', '.join(KINDS)}")


__all__ = [
    "KINDS",
    "DomainEncoderConfig",
    "DomainExtractor",
    "DomainNet",
    "FeatureExtractor",
    "InceptionExtractor",
    "as_image_tensor",
    "get_extractor",
    "load_or_train_domain_encoder",
]
