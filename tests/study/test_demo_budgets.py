"""The demo's budgets: cpu (~20 minutes on 2 cores), quality (generators trained to their
targets; the default on a GPU) and quick."""

from __future__ import annotations

import pytest
import torch
import yaml

from synthaug.demo import FULL, QUALITY, QUICK, demo_size, demo_study, run_demo
from synthaug.errors import SynthaugError


def test_budget_names_and_the_default_follows_the_hardware(monkeypatch):
    assert demo_size("cpu") is FULL and demo_size("quality") is QUALITY
    assert demo_size(None, quick=True) is QUICK
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert demo_size() is FULL
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert demo_size() is QUALITY
    with pytest.raises(SynthaugError, match="unknown budget 'huge'"):
        demo_size("huge")
    with pytest.raises(SynthaugError, match="choose one"):
        demo_size("quality", quick=True)


def test_quality_budget_is_the_cpu_demo_with_longer_training_and_the_whole_grid():
    for name in ("patients", "resolution", "study_folds", "gan_preset", "seg_preset"):
        assert getattr(QUALITY, name) == getattr(FULL, name), name
    # The cpu demo trades grid size for U-Nets trained to convergence; quality runs it all.
    assert set(FULL.sources) < set(QUALITY.sources)
    assert set(FULL.n_levels) < set(QUALITY.n_levels)
    for variant, kimg in FULL.gan_kimg.items():
        assert QUALITY.gan_kimg[variant] > kimg
    assert QUALITY.diffusion_kimg > FULL.diffusion_kimg
    study = demo_study([], QUALITY, seed=0)
    assert study["name"] == "demo-quality" and study["gan"]["kimg"] == QUALITY.gan_kimg
    assert demo_study([], FULL, seed=0)["name"] == "demo"


def test_a_demo_folder_keeps_its_budget(tmp_path):
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({"name": "demo"}))
    with pytest.raises(SynthaugError, match="holds the 'demo' demo"):
        run_demo(tmp_path, budget="quality")
