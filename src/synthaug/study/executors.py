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
    """Set up a worker process (pool or Ray): never the caller's, whose threads are its own."""
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
    if not job.done():
        job.run()
    return job.label


def _run_in_worker(job: Job) -> str:
    """A Ray task: its process is a worker, set up like a pool's."""
    _init_worker()
    return run_job(job)


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


class JobRunner:
    """Runs a study's phases one after another on ONE set of workers: the local process pool
    (spawned when first needed) or the Ray instance lives as long as the runner, so a study
    of six phases does not start its workers, and import torch in them, six times.

        with JobRunner("local", workers=2) as runner:
            for phase, jobs in plan.phases():
                runner.run(jobs, str(phase))
    """

    def __init__(self, executor: str = "local", workers: int = 2, ray_address: str | None = None):
        if executor not in EXECUTORS:
            raise SynthaugError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
        self.executor, self.workers, self.ray_address = executor, workers, ray_address
        self._pool: ProcessPoolExecutor | None = None
        self._ray_started_here = False

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._ray_started_here:
            import ray

            ray.shutdown()
            self._ray_started_here = False

    def run(self, jobs: Sequence[Job], description: str) -> int:
        """Run the not-yet-done jobs; returns how many ran."""
        todo = [j for j in jobs if not j.done()]
        if not todo:
            return 0
        with make_progress() as progress:
            task = progress.add_task(description, total=len(jobs), completed=len(jobs) - len(todo))
            report = _Reporter(progress, task)
            if self.executor == "ray":
                _run_ray(todo, self._ray(), report)
            elif self.workers <= 1:
                for job in todo:
                    report.start(job)
                    _run_or_explain(job)
                    report.finish(job)
            else:
                _run_local(todo, self._local_pool(), self.workers, report)
        return len(todo)

    def _local_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fresh interpreter per worker, no inherited torch thread pools or locks.
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
            )  # fmt: skip
        return self._pool

    def _ray(self):
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - ray is a dependency
            raise SynthaugError(
                "executor ray: the ray package is not installed (pip install 'ray[default]')"
            ) from exc
        if not ray.is_initialized():
            if self.ray_address:
                ray.init(address=self.ray_address, log_to_driver=False)
            else:
                # Ray runs its workers at niceness 15: on a machine doing anything else the
                # study's jobs then barely run (two cells took 142 s beside two busy processes,
                # 18 s alone). A local instance started here is the study: nice 0, as the
                # local executor's processes are.
                ray.init(
                    num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                    _system_config={"worker_niceness": 0},
                )  # fmt: skip
            self._ray_started_here = True
        return ray


def run_jobs(
    jobs: Sequence[Job],
    description: str,
    executor: str = "local",
    workers: int = 2,
    ray_address: str | None = None,
) -> int:
    """Run the not-yet-done jobs on workers of their own; returns how many ran."""
    with JobRunner(executor, workers, ray_address) as runner:
        return runner.run(jobs, description)


def _run_or_explain(job: Job) -> None:
    try:
        run_job(job)
    except SynthaugError as exc:
        raise SynthaugError(f"{job.label}: {exc}") from exc


def _run_local(jobs: list[Job], pool: ProcessPoolExecutor, workers: int, report: _Reporter) -> None:
    queue = list(jobs)
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


def _run_ray(jobs: list[Job], ray, report: _Reporter) -> None:
    remote = ray.remote(num_cpus=1, max_retries=0)(_run_in_worker)
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
