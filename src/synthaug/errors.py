"""The one exception type a user sees: a message that names the file or field and the problem."""

from __future__ import annotations


class SynthaugError(Exception):
    """An error the user can act on. The CLI prints it as one line and exits non-zero."""


class DatasetError(SynthaugError):
    """Input dataset is malformed: bad layout, missing file, geometry or label mismatch."""


class StoreError(SynthaugError):
    """A slice store is missing, corrupt or incompatible with the request."""
