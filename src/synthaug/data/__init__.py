"""Data: dataset layouts on disk, preprocessing, the slice store, splits and the phantom."""

from synthaug.data.formats import CaseSpec, DatasetSpec, load_dataset
from synthaug.data.options import PrepareOptions
from synthaug.data.phantom import make_phantom
from synthaug.data.prepare import prepare
from synthaug.data.store import SliceStore, Split

__all__ = [
    "CaseSpec",
    "DatasetSpec",
    "PrepareOptions",
    "SliceStore",
    "Split",
    "load_dataset",
    "make_phantom",
    "prepare",
]
