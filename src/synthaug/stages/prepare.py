"""Stage: a dataset on disk → a slice store with patient-level folds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthaug.data.options import PrepareOptions
from synthaug.data.prepare import prepare
from synthaug.data.store import SliceStore


@dataclass(frozen=True)
class PreparedStore:
    """A slice store and its summary (patients, slices, channels, labels, folds)."""

    store: SliceStore
    summary: dict

    @property
    def path(self) -> Path:
        return self.store.path


def prepare_dataset(
    dataset: Path | str,
    out: Path | str,
    options: PrepareOptions | None = None,
    overwrite: bool = False,
) -> PreparedStore:
    """Check, normalise and slice ``dataset`` into a store at ``out`` (atomically)."""
    store = prepare(dataset, out, options, overwrite=overwrite)
    return PreparedStore(store, store.summary())
