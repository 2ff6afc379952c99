"""The training lifecycle every family shares (``synthaug.lifecycle``), with a counting
trainer: the snapshot schedule, metrics rows, checkpoint and resume, the NaN stop, the
resume rule's identity checks and the versioned records it writes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from synthaug.errors import SynthaugError
from synthaug.generator import (
    SUMMARY_VERSION,
    PresetRegistry,
    RunLayout,
    RunMeta,
    TrainingHealth,
    TrainingSummary,
    TrainRequest,
)
from synthaug.lifecycle import (
    Trainer,
    new_meta,
    open_run,
    open_store,
    resume_checkpoint,
    target_images,
    train_run,
)
from synthaug.runlog import read_metrics

LAYOUT = RunLayout(Path(), snapshot_prefix="count", snapshot_suffix=".json")


@dataclass(frozen=True)
class CountPreset:
    name: str
    batch: int = 8
    lr: float = 0.1
    widths: tuple[int, ...] = (4, 8)
    label: str = "x"


PRESETS = PresetRegistry("counting", (CountPreset("small"),))


class Counting(Trainer):
    """Counts images; a loss of 1/step (NaN from ``nan_at`` images on)."""

    def __init__(self, out: Path, meta: RunMeta, snapshot_kimg: float = 0.1, nan_at=None):
        super().__init__(LAYOUT.at(out), meta, snapshot_kimg)
        self.nan_at, self.value = nan_at, 0

    def train_step(self) -> dict[str, float]:
        loss = (
            math.nan
            if self.nan_at is not None and self.nimg >= self.nan_at
            else 1 / (1 + self.step)
        )
        self.check_finite({"loss": loss})
        self.value += 1
        self.nimg += 8
        self.step += 1
        return {"loss": loss}

    def save_snapshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"nimg": self.nimg, "value": self.value}))

    def family_state(self) -> dict:
        return {"value": self.value}

    def load_family_state(self, state: dict) -> None:
        self.value = state["value"]


def _meta(**over) -> RunMeta:
    fields = dict(
        store="/s", store_name="s", fold=0, modalities=["A"], labels=["bg", "x"], resolution=32,
        train_patients=["p1", "p2"], median_slices=3, pixel_size_mm=1.0, store_fingerprint="f",
        family="counting", variant="painter", preset={"name": "small", "batch": 8, "lr": 0.1,
        "widths": [4, 8]}, seed=0, kimg=0.3,
    )  # fmt: skip
    fields.update(over)
    return RunMeta(**fields)


def _request(out: Path, **over) -> TrainRequest:
    return replace(TrainRequest("/s", 0, "painter", str(out), "small", 0.3), **over)


def test_snapshots_metrics_and_summary_follow_the_schedule(tmp_path):
    run = tmp_path / "run"
    meta = open_run(_request(run), LAYOUT.at(run), _meta(), PRESETS.from_record)
    trainer = Counting(run, meta)
    summary = train_run(trainer, target_images(0.3, 8), "count")
    assert target_images(0.3, 8) == 304  # whole minibatches, at least the length asked
    # a snapshot at every 100 images and at the end
    assert [s.nimg for s in LAYOUT.at(run).snapshots()] == [104, 200, 304]
    rows = read_metrics(run)
    assert [r["nimg"] for r in rows] == [104, 200, 256, 304]  # ticks and before each snapshot
    assert rows[0]["loss"] == pytest.approx(sum(1 / (1 + s) for s in range(13)) / 13)
    on_disk = TrainingSummary.read(run)
    assert on_disk.nimg == summary.nimg == 304 and on_disk.steps == 38
    assert on_disk.version == SUMMARY_VERSION and on_disk.last_snapshot.endswith("304.json")
    assert TrainingHealth.of_run(run).nimg == 304
    assert json.loads((run / "run.json").read_text())["family"] == "counting"


def test_a_resumed_run_continues_from_its_checkpoint_and_drops_later_rows(tmp_path):
    run = tmp_path / "run"
    meta = open_run(_request(run), LAYOUT.at(run), _meta(), PRESETS.from_record)
    first = Counting(run, meta)
    train_run(first, 200, "count")
    with open(run / "metrics.jsonl", "a") as handle:  # a row a killed run logged after it
        handle.write(json.dumps({"nimg": 248, "loss": 0.0}) + "\n")
    resumed_meta = open_run(
        _request(run, resume=True), LAYOUT.at(run), _meta(), PRESETS.from_record
    )
    second = Counting(run, resumed_meta)
    resume_checkpoint(second)
    assert (second.nimg, second.step, second.value) == (200, 25, 25)
    assert [r["nimg"] for r in read_metrics(run)] == [104, 200]
    train_run(second, 304, "count")
    assert json.loads(LAYOUT.at(run).snapshot(304).read_text())["value"] == 38


def test_a_non_finite_loss_stops_training_and_keeps_the_last_snapshot(tmp_path):
    run = tmp_path / "run"
    meta = open_run(_request(run), LAYOUT.at(run), _meta(), PRESETS.from_record)
    trainer = Counting(run, meta, nan_at=150)
    with pytest.raises(SynthaugError, match=r"diverged at 0\.15 kimg: loss is nan; the last good "
                       r"snapshot .*count-000000104\.json is kept\. Lower the learning rate"):  # fmt: skip
        train_run(trainer, 304, "count")
    assert [s.nimg for s in LAYOUT.at(run).snapshots()] == [104]
    assert not (run / "summary.json").exists()  # a failed call leaves no summary to trust


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"fold": 1}, "fold=0, not 1"),
        ({"variant": "joint"}, "variant='painter', not 'joint'"),
        ({"store_fingerprint": "g"}, "store_fingerprint='f', not 'g'"),
        ({"train_patients": ["p1"]}, "train_patients=2 patients, not 1"),
    ],
)
def test_a_run_resumes_only_on_the_data_it_started_with(tmp_path, changed, message):
    run = tmp_path / "run"
    open_run(_request(run), LAYOUT.at(run), _meta(), PRESETS.from_record)
    before = (run / "run.json").read_text()
    with pytest.raises(SynthaugError, match=message.replace("[", r"\[")):
        open_run(_request(run, resume=True), LAYOUT.at(run), _meta(**changed), PRESETS.from_record)
    assert (run / "run.json").read_text() == before


def test_resume_keeps_the_recorded_preset_and_refuses_changed_options(tmp_path):
    run = tmp_path / "run"
    open_run(_request(run), LAYOUT.at(run), _meta(), PRESETS.from_record)
    with pytest.raises(SynthaugError, match="--resume"):
        open_run(_request(run), LAYOUT.at(run), _meta(), PRESETS.from_record)
    with pytest.raises(SynthaugError, match=r"lr: recorded 0\.1, --set 0\.2"):
        open_run(_request(run, resume=True, settings={"lr": "0.2"}), LAYOUT.at(run), _meta(),
                 PRESETS.from_record)  # fmt: skip
    newer = _meta(preset={"name": "small", "batch": 8, "lr": 0.5, "widths": [4, 8]}, kimg=1.0)
    meta = open_run(_request(run, resume=True, settings={"lr": "0.1"}), LAYOUT.at(run), newer,
                    PRESETS.from_record)  # fmt: skip
    assert meta.preset["lr"] == 0.1 and meta.kimg == 1.0  # the run's preset; the new length
    assert RunMeta.read(run).kimg == 1.0


def test_set_values_take_their_fields_types():
    from synthaug.generator import with_settings

    preset = with_settings(PRESETS["small"], {"label": "12", "lr": "1", "widths": "2,4"})
    assert preset.label == "12" and isinstance(preset.lr, float) and preset.widths == (2.0, 4.0)
    with pytest.raises(SynthaugError, match="not a setting of preset small"):
        with_settings(PRESETS["small"], {"depth": "3"})


def test_presets_are_rebuilt_from_a_record_and_unknown_names_listed():
    preset = PRESETS.from_record({"name": "small", "batch": 8, "lr": 0.1, "widths": [4, 8]})
    assert preset == PRESETS["small"] and isinstance(preset.widths, tuple)
    with pytest.raises(SynthaugError, match="unknown counting preset 'big'; choose one of small"):
        PRESETS.named("big")


def test_run_metadata_and_summaries_are_checked_when_read(tmp_path):
    with pytest.raises(SynthaugError, match="not a generator run"):
        RunMeta.read(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(SynthaugError, match="corrupt run metadata"):
        RunMeta.read(tmp_path)
    _meta().write(tmp_path)
    with pytest.raises(SynthaugError, match="a counting run, not a gmm run"):
        RunMeta.read(tmp_path, "gmm")
    # a summary from before the version field reads; a newer version is refused
    (tmp_path / "summary.json").write_text(json.dumps({"nimg": 64, "img_per_s": 32.0}))
    old = TrainingSummary.read(tmp_path)
    assert old.version == 0 and old.train_seconds == pytest.approx(2.0)
    (tmp_path / "summary.json").write_text(json.dumps({"nimg": 64, "version": 99}))
    with pytest.raises(SynthaugError, match="newer than this synthaug reads"):
        TrainingSummary.read(tmp_path)


def test_a_store_of_another_resolution_is_refused(toy_store):
    request = TrainRequest(str(toy_store.path), 0, "painter", "/unused")
    assert open_store(request, None, "any").resolution == toy_store.resolution
    with pytest.raises(SynthaugError, match="store resolution 32 differs from preset p's 64"):
        open_store(request, 64, "p")
    meta = new_meta(request, "counting", toy_store, PRESETS["small"])
    assert meta.train_patients == toy_store.split(0).train and meta.preset["widths"] == (4, 8)


class _Collapsing(Counting):
    """Stops itself at its second snapshot (as StyleGAN2's collapse check does)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.after = 0

    def before_snapshot(self) -> None:
        if self.nimg >= 200:
            self.stopped_early = "collapsed"

    def after_snapshot(self) -> None:
        self.after += 1


def test_a_run_stopped_early_stays_stopped_when_resumed(tmp_path):
    run = tmp_path / "run"
    meta = open_run(_request(run), LAYOUT.at(run), _meta(), PRESETS.from_record)
    first = _Collapsing(run, meta)
    summary = train_run(first, 400, "count")
    assert summary.stopped_early == "collapsed" and summary.nimg == 200
    assert first.after == 2  # after_snapshot ran at each snapshot
    assert summary.warnings == ["collapsed"]
    again = Counting(run, open_run(_request(run, resume=True), LAYOUT.at(run), _meta(),
                                   PRESETS.from_record))  # fmt: skip
    resume_checkpoint(again)
    assert again.stopped_early == "collapsed"
    assert train_run(again, 400, "count").nimg == 200  # no step taken after the stop


def test_a_missing_fold_and_an_old_run_json_are_handled(toy_store, tmp_path):
    with pytest.raises(SynthaugError, match="fold 7 does not exist"):
        open_store(TrainRequest(str(toy_store.path), 7, "painter", "/unused"), None, "p")
    record = _meta().to_dict()
    del record["family"]  # run.json of a StyleGAN2 run from before families were recorded
    (tmp_path / "run.json").write_text(json.dumps(record))
    assert RunMeta.read(tmp_path).family == "stylegan2"
