from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gan"))

from toy import make_toy_store  # noqa: E402


@pytest.fixture(scope="session")
def study_store(tmp_path_factory):
    """A toy store for study tests: 8 patients, 2 folds (read-only)."""
    return make_toy_store(tmp_path_factory.mktemp("study_toy"), patients=8, slices=6, folds=2)
