"""Progress outside a terminal: plain lines at a task's start, every interval, and its end."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from synthaug.progress import LineProgress, clock_text
from synthaug.study.executors import JobRunner, run_jobs


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


@dataclass(frozen=True)
class ThreadsJob:
    """A job that records the torch threads it ran with (in-process only)."""

    seen: list

    @property
    def label(self) -> str:
        return "threads"

    def done(self) -> bool:
        return False

    def run(self) -> None:
        import torch

        self.seen.append(torch.get_num_threads())


def test_jobs_run_in_the_caller_keep_its_threads(monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)  # restored after the test (conftest)
    seen: list[int] = []
    run_jobs([ThreadsJob(seen)], "threads (1 job)", workers=1)
    # One worker runs in the caller: the caller's threads, and nothing changed after it.
    assert seen == [2]
    assert torch.get_num_threads() == 2
    assert "OMP_NUM_THREADS" not in os.environ


@dataclass(frozen=True)
class PidJob:
    """A job that writes the id of the process it ran in (picklable for the spawn workers)."""

    path: str

    @property
    def label(self) -> str:
        return f"pid {Path(self.path).name}"

    def done(self) -> bool:
        return Path(self.path).is_file()

    def run(self) -> None:
        time.sleep(0.2)  # both workers get a job
        Path(self.path).write_text(str(os.getpid()))


def test_a_runner_keeps_its_workers_from_phase_to_phase(tmp_path):
    phases = [[PidJob(str(tmp_path / f"{phase}-{i}")) for i in range(2)] for phase in "ab"]
    with JobRunner("local", workers=2) as runner:
        assert [runner.run(jobs, "phase") for jobs in phases] == [2, 2]
        assert runner.run(phases[0], "phase again") == 0  # done jobs are skipped
    pids = {p.read_text() for p in tmp_path.iterdir()}
    assert str(os.getpid()) not in pids  # in workers, not in the caller
    assert len(pids) <= 2  # the second phase ran in the first one's workers


@dataclass(frozen=True)
class NicenessJob:
    """A job that writes the niceness of the process it ran in."""

    path: str

    @property
    def label(self) -> str:
        return "niceness"

    def done(self) -> bool:
        return Path(self.path).is_file()

    def run(self) -> None:
        Path(self.path).write_text(str(os.nice(0)))


def test_a_local_ray_instance_runs_the_jobs_at_normal_priority(tmp_path):
    # Ray's default worker niceness (15) starves a study's jobs beside any other work.
    out = tmp_path / "nice"
    with JobRunner("ray", workers=1) as runner:
        assert runner.run([NicenessJob(str(out))], "ray (1 job)") == 1
    assert int(out.read_text()) == os.nice(0)
