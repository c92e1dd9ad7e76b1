"""The embedded SQLite store: WAL, durable commits, one connection per thread.

Discipline (DESIGN.md): autocommit connections, ``BEGIN IMMEDIATE`` for every write so two
writers never deadlock on a lock upgrade, ``busy_timeout`` for waiting on other processes, and a
deadline on every transaction (a progress handler interrupts a statement that runs too long).
Callers run these methods on a worker thread, never on the event loop.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from .. import metrics
from ..inline import offload_point
from . import schema
from .changes import ChangeFeed
from .errors import Duplicate, StoreConfigError, StoreUnavailable
from .interface import Transaction
from .tx import Tx

__all__ = ["Duplicate", "SQLiteStore", "SQLiteTx", "StoreUnavailable"]


def migrations() -> list[tuple[int, str]]:
    return schema.migrations("sqlite")


class SQLiteTx(Tx):
    """SQLite has no row locks and needs none: ``BEGIN IMMEDIATE`` serialises every write
    transaction, so claims, row locks, scope locks and named locks add nothing."""

    claim_clause = ""
    lock_clause = ""
    keep_clause = ""

    def lock_scope(self, account: str, region: str) -> None:
        pass

    def exclusive(self, name: str) -> None:
        pass

    def block_writers(self, tables: Iterable[str]) -> None:
        pass

    def has_table(self, name: str) -> bool:
        return self.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None


class SQLiteStore:
    kind = "sqlite"

    def __init__(self, path: Path, deadline_seconds: float = 5.0):
        self.path = Path(path)
        self.where = str(self.path)  # how messages name this store
        self.deadline_seconds = deadline_seconds
        self._local = threading.local()
        self.changes = ChangeFeed(self)  # tells caches when cached state may have changed

    # --- connections ----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            # Made 0600 here, not by SQLite (0644 under the usual umask); SQLite gives the -wal and
            # -shm files it creates the database file's mode.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self.deadline_seconds)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged commit survives power loss, not only a process crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(self.deadline_seconds * 1000)}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def check(self) -> None:
        """Open the file once, as a start does before anything else: a file that is not a SQLite
        database, or that cannot be opened or created, is a configuration error."""
        try:
            self._conn().execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            self._discard()
            raise StoreConfigError(f"cannot open the store: {self.path}: {exc}") from None
        except OSError as exc:  # the file could not even be created (made 0600 before SQLite opens it)
            self._discard()
            raise StoreConfigError(f"cannot open the store: {self.path}: {exc.strerror or exc}") from None

    def read_meta(self, name: str) -> str | None:
        """One value read outside any transaction, on a connection of its own, so it is safe to
        call while this thread holds a transaction (the service clock does)."""
        offload_point()  # never on the event loop (trentd/inline.py)
        conn = getattr(self._local, "side", None)
        if conn is None:
            conn = self._local.side = self._connect()
        try:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error as exc:
            self._local.side = None
            raise StoreUnavailable(f"sqlite: {exc}") from None
        return row[0] if row else None

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Transaction]:
        offload_point()  # never on the event loop (trentd/inline.py)
        conn = self._conn()
        if conn.in_transaction:
            raise RuntimeError("nested store transaction on one thread")
        deadline = time.monotonic() + self.deadline_seconds
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        try:
            conn.execute(begin)
            try:
                tx = SQLiteTx(conn.execute, writing=begin != "BEGIN")
                yield tx
                if tx.changes_cached_state:
                    tx.bump_cache_generation()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if tx.changes_cached_state:
                self.changes.committed()
        except sqlite3.IntegrityError as exc:
            raise Duplicate(str(exc)) from None
        except sqlite3.Error as exc:
            self._discard()
            raise StoreUnavailable(f"sqlite: {exc}") from None
        finally:
            if getattr(self._local, "conn", None) is conn:
                conn.set_progress_handler(None, 0)

    def write(self) -> AbstractContextManager[Transaction]:
        if metrics.ACTIVE is not None:
            return metrics.ACTIVE.store_transaction(self.kind, "write", self._transaction("BEGIN IMMEDIATE"),
                                                    StoreUnavailable)
        return self._transaction("BEGIN IMMEDIATE")

    def read(self) -> AbstractContextManager[Transaction]:
        if metrics.ACTIVE is not None:
            return metrics.ACTIVE.store_transaction(self.kind, "read", self._transaction("BEGIN"), StoreUnavailable)
        return self._transaction("BEGIN")

    # --- schema ---------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied."""
        try:
            return self._migrate()
        except sqlite3.Error as exc:  # e.g. a read-only file: one line at start, not a traceback
            self._discard()
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from None

    def _migrate(self) -> list[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        applied = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in migrations():
                if version in done:
                    continue
                for statement in schema.statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                applied.append(version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return applied

    def close(self) -> None:
        self.changes.stop()
        self._discard()
