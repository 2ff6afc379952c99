"""Shared test setup: quiet progress bars, shared stores, CLI runner helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["SYNTHAUG_QUIET"] = "1"  # no progress bars, also in subprocesses


def _worker_threads() -> int | None:
    """Torch/BLAS threads for this pytest-xdist worker: the cores shared out between the
    workers (1 each on 2 cores), unless the user chose with OMP_NUM_THREADS. None outside
    xdist, or when the user chose."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 1:
        return None
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 1) // workers)


_THREADS = _worker_threads()
if _THREADS is not None:
    # Before torch is imported, and inherited by the processes the tests start: two workers
    # of two threads each on two cores run slower than two of one.
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)

from tests.helpers.data import exact_options, make_cases, write_msd  # noqa: E402
from tests.helpers.toy import make_toy_store  # noqa: E402


def pytest_configure(config) -> None:
    if _THREADS is not None:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(_THREADS)
        threadpool_limits(limits=_THREADS)


def pytest_collection_modifyitems(config, items) -> None:
    """The modules with slow tests first, each module's tests kept together and in order (a
    stable sort; a module fixture is set up once): under pytest-xdist the longest tests then
    start early instead of one of them running alone at the end."""
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(autouse=True)
def _keep_thread_settings():
    """Undo a test's change to the process's torch threads or OMP_NUM_THREADS, which would
    otherwise leak into every later test of the worker."""
    import torch

    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    yield
    if os.environ.get("OMP_NUM_THREADS") != omp:
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp
    if torch.get_num_threads() != threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(limits=threads)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def run_cli(monkeypatch, capsys) -> Callable[..., CliResult]:
    """Run ``synthaug.cli.main`` in-process with patched argv; return exit code and output."""
    from synthaug import cli

    def run(*args: str | Path) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["synthaug", *map(str, args)])
        monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # typer replaces it; restore after
        capsys.readouterr()
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        else:
            code = 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def tiny_msd(tmp_path_factory) -> Path:
    """A valid MSD v1 dataset: 4 cases, 2 channels, labels 0/1/2 (shared, never modified)."""
    root = tmp_path_factory.mktemp("tiny") / "msd"
    cases = make_cases(4, channels=2, label_values=(0, 1, 2))
    return write_msd(root, cases, ["T1", "T2"], {0: "background", 1: "alpha", 2: "beta"})


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_msd):
    """The slice store of ``tiny_msd`` (shared, never modified)."""
    from synthaug.data import prepare

    out = tmp_path_factory.mktemp("tiny_store") / "store"
    return prepare(tiny_msd, out, exact_options())


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory):
    """A 32×32 two-channel, three-class toy store (10 patients × 6 slices, 2 folds); read-only."""
    return make_toy_store(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def study_store(tmp_path_factory):
    """A toy store for study tests: 8 patients, 2 folds (read-only)."""
    return make_toy_store(tmp_path_factory.mktemp("study_toy"), patients=8, slices=6, folds=2)
