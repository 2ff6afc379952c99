"""Progress with ETA for every long step: rich's live bars on a terminal, plain lines in a log.

Outside a terminal (``make demo > log``, SLURM, nohup, CI) rich draws nothing until the end,
so :class:`LineProgress` takes its place there: one line when a task starts, one at most every
``interval`` seconds while it advances (done/total, elapsed, ETA), and one when it ends.
``SYNTHAUG_QUIET=1`` silences both (the study's workers use it: the study reports for them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")

console = Console(stderr=True, soft_wrap=True)  # never break a path across lines
LOG_INTERVAL_S = 30.0


def progress_enabled() -> bool:
    return os.environ.get("SYNTHAUG_QUIET", "") in ("", "0")


def live_display() -> bool:
    """Whether progress is drawn as live bars (stderr is a terminal) rather than logged."""
    return console.is_terminal


def clock_text(seconds: float) -> str:
    """Seconds as h:mm:ss."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class _LineTask:
    description: str
    total: float | None
    completed: float
    started: float
    start_completed: float
    last_line: float
    finished: bool = False


class LineProgress:
    """A log-friendly stand-in for the parts of ``rich.progress.Progress`` synthaug uses."""

    def __init__(
        self,
        enabled: bool = True,
        interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.enabled, self.interval, self.clock = enabled, interval, clock
        self.write = write or (lambda line: console.print(line, markup=False, highlight=False))
        self.tasks: dict[int, _LineTask] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log(self, message: str) -> None:
        if self.enabled:
            self.write(message)

    def add_task(self, description: str, total: float | None = None, completed: float = 0) -> int:
        now = self.clock()
        task_id = len(self.tasks)
        task = _LineTask(Text.from_markup(description).plain, total, completed, now, completed, now)
        self.tasks[task_id] = task
        self.log(f"{task.description}: started{self._count(task)}")
        self._finish_if_done(task)
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(
        self,
        task_id: int,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        **_: Any,
    ) -> None:
        task = self.tasks[task_id]
        if description is not None:
            task.description = Text.from_markup(description).plain
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if not self._finish_if_done(task) and self.clock() - task.last_line >= self.interval:
            self._status(task)

    def refresh(self) -> None:
        """Log every running task whose last line is older than the interval (a heartbeat)."""
        for task in self.tasks.values():
            if not task.finished and self.clock() - task.last_line >= self.interval:
                self._status(task)

    def stop(self) -> None:
        for task in self.tasks.values():
            if not task.finished:
                task.finished = True
                elapsed = clock_text(self.clock() - task.started)
                self.log(f"{task.description}: stopped at{self._count(task)} after {elapsed}")

    def _count(self, task: _LineTask) -> str:
        done = int(task.completed)
        return f" {done}/{int(task.total)}" if task.total is not None else f" {done}"

    def _eta(self, task: _LineTask, now: float) -> str:
        progressed = task.completed - task.start_completed
        if task.total is None or progressed <= 0:
            return "eta ?"
        rate = progressed / max(now - task.started, 1e-9)
        return f"eta {clock_text((task.total - task.completed) / rate)}"

    def _status(self, task: _LineTask) -> None:
        now = self.clock()
        task.last_line = now
        elapsed = clock_text(now - task.started)
        self.log(
            f"{task.description}:{self._count(task)}, elapsed {elapsed}, {self._eta(task, now)}"
        )

    def _finish_if_done(self, task: _LineTask) -> bool:
        if task.finished or task.total is None or task.completed < task.total:
            return task.finished
        task.finished = True
        elapsed = clock_text(self.clock() - task.started)
        self.log(f"{task.description}: done{self._count(task)} in {elapsed}")
        return True


def make_progress() -> Progress | LineProgress:
    """Live bars (description, bar, count, elapsed, ETA) on a terminal, plain lines otherwise."""
    if not live_display():
        return LineProgress(enabled=progress_enabled())
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not progress_enabled(),
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with progress (and ETA)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
