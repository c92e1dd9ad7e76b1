"""Reading the central trail (every node's events, in the store): ``trentd audit
verify|search|tail|export`` without files (admin/audit.py) and the console's audit page.

Events come back as the lines the files hold (chain.render_line of the stored canonical bytes and
links), so a line from the store and one from a file are byte for byte the same. Filters are those
of ``trentd audit search`` on files (audit/reader.py ``matches``); the time bounds also narrow the
SQL (event_time is indexed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import orjson

from ..store import trail
from . import chain
from .central import event_micros, row_of
from .reader import matches

PAGE = 2000  # rows per read while walking the trail


def _micros(stamp: str | None) -> int | None:
    """An ``eventTime`` bound (``YYYY-MM-DDTHH:MM:SSZ``) as microseconds since the epoch."""
    return event_micros(stamp) if stamp else None


def walk(store, since: str | None = None, until: str | None = None,
         account: str | None = None) -> Iterator[tuple[int, str, int, str, str, bytes]]:
    """(event_time, chain, seq, prev, hash, body) of the events between ``since`` and ``until``
    (eventTime strings, inclusive; until covers its whole second), oldest first; with ``account``
    only those the account sees."""
    low = _micros(since)
    high = _micros(until)
    if high is not None:
        high += 999_999
    after = None
    while True:
        with store.read() as tx:
            rows = trail.events_between(tx, low, high, after, PAGE, account)
        yield from rows
        if len(rows) < PAGE:
            return
        last = rows[-1]
        after = (last[0], last[1], last[2])


def line_of(row: tuple[int, str, int, str, str, bytes]) -> bytes:
    """The stored event as its file line (with its trentdChain member, without the newline)."""
    _, _, seq, prev, digest, body = row
    return chain.render_line(body, seq, prev, digest)[:-1]


def search(store, *, key=None, principal=None, events=None, error=False, since=None, until=None,
           account: str | None = None, writes_only: bool = False) -> list[tuple[bytes, dict]]:
    """(line, event) of the matching events, oldest first."""
    found = []
    for row in walk(store, since, until, account):
        event = orjson.loads(row[5])
        if writes_only and event.get("readOnly"):
            continue
        if matches(event, key=key, principal=principal, events=events, error=error, since=since, until=until):
            found.append((line_of(row), event))
    return found


def tail(store, n: int) -> list[bytes]:
    """The lines of the ``n`` newest events, oldest first."""
    if n <= 0:
        return []
    with store.read() as tx:
        return [line_of(row) for row in trail.newest_events(tx, n)]


def export(store, out: IO[bytes], since: str, until: str | None = None) -> int:
    """Write the events between ``since`` and ``until`` as JSON lines, each the CloudTrail record
    (the event as stored, without the chain's member), oldest first; returns how many."""
    count = 0
    for row in walk(store, since, until):
        out.write(row[5] + b"\n")
        count += 1
    return count


# --- verification ---------------------------------------------------------------------------------
@dataclass
class ChainReport:
    chain: str
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None
    checkpoint: int | None = None  # the seq verification started after (retention's checkpoint)
    error: dict | None = None

    def as_dict(self) -> dict:
        out = {"chain": self.chain, "events": self.events, "firstSeq": self.first_seq, "lastSeq": self.last_seq,
               "head": self.head}
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class CentralReport:
    chains: list[ChainReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.error is None for c in self.chains)

    def as_dict(self) -> dict:
        out: dict = {"ok": self.ok, "source": "central", "chains": [c.as_dict() for c in self.chains]}
        errors = [{"chain": c.chain, **c.error} for c in self.chains if c.error is not None]
        if errors:
            out["errors"] = errors
        return out


def verify(store) -> CentralReport:
    """Check every chain of the central trail from its start (or its checkpoint): each event's
    stored bytes re-hashed with its prev and seq, the links from one event to the next, and its
    lookup columns against its bytes. Reports the first break of each chain."""
    report = CentralReport()
    with store.read() as tx:
        names = trail.chains(tx)
    for name in names:
        report.chains.append(verify_chain(store, name))
    return report


def verify_chain(store, name: str) -> ChainReport:
    result = ChainReport(name)
    with store.read() as tx:
        start = trail.checkpoint(tx, name)
    want_seq, want_prev = (start[0] + 1, start[1]) if start else (0, chain.ZERO)
    if start:
        result.checkpoint = start[0]
    while True:
        with store.read() as tx:
            links = trail.chain_links(tx, name, want_seq - 1, PAGE)
            columns = _columns(tx, name, want_seq - 1, links[-1][0]) if links else {}
        for seq, prev, digest, body in links:
            problem = _check(seq, prev, digest, body, want_seq, want_prev, columns.get(seq), name)
            if problem:
                result.error = {"seq": seq, "reason": problem}
                return result
            result.events += 1
            result.first_seq = seq if result.first_seq is None else result.first_seq
            result.last_seq, result.head = seq, digest
            want_seq, want_prev = seq + 1, digest
        if len(links) < PAGE:
            return result


def _columns(tx, name: str, after: int, through: int) -> dict[int, tuple]:
    rows = tx.q("SELECT seq, event_time, event_id, region, event_name, event_source, read_only, username, "
                "access_key_id FROM audit_trail WHERE chain = ? AND seq > ? AND seq <= ?",
                (name, after, through)).fetchall()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def _check(seq: int, prev: str, digest: str, body: bytes, want_seq: int, want_prev: str, columns: tuple | None,
           name: str) -> str | None:
    if seq != want_seq:
        return f"seq {seq} where {want_seq} was expected (events are missing)"
    if prev != want_prev:
        return "prev does not match the hash of the event before"
    try:
        if chain.link(prev, seq, body) != digest:
            return "hash mismatch: the event was modified"
        event = orjson.loads(body)
    except (ValueError, orjson.JSONDecodeError):
        return "hash mismatch: the event was modified"
    if not isinstance(event, dict) or chain.canonical(event) != body:
        return "the stored bytes are not a canonical event"
    row = row_of(name, seq, prev, digest, body, event)
    expected = (row.event_time, row.event_id, row.region, row.event_name, row.event_source, row.read_only,
                row.username, row.access_key_id)
    if columns is not None and tuple(columns) != expected:
        return "the lookup columns do not match the event"
    return None
