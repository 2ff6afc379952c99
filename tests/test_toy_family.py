"""A generator family is one package plus one registry line: a toy family, defined in this
file alone, trains through ``train-generator``, generates through ``generate`` and runs in a
study (its config section, dry-run estimate and source included) without any other module
knowing it. The constant painter paints every pixel of class k with the training images'
mean of class k (per modality) plus seeded noise; "training" is one step of the lifecycle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthaug.atomic import atomic_file
from synthaug.errors import SynthaugError
from synthaug.generator import (
    FittedSettings,
    GeneratorRef,
    Outputs,
    PresetRegistry,
    RunDescription,
    RunLayout,
    RunMeta,
    Snapshot,
    SourceKind,
    TrainingHealth,
    TrainRequest,
    run_family,
    with_settings,
)
from synthaug.lifecycle import Trainer, new_meta, open_run, open_store, train_run
from synthaug.stages.families import FAMILIES, register, unregister

NAME = "constant"
LAYOUT = RunLayout(Path(), snapshot_prefix="means", snapshot_suffix=".npy")
OUTPUTS = Outputs(images=True, masks=False)


@dataclass(frozen=True)
class ConstantPreset:
    name: str
    noise: float = 0.05  # standard deviation of the seeded noise, in image units


PRESETS = PresetRegistry(NAME, (ConstantPreset("default"),))


class _Fit(Trainer):
    def __init__(self, meta: RunMeta, store, out: Path) -> None:
        super().__init__(LAYOUT.at(out), meta, snapshot_kimg=1.0)
        self.images, self.labels = store.training_arrays(meta.train_patients)

    def train_step(self) -> dict[str, float]:
        classes = len(self.meta.labels)
        self.means = np.stack(
            [self.images.transpose(1, 0, 2, 3)[:, self.labels == k].mean(axis=1)
             if (self.labels == k).any() else np.zeros(self.images.shape[1])
             for k in range(classes)]
        ).astype(np.float32)  # fmt: skip
        self.nimg, self.step = len(self.labels), 1
        return {"spread": float(self.means.std())}

    def save_snapshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as handle:
            np.save(handle, self.means)


class ConstantSampler:
    variant = "painter"
    outputs = OUTPUTS
    precision = "fp32"

    def __init__(self, meta: RunMeta, snapshot: Path) -> None:
        self.means = np.load(snapshot)
        self.noise = PRESETS.from_record(meta.preset).noise

    def sample(self, count, seed, masks=None, truncation=1.0):
        masks = np.asarray(masks)[:count]
        rng = np.random.default_rng(seed)
        images = self.means[masks].transpose(0, 3, 1, 2)
        images = images + rng.normal(0, self.noise, images.shape).astype(np.float32)
        return np.clip(images, -1, 1).astype(np.float32), None


class ConstantFamily:
    name = NAME
    variants = ("painter",)
    section = NAME
    settings = FittedSettings
    presets = PRESETS
    default_preset = "default"
    options: frozenset[str] = frozenset()
    sources = (
        SourceKind(
            "real-mask-constant", GeneratorRef(NAME, "painter"), "real", "class means, painted"
        ),
    )

    def owns(self, run: Path) -> bool:
        return run_family(run) == NAME

    def train(self, request: TrainRequest) -> Path:
        preset = with_settings(PRESETS.named(request.preset), request.settings)
        store = open_store(request, None, preset.name)
        out = Path(request.out)
        meta = open_run(request, LAYOUT.at(out), new_meta(request, NAME, store, preset),
                        PRESETS.from_record)  # fmt: skip
        if LAYOUT.at(out).summary.exists():
            return out
        fit = _Fit(meta, store, out)
        train_run(fit, len(fit.labels), "fit constant painter")
        return out

    def describe(self, run: Path) -> RunDescription:
        return RunDescription.of(RunMeta.read(run, NAME), OUTPUTS)

    def snapshots(self, run: Path) -> list[Snapshot]:
        return LAYOUT.at(run).snapshots()

    def load(self, run: Path, snapshot: Path | None = None) -> ConstantSampler:
        path = Path(snapshot) if snapshot else LAYOUT.at(run).snapshot_files()[-1]
        return ConstantSampler(RunMeta.read(run, NAME), path)

    def health(self, run: Path) -> TrainingHealth | None:
        return TrainingHealth.of_run(run)

    def estimate_seconds(self, request: TrainRequest, score: bool) -> float | None:
        return 1.0


@pytest.fixture
def constant_family():
    fam = register(ConstantFamily())
    yield fam
    unregister(NAME)


def test_the_toy_family_trains_generates_and_refuses_like_every_family(
    constant_family, toy_store, run_cli, tmp_path
):
    run = tmp_path / "run"
    train = ("train-generator", "--family", NAME, "--variant", "painter", "--store",
             toy_store.path, "--fold", "0", "--out", run, "--no-quality")  # fmt: skip
    result = run_cli(*train)
    assert result.code == 0, result.err + result.out
    meta = json.loads((run / "run.json").read_text())
    assert meta["family"] == NAME and meta["train_patients"] == toy_store.split(0).train
    assert len(constant_family.snapshots(run)) == 1
    assert json.loads((run / "summary.json").read_text())["nimg"] > 0
    assert (run / "metrics.jsonl").read_text().count("spread") == 1
    # the lifecycle's rules, which the family did not write
    changed = run_cli(*train, "--resume", "--set", "noise=0.2")
    assert changed.code != 0 and "noise: recorded 0.05, --set 0.2" in changed.err + changed.out
    not_taken = run_cli(*train, "--resume", "--sample-steps", "3")
    assert not_taken.code != 0 and f"the {NAME} family does not take it" in not_taken.err

    syn = tmp_path / "syn"
    result = run_cli("generate", "--run", run, "--source", "real-mask-constant",
                     "--patients", "2", "--out", syn)  # fmt: skip
    assert result.code == 0, result.err + result.out
    dataset = json.loads((syn / "dataset.json").read_text())
    assert dataset["numTraining"] == 2 and NAME in dataset["description"]


def test_the_toy_family_runs_in_a_study_with_its_own_section(
    constant_family, study_store, run_cli, tmp_path
):
    raw = {
        "name": "toy-family",
        "datasets": [{"name": "toy", "store": str(study_store.path)}],
        "sources": ["real-mask-constant"],
        "n_levels": [0, 1],
        "folds": [0, 1],
        NAME: {"seed": 3, "allow_unusable": True},  # its section, from the registry
        "seg": {"preset": "cpu-micro", "max_steps": 20},
        "quality": {"enabled": False},
    }
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(raw))
    plan = run_cli("study", "--config", config, "--out", tmp_path / "study", "--dry-run")
    assert plan.code == 0, plan.err + plan.out
    generators_line = next(line for line in plan.out.splitlines() if "train-generators" in line)
    assert "2 jobs" in generators_line and "unmeasured" not in generators_line
    result = run_cli("study", "--config", config, "--out", tmp_path / "study", "--workers", "1")
    assert result.code == 0, result.err + result.out
    rows = (tmp_path / "study" / "results.csv").read_text()
    assert rows.count("real-mask-constant") >= 2  # n = 1 on both folds
    runs = list((tmp_path / "study").rglob("run.json"))
    seeds = {json.loads(p.read_text())["seed"] for p in runs if NAME in p.read_text()}
    assert seeds == {3}  # the section's seed reached its generators
    with pytest.raises(SynthaugError, match="taken|registered"):
        register(ConstantFamily())  # a second family of the same name is refused
    assert NAME in FAMILIES
