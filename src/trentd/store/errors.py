"""Store failures every engine raises, so callers never import an engine module to catch them."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The database could not answer in time or at all; the request gets a retryable 5xx."""


class Duplicate(Exception):
    """A unique constraint refused the write (e.g. an alias name already taken)."""
