from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from toy import make_toy_store  # noqa: E402


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory):
    """A 32×32 two-channel, three-class toy store (10 patients × 6 slices, 2 folds); read-only."""
    return make_toy_store(tmp_path_factory.mktemp("toy"))
