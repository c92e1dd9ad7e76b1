"""Store failures every engine raises, so callers never import an engine module to catch them."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The database could not answer in time or at all; the request gets a retryable 5xx."""


class Duplicate(Exception):
    """A unique constraint refused the write (e.g. an alias name already taken)."""


class StoreConfigError(ValueError):
    """The store cannot be used as configured: a data dir that is not one, a file that is not a
    database, a DSN that does not parse, a database or role the server does not know, no store
    where one is expected. The message names the path or DSN (never a password) and the reason;
    commands print it as one line and exit 2 (a ValueError, so any command prints it as one line)."""
