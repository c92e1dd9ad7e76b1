"""The statement runner every engine's transaction builds on, and the points where engines differ.

``SQLTransaction`` runs portable SQL (``?`` placeholders; the PostgreSQL engine rewrites them) and
notes whether the transaction changed state that caches hold. The query modules (store/tx.py,
grants.py, lifecycle.py, multiregion.py, keystores.py, sessions.py) derive from it and ask the
engine, by name, for what cannot be written portably:

- ``claim_clause``: appended to a SELECT that claims rows for a background job, so that every
  node can sweep at once and each row is handled by exactly one (PostgreSQL: ``FOR UPDATE SKIP
  LOCKED``; SQLite: nothing, ``BEGIN IMMEDIATE`` already serialises writers).
- ``lock_clause``: appended to a SELECT whose rows must not change until the transaction ends
  (PostgreSQL: ``FOR UPDATE``; SQLite: nothing).
- ``keep_clause``: appended to a SELECT whose rows must not be deleted until the transaction ends,
  other changes allowed; a row being deleted is waited for and then not found (PostgreSQL:
  ``FOR KEY SHARE``; SQLite: nothing).
- ``lock_scope(account, region)``: serialise write transactions per (account, Region).
- ``exclusive(name)``: one process at a time runs what follows, until the transaction ends.
- ``block_writers(tables)``: other writers of ``tables`` wait until the transaction ends.
- ``has_table(name)``: the engine's catalogue.

Each engine module (store/sqlite.py, store/postgres.py) defines one subclass of ``Tx`` that
supplies them; nothing else asks which engine it runs on.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from .interface import Cursor

Execute = Callable[[str, tuple], Cursor]

# Statements that change rows, and the table they change.
_CHANGE = re.compile(r"\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)
# Tables no cache depends on: writing them does not invalidate caches (the last-use times are
# flushed every second under load and would otherwise empty every cache every second; failed
# console sign-ins, which anyone can cause, must not empty them either; nor access keys' last
# uses, flushed every second like the keys'; nor the central audit trail, written many times a
# second under load).
_UNCACHED_TABLES = frozenset({"key_last_usage", "console_signin_failures", "access_key_last_used",
                              "audit_trail", "audit_trail_visibility", "audit_trail_resources",
                              "audit_trail_checkpoints", "audit_trail_jobs"})


class SQLTransaction(ABC):
    claim_clause: str
    lock_clause: str
    keep_clause: str

    def __init__(self, execute: Execute, writing: bool = False):
        self._execute = execute
        self.writing = writing
        # The (account, Region) scopes this write has locked (lock_scope); empty where the engine
        # serialises all writers instead.
        self._scopes: set[tuple[str, str]] = set()
        # Whether this transaction changed state that caches hold (store/changes.py): set by the
        # first INSERT/UPDATE/DELETE on a table outside _UNCACHED_TABLES.
        self.changes_cached_state = False

    def q(self, sql: str, params: Iterable = ()) -> Cursor:
        cursor = self._execute(sql, tuple(params))
        if not self.changes_cached_state and sql[:1] not in "Ss":  # SELECTs are most statements
            self.changes_cached_state = self._changes_cached_state(sql, cursor)
        return cursor

    def one(self, sql: str, params: Iterable = ()) -> Any:
        return self.q(sql, params).fetchone()

    @staticmethod
    def _changes_cached_state(sql: str, cursor: Cursor) -> bool:
        """A statement that changed rows (a DELETE that matched nothing did not) of a table that
        some cache depends on."""
        change = _CHANGE.match(sql)
        return change is not None and change.group(1).lower() not in _UNCACHED_TABLES and cursor.rowcount != 0

    # --- what each engine supplies ----------------------------------------------------------
    @abstractmethod
    def lock_scope(self, account: str, region: str) -> None:
        """Serialise write transactions per (account, Region): a write reads a key or alias,
        checks it and writes, and two such writes must not interleave (an EnableKey lost behind a
        ScheduleKeyDeletion, an alias attached to a key being scheduled for deletion). Called at
        the first key or alias read of a transaction; a no-op in reads."""

    @abstractmethod
    def exclusive(self, name: str) -> None:
        """Hold a named lock until this transaction ends, so that one process at a time runs the
        code after it (first start)."""

    @abstractmethod
    def block_writers(self, tables: Iterable[str]) -> None:
        """Make every other writer of ``tables`` wait (readers do not) until this transaction ends."""

    @abstractmethod
    def has_table(self, name: str) -> bool:
        """Whether the schema has table ``name``: a start reads an empty or older store before it
        migrates it, so that a refused start leaves the store as it found it."""
