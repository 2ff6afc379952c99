"""The FID Inception-v3: weight-file loading, its error paths and feature shapes.

The real pytorch-fid weights are not available offline, so a randomly initialised state dict
with the same keys and shapes stands in for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from synthaug.errors import SynthaugError
from synthaug.quality.features import InceptionExtractor, get_extractor
from synthaug.quality.inception import WEIGHTS_ENV, FIDInceptionV3, load_inception

# torchvision's inception_v3(aux_logits=False, num_classes=1008) — the module pytorch-fid loads
# its weights into — has exactly this many parameters.
TORCHVISION_FID_PARAMS = 23_850_960


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # The workloads here are tiny; one torch (and BLAS) thread avoids OpenMP oversubscription,
    # which slows small kernels by an order of magnitude when other jobs share the cores.
    try:
        from threadpoolctl import threadpool_limits  # optional (comes with scikit-learn)
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for m in model.modules():  # non-trivial BN statistics, so the features are not degenerate
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.state_dict()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, random_state) -> Path:
    """A plain state dict without BatchNorm counters (as files saved by old PyTorch are)."""
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save({k: v for k, v in random_state.items() if "num_batches" not in k}, path)
    return path


def test_architecture_has_torchvision_keys_and_size(random_state) -> None:
    model = FIDInceptionV3()
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_FID_PARAMS
    shapes = {k: tuple(v.shape) for k, v in random_state.items()}
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Mixed_5b.branch_pool.conv.weight"] == (32, 192, 1, 1)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["Mixed_7c.branch3x3dbl_3b.bn.running_var"] == (384,)
    assert shapes["fc.weight"] == (1008, 2048)
    assert not any(k.startswith("AuxLogits") for k in shapes)


def test_missing_weights_say_where_to_put_them(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(SynthaugError, match=WEIGHTS_ENV) as err:
        load_inception(None)
    assert "never downloads" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(SynthaugError, match=f"nope.pth: .*not found.*{WEIGHTS_ENV}"):
        get_extractor("inception")
    with pytest.raises(SynthaugError, match="not found"):
        load_inception(tmp_path / "absent.pth")


def test_bad_weight_files_give_one_line_errors(tmp_path) -> None:
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00not a torch file" * 100)
    cases = {
        "cannot read": corrupt,
        r"fc.weight has shape \[1000, 2048\], expected \[1008, 2048\]": {
            "fc.weight": torch.zeros(1000, 2048)
        },
        # wrapped in {"state_dict": ...} with DataParallel's "module." prefix: still recognised
        r"Conv2d_1a_3x3.conv.weight has shape \[32, 1, 3, 3\]": {
            "state_dict": {"module.Conv2d_1a_3x3.conv.weight": torch.zeros(32, 1, 3, 3)}
        },
        r"keys 472 missing \(e.g. Conv2d_1a_3x3.bn.bias\), 1 unexpected \(e.g. Mixed_7x": {
            "Mixed_7x.branch1x1.conv.weight": torch.zeros(1)
        },
        "not a PyTorch state dict": [1, 2, 3],
    }
    for pattern, content in cases.items():
        path = content if isinstance(content, Path) else tmp_path / "w.pth"
        if not isinstance(content, Path):
            torch.save(content, path)
        with pytest.raises(SynthaugError, match=pattern) as err:
            load_inception(path)
        assert "\n" not in str(err.value)


def test_weights_load_strictly_and_give_2048_features(monkeypatch, weights_file, random_state):
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_file))
    extractor = get_extractor("inception")
    assert isinstance(extractor, InceptionExtractor)
    assert not extractor.model.training
    assert torch.equal(extractor.model.fc.weight, random_state["fc.weight"])
    assert torch.equal(
        extractor.model.Mixed_7c.branch_pool.bn.running_var,
        random_state["Mixed_7c.branch_pool.bn.running_var"],
    )
    assert extractor.dim == 2048 and extractor.comparable_to_published
    one = np.random.default_rng(0).uniform(-1, 1, size=(1, 1, 40, 40)).astype(np.float32)
    f1 = extractor(one)  # one channel: replicated to RGB
    assert f1.shape == (1, 2048) and f1.dtype == np.float64 and np.isfinite(f1).all()
    assert f1.std() > 0
    f3 = extractor(np.repeat(one, 3, axis=1))  # three channels: used as RGB
    np.testing.assert_allclose(f3, f1, rtol=1e-5, atol=1e-6)
    with pytest.raises(SynthaugError, match="2 channels"):
        extractor(np.zeros((1, 2, 40, 40), np.float32))


def test_unknown_extractor_kind() -> None:
    with pytest.raises(SynthaugError, match="not one of domain, inception"):
        get_extractor("clip")
