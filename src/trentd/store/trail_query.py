"""Reading the central audit trail as CloudTrail's LookupEvents does (cloudtrail/lookup.py).

The tables are the central trail's (migration 0011, written by the background copy of each
process's chain: store/trail.py): ``audit_trail`` (one row per event: its canonical bytes and
the columns each lookup attribute reads), ``audit_trail_visibility`` (one row per account that
sees an event, indexed on (account, region, event_time, event_id)) and ``audit_trail_resources``.

``lookup_events(tx, query)`` answers one page, newest first, ordered by (event_time, event_id)
descending; ``query.after`` is the keyset cursor of the page before (the last event it showed), so
events added meanwhile, the lookups' own among them, never shift a page: they sort before the
cursor. Portable SQL only (``?`` placeholders), run through the transaction's ``q``, so both
engines share it and nothing here is mixed into ``Tx``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .interface import Transaction

# LookupEvents' attribute keys (the model's LookupAttributeKey) -> the condition on the event row
# ``t``. The resource attributes match any of the event's resources.
_RESOURCE = ("EXISTS (SELECT 1 FROM audit_trail_resources r WHERE r.chain = t.chain AND r.seq = t.seq "
             "AND r.{column} = ?)")
ATTRIBUTE_CONDITIONS = {
    "EventId": "t.event_id = ?",
    "EventName": "t.event_name = ?",
    "ReadOnly": "t.read_only = ?",
    "Username": "t.username = ?",
    "AccessKeyId": "t.access_key_id = ?",
    "EventSource": "t.event_source = ?",
    "ResourceType": _RESOURCE.format(column="resource_type"),
    "ResourceName": _RESOURCE.format(column="resource_name"),
}
_COLUMNS = ("t.chain, t.seq, t.body, t.event_time, t.event_id, t.event_name, t.event_source, t.read_only, "
            "t.username, t.access_key_id")


@dataclass(frozen=True)
class TrailQuery:
    """One page of one account's events in one Region. Times are µs since the epoch, inclusive."""

    account: str
    region: str
    limit: int
    start: int | None = None
    end: int | None = None
    attribute: tuple[str, str | int] | None = None  # (a key of ATTRIBUTE_CONDITIONS, value)
    after: tuple[int, str] | None = None  # (event_time, event_id) of the last event already shown


@dataclass(frozen=True)
class TrailEvent:
    chain: str
    seq: int
    body: bytes  # the event's canonical JSON, exactly as hashed into its chain
    event_time: int  # µs since the epoch
    event_id: str
    event_name: str
    event_source: str
    read_only: bool | None
    username: str | None
    access_key_id: str | None
    resources: list[tuple[str, str]] = field(default_factory=list)  # (type, name)


def lookup_events(tx: Transaction, query: TrailQuery) -> list[TrailEvent]:
    """At most ``query.limit`` events, newest first, with their resources."""
    where, params = _conditions(query)
    rows = tx.q(
        f"SELECT {_COLUMNS} FROM audit_trail_visibility v JOIN audit_trail t ON t.chain = v.chain AND t.seq = v.seq "
        f"WHERE {' AND '.join(where)} ORDER BY v.event_time DESC, v.event_id DESC LIMIT ?",
        (*params, query.limit),
    ).fetchall()
    events = [_event(row) for row in rows]
    _attach_resources(tx, events)
    return events


def _conditions(query: TrailQuery) -> tuple[list[str], list[str | int]]:
    where = ["v.account = ?", "v.region = ?"]
    params: list[str | int] = [query.account, query.region]
    if query.start is not None:
        where.append("v.event_time >= ?")
        params.append(query.start)
    if query.end is not None:
        where.append("v.event_time <= ?")
        params.append(query.end)
    if query.after is not None:
        moment, event_id = query.after
        where.append("(v.event_time < ? OR (v.event_time = ? AND v.event_id < ?))")
        params += [moment, moment, event_id]
    if query.attribute is not None:
        key, value = query.attribute
        where.append(ATTRIBUTE_CONDITIONS[key])
        params.append(value)
    return where, params


def _event(row) -> TrailEvent:
    chain, seq, body, moment, event_id, name, source, read_only, username, access_key_id = row
    return TrailEvent(chain, int(seq), bytes(body), int(moment), event_id, name, source,
                      None if read_only is None else bool(read_only), username, access_key_id)


def _attach_resources(tx: Transaction, events: list[TrailEvent]) -> None:
    """One query for the page's resources (a page holds at most 50 events)."""
    if not events:
        return
    by_event = {(e.chain, e.seq): e for e in events}
    pairs = " OR ".join("(chain = ? AND seq = ?)" for _ in events)
    params = [value for e in events for value in (e.chain, e.seq)]
    rows = tx.q(f"SELECT chain, seq, resource_type, resource_name FROM audit_trail_resources WHERE {pairs} "
                "ORDER BY chain, seq, resource_type, resource_name", params).fetchall()
    for chain, seq, resource_type, resource_name in rows:
        by_event[(chain, int(seq))].resources.append((resource_type, resource_name))
