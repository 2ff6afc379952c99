"""Shared test setup: quiet progress bars, shared stores, CLI runner helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["SYNTHAUG_QUIET"] = "1"  # no progress bars, also in subprocesses

from tests.helpers.data import exact_options, make_cases, write_msd  # noqa: E402
from tests.helpers.toy import make_toy_store  # noqa: E402


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
