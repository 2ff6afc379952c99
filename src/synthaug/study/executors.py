"""Running study jobs: in local worker processes or as Ray tasks.

Each worker runs one job at a time with ONE torch thread: on a small CPU machine two
single-threaded processes outrun one two-threaded process, and a GPU job does not need more.
Jobs already done are skipped; a failing job stops the phase with its label in the message.
Outside a terminal every job's start and end is a line in the log, with a heartbeat line
(done/total, elapsed, ETA) at least every 30 seconds.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from synthaug.errors import SynthaugError
from synthaug.progress import LineProgress, make_progress
from synthaug.study.grid import Job

EXECUTORS = ("local", "ray")
HEARTBEAT_POLL_S = 5.0


def _init_worker() -> None:
    os.environ["SYNTHAUG_QUIET"] = "1"  # one progress display: the study's
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    # numpy/scipy's BLAS was loaded (with a thread per core) before this ran: two workers
    # each running 2 BLAS threads made the quality phase's eigh/matmul 2.6x slower
    # (two quality jobs side by side: 78 s each, 30 s with this limit).
    threadpool_limits(limits=1)


def run_job(job: Job) -> str:
    """Run one job in the current process (already-done jobs return at once)."""
    _init_worker()
    if not job.done():
        job.run()
    return job.label


class _Reporter:
    """The phase's progress plus, in a log, one line per job started and finished."""

    def __init__(self, progress, task: int) -> None:
        self.progress, self.task = progress, task
        self.lines = isinstance(progress, LineProgress)
        self.started: dict[str, float] = {}

    def start(self, job: Job) -> None:
        self.started[job.label] = time.perf_counter()
        if self.lines:
            self.progress.log(f"  start {job.label}")

    def finish(self, job: Job) -> None:
        if self.lines:
            seconds = time.perf_counter() - self.started.get(job.label, time.perf_counter())
            self.progress.log(f"  done  {job.label} ({seconds:.0f} s)")
        self.progress.advance(self.task)

    def heartbeat(self) -> None:
        self.progress.refresh()


def run_jobs(
    jobs: Sequence[Job],
    description: str,
    executor: str = "local",
    workers: int = 2,
    ray_address: str | None = None,
) -> int:
    """Run the not-yet-done jobs; returns how many ran."""
    if executor not in EXECUTORS:
        raise SynthaugError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    todo = [j for j in jobs if not j.done()]
    if not todo:
        return 0
    with make_progress() as progress:
        task = progress.add_task(description, total=len(jobs), completed=len(jobs) - len(todo))
        report = _Reporter(progress, task)
        if executor == "ray":
            _run_ray(todo, workers, ray_address, report)
        elif workers <= 1:
            for job in todo:
                report.start(job)
                _run_or_explain(job)
                report.finish(job)
        else:
            _run_local(todo, workers, report)
    return len(todo)


def _run_or_explain(job: Job) -> None:
    try:
        run_job(job)
    except SynthaugError as exc:
        raise SynthaugError(f"{job.label}: {exc}") from exc


def _run_local(jobs: list[Job], workers: int, report: _Reporter) -> None:
    # spawn: a fresh interpreter per worker, no inherited torch thread pools or locks.
    ctx = mp.get_context("spawn")
    queue = list(jobs)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker
    ) as pool:
        pending: dict[Future, Job] = {}

        def submit_next() -> None:  # one job per free worker: its start time is known
            job = queue.pop(0)
            report.start(job)
            pending[pool.submit(run_job, job)] = job

        while queue and len(pending) < workers:
            submit_next()
        while pending:
            finished, _ = wait(pending, timeout=HEARTBEAT_POLL_S, return_when=FIRST_COMPLETED)
            report.heartbeat()
            for future in finished:
                job = pending.pop(future)
                _result_or_raise(future.result, job, lambda: [f.cancel() for f in pending])
                report.finish(job)
                if queue:
                    submit_next()


def _result_or_raise(get: Callable[[], object], job: Job, cancel: Callable[[], object]) -> None:
    try:
        get()
    except Exception as exc:
        cancel()
        raise SynthaugError(f"{job.label}: {exc}") from exc


def _run_ray(jobs: list[Job], workers: int, address: str | None, report: _Reporter) -> None:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise SynthaugError(
            "executor ray: the ray package is not installed (pip install 'ray[default]')"
        ) from exc
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_job)
        refs = {}
        for job in jobs:  # Ray queues them all; "start" is when it was handed to Ray
            report.start(job)
            refs[remote.remote(job)] = job
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1, timeout=HEARTBEAT_POLL_S)
            report.heartbeat()
            if not done:
                continue
            job = refs.pop(done[0])
            _result_or_raise(
                lambda ref=done[0]: ray.get(ref), job, lambda: [ray.cancel(r) for r in refs]
            )
            report.finish(job)
    finally:
        if started_here:
            ray.shutdown()
