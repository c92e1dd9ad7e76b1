"""The central audit trail's rows (migration 0011): writing copied events, reading them back,
purging old ones, and the per-chain checkpoints retention leaves.

Functions over a ``Transaction`` (as store/reset.py), in portable SQL: the copier
(audit/central.py) inserts, `trentd audit` and the console read, the retention job purges.
Inserts are idempotent on (chain, seq): a copy repeated after a crash or by another process
changes nothing (``ON CONFLICT DO NOTHING``, which both engines understand).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .interface import Transaction

TABLES = ("audit_trail", "audit_trail_visibility", "audit_trail_resources", "audit_trail_checkpoints",
          "audit_trail_jobs")
# Rows per INSERT statement: 13 parameters a row stays far below both engines' limits
# (SQLite 32766, PostgreSQL 65535) and the statement cache sees few shapes.
ROWS_PER_STATEMENT = 200

_TRAIL_COLUMNS = ("chain", "seq", "prev", "hash", "body", "event_time", "event_id", "region", "event_name",
                  "event_source", "read_only", "username", "access_key_id")
_VISIBILITY_COLUMNS = ("account", "region", "event_time", "event_id", "chain", "seq")
_RESOURCE_COLUMNS = ("chain", "seq", "resource_type", "resource_name")


@dataclass(frozen=True)
class TrailRow:
    """One event as the central trail holds it (the lookup columns come from the event)."""

    chain: str
    seq: int
    prev: str
    hash: str
    body: bytes
    event_time: int  # microseconds since the epoch, UTC
    event_id: str
    region: str
    event_name: str
    event_source: str
    read_only: int | None
    username: str | None
    access_key_id: str | None
    accounts: tuple[str, ...] = ()  # the accounts that see the event (audit_trail_visibility)
    resources: tuple[tuple[str, str], ...] = ()  # (type, ARN)

    def trail_values(self) -> tuple:
        return (self.chain, self.seq, self.prev, self.hash, self.body, self.event_time, self.event_id, self.region,
                self.event_name, self.event_source, self.read_only, self.username, self.access_key_id)


def _insert(tx: Transaction, table: str, columns: Sequence[str], rows: list[tuple], conflict: str) -> None:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start:start + ROWS_PER_STATEMENT]
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        tx.q(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(chunk))} "
             f"ON CONFLICT ({conflict}) DO NOTHING", [value for row in chunk for value in row])


def insert_events(tx: Transaction, rows: Iterable[TrailRow]) -> None:
    """Insert events with their visibility and resource rows; rows already there stay as they are."""
    rows = list(rows)
    if not rows:
        return
    _insert(tx, "audit_trail", _TRAIL_COLUMNS, [r.trail_values() for r in rows], "chain, seq")
    visibility = [(account, r.region, r.event_time, r.event_id, r.chain, r.seq) for r in rows for account in r.accounts]
    _insert(tx, "audit_trail_visibility", _VISIBILITY_COLUMNS, visibility, "account, chain, seq")
    resources = [(r.chain, r.seq, kind, name) for r in rows for kind, name in r.resources]
    _insert(tx, "audit_trail_resources", _RESOURCE_COLUMNS, resources, "chain, seq, resource_type, resource_name")


def copied_through(tx: Transaction, chain: str) -> int:
    """The highest seq of ``chain`` the central trail has (or retention purged), -1 if none."""
    row = tx.one("SELECT max(seq) FROM audit_trail WHERE chain = ?", (chain,))
    top = int(row[0]) if row and row[0] is not None else -1
    checkpoint = tx.one("SELECT seq FROM audit_trail_checkpoints WHERE chain = ?", (chain,))
    return max(top, int(checkpoint[0]) if checkpoint else -1)


def chains(tx: Transaction) -> list[str]:
    """Every chain the central trail knows: with events, or only a checkpoint left."""
    rows = tx.q("SELECT chain FROM audit_trail UNION SELECT chain FROM audit_trail_checkpoints ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def checkpoint(tx: Transaction, chain: str) -> tuple[int, str] | None:
    row = tx.one("SELECT seq, hash FROM audit_trail_checkpoints WHERE chain = ?", (chain,))
    return (int(row[0]), row[1]) if row else None


def chain_links(tx: Transaction, chain: str, after: int, limit: int) -> list[tuple[int, str, str, bytes]]:
    """(seq, prev, hash, body) of ``chain`` past seq ``after``, in order."""
    rows = tx.q("SELECT seq, prev, hash, body FROM audit_trail WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?",
                (chain, after, limit)).fetchall()
    return [(int(r[0]), r[1], r[2], bytes(r[3])) for r in rows]


def events_between(tx: Transaction, since: int | None, until: int | None, after: tuple[int, str, int] | None,
                   limit: int, account: str | None = None) -> list[tuple[int, str, int, str, str, bytes]]:
    """(event_time, chain, seq, prev, hash, body) with since <= event_time <= until (microseconds),
    oldest first, keyset-paged past ``after`` = (event_time, chain, seq); with ``account``, only
    the events that account sees (audit_trail_visibility)."""
    where: list[str] = []
    params: list = []
    sql = "SELECT t.event_time, t.chain, t.seq, t.prev, t.hash, t.body FROM audit_trail t"
    if account is not None:
        sql += " JOIN audit_trail_visibility v ON v.chain = t.chain AND v.seq = t.seq"
        where.append("v.account = ?")
        params.append(account)
    if since is not None:
        where.append("t.event_time >= ?")
        params.append(since)
    if until is not None:
        where.append("t.event_time <= ?")
        params.append(until)
    if after is not None:
        where.append("(t.event_time > ? OR (t.event_time = ? AND (t.chain > ? OR (t.chain = ? AND t.seq > ?))))")
        params.extend([after[0], after[0], after[1], after[1], after[2]])
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = tx.q(sql + " ORDER BY t.event_time, t.chain, t.seq LIMIT ?", (*params, limit)).fetchall()
    return [(int(r[0]), r[1], int(r[2]), r[3], r[4], bytes(r[5])) for r in rows]


def newest_events(tx: Transaction, limit: int) -> list[tuple[int, str, int, str, str, bytes]]:
    """The ``limit`` newest events, oldest first (``trentd audit tail``)."""
    rows = tx.q("SELECT event_time, chain, seq, prev, hash, body FROM audit_trail "
                "ORDER BY event_time DESC, chain DESC, seq DESC LIMIT ?", (limit,)).fetchall()
    return [(int(r[0]), r[1], int(r[2]), r[3], r[4], bytes(r[5])) for r in reversed(rows)]


def purge_chain_before(tx: Transaction, chain: str, cutoff: int, limit: int) -> int:
    """Delete the oldest events of ``chain`` up to the last one older than ``cutoff`` (event_time,
    microseconds), at most ``limit``, with their visibility and resource rows, and move the
    chain's checkpoint to the last line deleted. A chain is purged as a prefix (in seq order, up to
    the first event not older than the cutoff), so what stays verifies from the checkpoint."""
    first_kept = tx.one("SELECT min(seq) FROM audit_trail WHERE chain = ? AND event_time >= ?", (chain, cutoff))
    bound = int(first_kept[0]) if first_kept and first_kept[0] is not None else None
    sql = "SELECT seq, hash FROM audit_trail WHERE chain = ?"
    params: list = [chain]
    if bound is not None:
        sql += " AND seq < ?"
        params.append(bound)
    rows = tx.q(sql + " ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
    if not rows:
        return 0
    last_seq, last_hash = int(rows[-1][0]), rows[-1][1]
    for table in ("audit_trail_visibility", "audit_trail_resources", "audit_trail"):
        tx.q(f"DELETE FROM {table} WHERE chain = ? AND seq <= ?", (chain, last_seq))
    tx.q("INSERT INTO audit_trail_checkpoints (chain, seq, hash) VALUES (?, ?, ?) ON CONFLICT (chain) "
         "DO UPDATE SET seq = excluded.seq, hash = excluded.hash", (chain, last_seq, last_hash))
    return len(rows)


def chains_with_events_before(tx: Transaction, cutoff: int) -> list[str]:
    rows = tx.q("SELECT DISTINCT chain FROM audit_trail WHERE event_time < ? ORDER BY chain", (cutoff,)).fetchall()
    return [r[0] for r in rows]


def empty(tx: Transaction) -> None:
    """Every event of the central trail goes (``--dev`` reset). Each chain keeps a checkpoint at
    its last event, as a retention purge leaves it: its files are not copied again (the copy
    starts past the checkpoint) and ``audit verify`` starts from there."""
    tx.q("INSERT INTO audit_trail_checkpoints (chain, seq, hash) "
         "SELECT t.chain, t.seq, t.hash FROM audit_trail t "
         "WHERE t.seq = (SELECT max(u.seq) FROM audit_trail u WHERE u.chain = t.chain) "
         "ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash")
    for table in ("audit_trail_visibility", "audit_trail_resources", "audit_trail", "audit_trail_jobs"):
        tx.q(f"DELETE FROM {table}")


def claim_job(tx: Transaction, name: str, now: int, interval: int) -> bool:
    """In a write transaction: whether this process runs job ``name`` now (microseconds), i.e. no
    process ran it within ``interval``; records the run when so. The job's lock (``exclusive``)
    makes a second node wait for the first one's claim and then see it, so the job runs once."""
    tx.exclusive(f"audit-trail-job:{name}")
    row = tx.one("SELECT last_run FROM audit_trail_jobs WHERE name = ?", (name,))
    if row is not None and abs(now - int(row[0])) < interval:
        return False
    tx.q("INSERT INTO audit_trail_jobs (name, last_run) VALUES (?, ?) ON CONFLICT (name) "
         "DO UPDATE SET last_run = excluded.last_run", (name, now))
    return True
