"""The package's exceptions, one home for all of them.

Each names the bad input and the fix in its message; the command line prints that message as one
``error: ...`` line (exit code 2) instead of a traceback. ``DataError``, ``ModelError`` and
``EngineError`` are ``ValueError`` subclasses (bad input); the others are ``RuntimeError``.
"""

from __future__ import annotations

__all__ = ["CacheError", "DataError", "EngineError", "FetchError", "HubUnavailableError",
           "ModelError", "ResultsError", "WordNetError", "WriteError"]


class DataError(ValueError):
    """A data folder or image is missing, malformed or mislabelled; the message says how to fix it."""


class FetchError(DataError):
    """A data or model file could not be fetched from its origin or does not match its sha256
    (``make data``); the message names the file, the URL and how to place it by hand."""


class ModelError(ValueError):
    """Unknown model name or weights that do not match the architecture."""


class HubUnavailableError(RuntimeError):
    """A hub model was requested but the weights cannot be fetched (no network, not cached)."""


class EngineError(ValueError):
    """An explicitly requested engine cannot be used; the message says why and what to do."""


class CacheError(RuntimeError):
    """A cache entry cannot be used (e.g. shards that do not belong together)."""


class WriteError(CacheError):
    """A file could not be written (read-only folder, full disk, ...); the message names the file
    and the fix. No partial file is left behind."""


class WordNetError(RuntimeError):
    """WordNet's database is missing or malformed."""


class ResultsError(ValueError):
    """A notebook's results file is truncated, not JSON or not a results record; the message
    names the file and how to rebuild it."""
