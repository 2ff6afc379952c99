"""Running study jobs: in local worker processes or as Ray tasks.

Each worker runs one job at a time with ONE torch thread: on a small CPU machine two
single-threaded processes outrun one two-threaded process, and a GPU job does not need more.
Jobs already done are skipped; a failing job stops the phase with its label in the message.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from synthaug.errors import SynthaugError
from synthaug.progress import make_progress
from synthaug.study.grid import Job

EXECUTORS = ("local", "ray")


def _init_worker() -> None:
    os.environ["SYNTHAUG_QUIET"] = "1"  # one progress bar: the study's
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def run_job(job: Job) -> str:
    """Run one job in the current process (already-done jobs return at once)."""
    _init_worker()
    if not job.done():
        job.run()
    return job.label


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
        if executor == "ray":
            _run_ray(todo, workers, ray_address, lambda: progress.advance(task))
        elif workers <= 1:
            for job in todo:
                _run_or_explain(job)
                progress.advance(task)
        else:
            _run_local(todo, workers, lambda: progress.advance(task))
    return len(todo)


def _run_or_explain(job: Job) -> None:
    try:
        run_job(job)
    except SynthaugError as exc:
        raise SynthaugError(f"{job.label}: {exc}") from exc


def _run_local(jobs: list[Job], workers: int, advance) -> None:
    # spawn: a fresh interpreter per worker, no inherited torch thread pools or locks.
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker
    ) as pool:
        pending: dict[Future, Job] = {pool.submit(run_job, job): job for job in jobs}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                try:
                    future.result()
                except Exception as exc:
                    for other in pending:
                        other.cancel()
                    raise SynthaugError(f"{job.label}: {exc}") from exc
                advance()


def _run_ray(jobs: list[Job], workers: int, address: str | None, advance) -> None:
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
        refs = {remote.remote(job): job for job in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            job = refs.pop(done[0])
            try:
                ray.get(done[0])
            except Exception as exc:
                for ref in refs:
                    ray.cancel(ref)
                raise SynthaugError(f"{job.label}: {exc}") from exc
            advance()
    finally:
        if started_here:
            ray.shutdown()
