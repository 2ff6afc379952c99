"""Progress outside a terminal: plain lines at a task's start, every interval, and its end."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from synthaug.progress import LineProgress, clock_text
from synthaug.study.executors import run_jobs


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(interval: float = 30.0) -> tuple[LineProgress, list[str], FakeClock]:
    lines: list[str] = []
    clock = FakeClock()
    return LineProgress(interval=interval, clock=clock, write=lines.append), lines, clock


def test_a_task_logs_its_start_a_heartbeat_per_interval_and_its_end():
    progress, lines, clock = _progress()
    with progress:
        task = progress.add_task("train-gan [dim]joint[/]", total=100)
        for _ in range(10):  # quick steps within one interval: no line
            clock.now += 1
            progress.advance(task)
        assert lines == ["train-gan joint: started 0/100"]
        clock.now = 30.0
        progress.advance(task, 20)  # 30 done after 30 s: 70 left at 1/s
        assert lines[-1] == "train-gan joint: 30/100, elapsed 0:00:30, eta 0:01:10"
        clock.now = 45.0
        progress.refresh()  # a heartbeat waits for the interval
        assert len(lines) == 2
        clock.now = 61.0
        progress.refresh()
        assert lines[-1].startswith("train-gan joint: 30/100, elapsed 0:01:01")
        progress.update(task, completed=100)
    assert lines[-1] == "train-gan joint: done 100/100 in 0:01:01"
    assert len(lines) == 4  # no "stopped" line for a finished task


def test_an_unfinished_task_says_where_it_stopped():
    progress, lines, clock = _progress()
    with progress:
        task = progress.add_task("prepare", total=8, completed=3)
        clock.now = 5.0
        progress.advance(task)
    assert lines == ["prepare: started 3/8", "prepare: stopped at 4/8 after 0:00:05"]


def test_disabled_progress_writes_nothing():
    lines: list[str] = []
    with LineProgress(enabled=False, write=lines.append) as progress:
        progress.advance(progress.add_task("x", total=1))
    assert lines == []


def test_clock_text():
    assert clock_text(0) == "0:00:00" and clock_text(3725.4) == "1:02:05"


@dataclass(frozen=True)
class NapJob:
    """A study job that sleeps; picklable for the spawn workers."""

    name: str
    seconds: float = 0.01

    @property
    def label(self) -> str:
        return f"nap {self.name}"

    def done(self) -> bool:
        return False

    def run(self) -> None:
        time.sleep(self.seconds)


@pytest.mark.parametrize("workers", [1, 2])
def test_study_jobs_leave_a_line_each_in_a_log(workers, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHAUG_QUIET", "0")  # a log, not a terminal: capsys is no TTY
    ran = run_jobs([NapJob("a"), NapJob("b"), NapJob("c")], "naps (3 jobs)", workers=workers)
    err = capsys.readouterr().err
    assert ran == 3
    assert "naps (3 jobs): started 0/3" in err and "naps (3 jobs): done 3/3" in err
    for name in "abc":
        assert f"start nap {name}" in err and f"done  nap {name}" in err
