"""The PostgreSQL store: several trentd nodes over one database (``--database postgresql://…``).

Same declared surface as ``SQLiteStore`` (``Store`` in store/interface.py: ``write()``/``read()``
yield a ``PostgresTx``, the shared ``Tx`` with PostgreSQL's locking; ``read_meta``; ``migrate``;
``close``). Decisions (docs/scale-out.md has the reasoning):

- A small psycopg_pool ``ConnectionPool`` per process (min 1, max 10). Connections are opened
  with ``synchronous_commit=on`` (an acknowledged write is on disk), a server-side
  ``statement_timeout`` and ``idle_in_transaction_session_timeout``, a ``connect_timeout`` and TCP
  keepalives.
- **Every transaction has a client-side deadline** (``deadline_seconds``, default 3 s, so a request
  answers within 5 s even when it makes a second store call after the first timed out).
  Server-side timeouts cannot help when the server is hung (stopped process, dead network), so a
  watchdog thread shuts the socket of a connection whose transaction outlives its deadline: the
  blocked call fails at once, the connection is discarded and the caller gets
  ``StoreUnavailable`` (a retryable 5xx). Waiting for a pooled connection counts against the same
  deadline.
- Write transactions run in READ COMMITTED with ``autocommit=False``; ``PostgresTx`` serialises
  writes per (account, Region) with an advisory lock, and background jobs claim rows with
  ``FOR UPDATE SKIP LOCKED``. Read transactions run in autocommit mode: one round trip per
  statement and no BEGIN/COMMIT (each READ COMMITTED statement sees the latest commits anyway);
  a statement other than SELECT inside ``read()`` is a programming error and is refused.
- After a connection-level failure the idle connections are drained (they are most likely dead
  too) and, while the database keeps failing, a request waits at most ~0.5 s for a connection
  instead of the whole deadline, so a queue of requests cannot pile up behind an outage. The pool
  reconnects in the background and on demand; no restart is ever needed.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import metrics
from ..inline import offload_point
from . import schema
from .changes import ChangeFeed
from .errors import Duplicate, StoreConfigError, StoreUnavailable
from .interface import Transaction
from .sql import Execute
from .tx import Tx

log = logging.getLogger("trentd.store")

POOL_MIN = 1
POOL_MAX = 10
CONNECT_TIMEOUT = 3  # seconds (libpq's minimum is 2)
MIGRATE_TIMEOUT = 300.0
# While the database keeps failing, wait this long for a connection instead of the whole deadline.
FAILING_WAIT = 0.5
START_WAIT = 30.0  # seconds a start waits for a database server that does not answer
# FATAL answers that mean "not now" rather than "never": a start waits for these to pass.
TRANSIENT_FATAL = ("starting up", "shutting down", "in recovery", "too many clients", "slots are reserved",
                   "not yet accepting connections")


def _mask(dsn: str) -> str:
    """A DSN that does not parse, with anything that looks like a password replaced by ***."""
    dsn = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", dsn)
    return re.sub(r"(://[^/@:\s]*:).*@", r"\1***@", dsn)  # up to the last @: a password may hold one


def parse_dsn(dsn: str) -> dict:
    """The DSN's parameters; a StoreConfigError that names it (password masked) if it does not parse."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise StoreConfigError(f"not a PostgreSQL DSN: {_mask(dsn)}: {' '.join(str(exc).split())}") from None


def redact(dsn: str) -> str:
    """A DSN fit for logs and error messages: no password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return _mask(dsn)
    params.pop("password", None)
    host = params.get("host", "")
    port = params.get("port", "")
    return f"postgresql://{params.get('user', '')}@{host}{':' + str(port) if port else ''}/{params.get('dbname', '')}"


@lru_cache(maxsize=2048)
def translate(sql: str) -> tuple[str, bool]:
    """Portable SQL (``?`` placeholders) → psycopg SQL (``%s``, literal ``%`` doubled), and whether
    the statement only reads. Quoted text is left alone. Cached: the SQL strings are few."""
    out, quote = [], ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    text = "".join(out)
    head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    return text, head == "SELECT" and "FOR UPDATE" not in text.upper()


class PostgresTx(Tx):
    """PostgreSQL runs write transactions in READ COMMITTED, side by side: what SQLite gets from
    ``BEGIN IMMEDIATE`` is asked for explicitly, with row locks and transaction-scoped advisory
    locks (released at commit or rollback)."""

    claim_clause = " FOR UPDATE SKIP LOCKED"  # rows another node holds are skipped, never waited for
    lock_clause = " FOR UPDATE"
    keep_clause = " FOR KEY SHARE"

    def lock_scope(self, account: str, region: str) -> None:
        """One advisory lock per (account, Region), taken at the first key or alias read of a
        write (a write stays in its caller's account and Region, so it holds one such lock and
        cannot deadlock on them); reads (the hot path) and other accounts are unaffected."""
        if self.writing and (account, region) not in self._scopes:
            self._scopes.add((account, region))
            self.one("SELECT pg_advisory_xact_lock(hashtext(?))", (f"trentd:scope:{account}:{region}",))

    def exclusive(self, name: str) -> None:
        self.one("SELECT pg_advisory_xact_lock(hashtext(?))", (f"trentd:{name}",))

    def block_writers(self, tables: Iterable[str]) -> None:
        self.q(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")

    def has_table(self, name: str) -> bool:
        return self.one("SELECT to_regclass(?) IS NOT NULL", (name,))[0]


class _Watchdog:
    """Enforces client-side deadlines: shuts the socket of a connection whose transaction runs
    past its deadline, which makes whatever call is blocked on it fail immediately."""

    TICK = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, tuple[float, psycopg.Connection]] = {}
        self._next = 0
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, conn: psycopg.Connection, deadline: float) -> int:
        with self._lock:
            self._next += 1
            token = self._next
            self._active[token] = (deadline, conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="trentd-store-watchdog", daemon=True)
                self._thread.start()
        return token

    def unwatch(self, token: int) -> bool:
        """False when the deadline fired (the connection is unusable)."""
        with self._lock:
            return self._active.pop(token, None) is not None

    def stop(self) -> None:
        self._stopped = True

    def _run(self) -> None:
        while not self._stopped:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                expired = [t for t, (deadline, _) in self._active.items() if deadline <= now]
                for token in expired:
                    _, conn = self._active.pop(token)
                    _shut(conn)


def _shut(conn: psycopg.Connection) -> None:
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return
    try:
        # shutdown() acts on the socket itself, so a duplicate descriptor reaches the one libpq
        # is blocked on without racing it for the descriptor number.
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _reason(exc: psycopg.Error) -> tuple[str, bool]:
    """Why a connection failed, in one line, and whether the server itself refused it for good
    (a database, role or password it does not know) rather than not answering (yet)."""
    text = " ".join(str(exc).split())
    if "FATAL:" in text:
        reason = text.split("FATAL:", 1)[1].strip()
        return reason, not any(marker in reason for marker in TRANSIENT_FATAL)
    return (text.rsplit(" failed: ", 1)[-1] if " failed: " in text else text), False


def wait_for_server(dsn: str, wait: float = START_WAIT) -> None:
    """Connect once, as a start does before it opens its pool: a database, role or password that
    the server refuses is a StoreConfigError at once; a server that does not answer is tried again
    for ``wait`` seconds, then StoreUnavailable. (The pool would instead retry in the background
    and log a warning per attempt.)"""
    where = redact(dsn)
    deadline = time.monotonic() + wait
    warned = False
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT).close()
            return
        except psycopg.Error as exc:
            reason, refused = _reason(exc)
        if refused:
            raise StoreConfigError(f"cannot open the store: {where}: {reason}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise StoreUnavailable(f"{where}: no answer within {wait:g} s: {reason}")
        if not warned:
            log.warning("the database %s does not answer (%s); trying again for up to %g s", where, reason, wait)
            warned = True
        time.sleep(min(1.0, left))


class PostgresStore:
    kind = "postgres"

    def __init__(self, dsn: str, deadline_seconds: float = 3.0, *, min_size: int = POOL_MIN,
                 max_size: int = POOL_MAX):
        self.dsn = dsn
        self.deadline_seconds = deadline_seconds
        params = parse_dsn(dsn)
        self.where = redact(dsn)
        timeout_ms = int(deadline_seconds * 1000)
        options = " ".join(filter(None, [
            params.get("options", ""),
            "-c synchronous_commit=on",
            f"-c statement_timeout={timeout_ms}",
            f"-c lock_timeout={timeout_ms}",
            "-c idle_in_transaction_session_timeout=30000",
        ]))
        kwargs = {
            "options": options,
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": params.get("application_name", "trentd"),
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3,
            "autocommit": False,
        }
        self._pool = ConnectionPool(
            dsn, kwargs=kwargs, min_size=min_size, max_size=max_size, open=False, name="trentd",
            timeout=deadline_seconds, max_idle=120.0, reconnect_timeout=3.0, num_workers=2)
        self._pool_opened = False
        self._open_lock = threading.Lock()
        self._watchdog = _Watchdog()
        self._local = threading.local()
        self._failing = False
        self._drained_at = 0.0
        self.changes = ChangeFeed(self)  # tells caches when cached state may have changed

    # --- connections ----------------------------------------------------------------------
    def _open(self) -> None:
        if not self._pool_opened:
            with self._open_lock:
                if not self._pool_opened:
                    self._pool.open(wait=False)
                    self._pool_opened = True

    def _checkout(self, deadline: float) -> psycopg.Connection:
        self._open()
        wait = deadline - time.monotonic()
        if self._failing:
            wait = min(wait, FAILING_WAIT)
        try:
            return self._pool.getconn(timeout=max(wait, 0.01))
        except PoolTimeout:
            self._failed()
            raise StoreUnavailable(f"postgres {self.where}: no connection within the deadline") from None

    def _failed(self) -> None:
        """The database failed us: drain idle connections (at most once a second), fail fast."""
        self._failing = True
        now = time.monotonic()
        if now - self._drained_at > 1.0:
            self._drained_at = now
            try:
                self._pool.drain()
            except Exception:  # noqa: BLE001 - draining is best effort
                log.debug("pool drain failed", exc_info=True)

    def _release(self, conn: psycopg.Connection, usable: bool) -> None:
        if not usable or conn.closed or conn.pgconn.transaction_status != TransactionStatus.IDLE:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            self._pool.putconn(conn)
        except Exception:  # noqa: BLE001 - the pool may be closing
            pass

    def _translate(self, exc: psycopg.Error, fired: bool) -> Exception:
        if isinstance(exc, pg_errors.UniqueViolation):
            return Duplicate(str(exc))
        if fired:
            self._failed()
            return StoreUnavailable(f"postgres {self.where}: no answer within {self.deadline_seconds:g}s")
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            if not isinstance(exc, (pg_errors.QueryCanceled, pg_errors.LockNotAvailable,
                                    pg_errors.TransactionRollback)):
                self._failed()
            return StoreUnavailable(f"postgres {self.where}: {type(exc).__name__}: {str(exc).strip()}")
        return exc

    def _executor(self, conn: psycopg.Connection, write: bool) -> Execute:
        def execute(sql: str, params: tuple):
            text, read_only = translate(sql)
            if not write and not read_only:
                raise RuntimeError(f"write statement inside store.read(): {sql[:60]}")
            return conn.execute(text, params)

        return execute

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Transaction]:
        offload_point()  # never on the event loop (trentd/inline.py)
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("nested store transaction on one thread")
        deadline = time.monotonic() + self.deadline_seconds
        conn = self._checkout(deadline)
        token = self._watchdog.watch(conn, deadline)
        self._local.conn = conn
        usable = fired = False
        try:
            try:
                conn.autocommit = not write
                tx = PostgresTx(self._executor(conn, write), writing=write)
                yield tx
                if write:
                    if tx.changes_cached_state:
                        tx.bump_cache_generation()
                    conn.commit()
            except psycopg.Error as exc:
                fired = not self._watchdog.unwatch(token)
                if not fired:
                    self._rollback(conn)
                raise self._translate(exc, fired) from None
            except BaseException:
                fired = not self._watchdog.unwatch(token)
                if not fired:
                    self._rollback(conn)
                raise
            fired = not self._watchdog.unwatch(token)
            if write and tx.changes_cached_state:
                self.changes.committed()
        finally:
            self._local.conn = None
            # A connection goes back to the pool only if idle and its deadline never fired (the
            # watchdog shut its socket); anything else is closed and the pool replaces it.
            usable = not fired and not conn.closed and conn.pgconn.transaction_status == TransactionStatus.IDLE
            self._release(conn, usable)
        self._failing = False

    @staticmethod
    def _rollback(conn: psycopg.Connection) -> None:
        if conn.closed or conn.pgconn.transaction_status in (TransactionStatus.IDLE, TransactionStatus.UNKNOWN):
            return
        try:
            conn.rollback()
        except psycopg.Error:
            pass

    def write(self) -> AbstractContextManager[Transaction]:
        if metrics.ACTIVE is not None:
            return metrics.ACTIVE.store_transaction(self.kind, "write", self._transaction(write=True),
                                                    StoreUnavailable)
        return self._transaction(write=True)

    def read(self) -> AbstractContextManager[Transaction]:
        if metrics.ACTIVE is not None:
            return metrics.ACTIVE.store_transaction(self.kind, "read", self._transaction(write=False),
                                                    StoreUnavailable)
        return self._transaction(write=False)

    def check(self) -> None:
        """Reach the server once before anything else (``wait_for_server``)."""
        wait_for_server(self.dsn)

    def read_meta(self, name: str) -> str | None:
        """One value read outside the caller's own statements. Inside a transaction on this thread
        it reuses that transaction's connection (under READ COMMITTED a SELECT sees the latest
        commits and takes no lock), so it never waits for a second pooled connection."""
        offload_point()  # never on the event loop (trentd/inline.py)
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self.read() as tx:
                return tx.get_meta(name)
        try:
            row = conn.execute("SELECT value FROM meta WHERE name = %s", (name,)).fetchone()
        except psycopg.Error as exc:
            raise self._translate(exc, False) from None
        return row[0] if row else None

    # --- schema ---------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction; concurrent migrators (several nodes
        starting at once) queue on an advisory lock, and the later ones find nothing to do."""
        self._open()
        try:
            conn = self._pool.getconn(timeout=max(self.deadline_seconds, 10.0))
        except PoolTimeout:
            raise StoreUnavailable(f"postgres {self.where}: cannot connect") from None
        applied: list[int] = []
        usable = False
        try:
            conn.autocommit = False
            with conn.transaction():
                conn.execute(f"SET LOCAL statement_timeout = {int(MIGRATE_TIMEOUT * 1000)}")
                conn.execute(f"SET LOCAL lock_timeout = {int(MIGRATE_TIMEOUT * 1000)}")
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('trentd:migrate'))")
                conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
                done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
                for version, sql in schema.migrations("postgres"):
                    if version in done:
                        continue
                    for statement in schema.statements(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    applied.append(version)
            usable = True
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(f"postgres {self.where}: {str(exc).strip()}") from None
        except psycopg.Error as exc:  # e.g. a role that may not create tables: the setup, not the moment
            usable = True  # rolled back, the connection itself is fine
            raise StoreConfigError(f"cannot migrate the store: {self.where}: {str(exc).splitlines()[0]}") from None
        finally:
            self._release(conn, usable)
        return applied

    def close(self) -> None:
        self.changes.stop()
        self._watchdog.stop()
        if self._pool_opened:
            try:
                self._pool.close(timeout=2.0)
            except Exception:  # noqa: BLE001
                pass
            self._pool_opened = False
