"""Torch checkpoints on disk: written atomically, validated on load (every model of synthaug)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from synthaug.atomic import atomic_file
from synthaug.errors import SynthaugError


def save_torch(path: Path | str, obj: Any) -> None:
    """torch.save into a temporary file, then rename: a kill never leaves a partial checkpoint."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_file(Path(path)) as handle:
        handle.write(buffer.getbuffer())


def load_torch(path: Path | str) -> dict:
    """Load a synthaug checkpoint (a dict with "meta"); a missing or corrupt file is one error."""
    path = Path(path)
    if not path.is_file():
        raise SynthaugError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged zip/pickle
        raise SynthaugError(
            f"{path}: corrupt checkpoint ({type(exc).__name__}: {str(exc)[:120]})"
        ) from exc
    if not isinstance(obj, dict) or "meta" not in obj:
        raise SynthaugError(f"{path}: not a synthaug checkpoint")
    return obj
