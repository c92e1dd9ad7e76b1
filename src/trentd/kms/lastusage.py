"""GetKeyLastUsage, and the wrapper that records each successful cryptographic operation.

The operations AWS tracks (``tracked`` in their row) are wrapped once (``track``, from
kms/operations.py): after the handler
returns, the key ARNs in its answer (``KeyId``, and ``SourceKeyId`` for ReEncrypt, which records
both keys) are recorded in the service's in-memory ``UsageTracker`` (kms/usage.py) with the
operation, the service-clock time and the request id. A failed call, a DryRun included, raises
before anything is recorded. CloudTrailEventId carries the request id too: the audit event is
written after the handler, and its ``requestID`` field holds the same value, so the pair finds
the event.

TrackingStartDate is the later of the key's creation and the time this store began tracking
(the migration that added tracking records it in ``meta``).
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime, timezone

from .service import operation

TRACKING_META = "last_usage_tracking_start"


def _key_of(arn: str) -> tuple[str, str, str] | None:
    """(account, region, key id) of a key ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("key/"):
        return None
    return parts[4], parts[3], parts[5][4:]


def _tracking(name: str, handler):
    @functools.wraps(handler)
    def tracked(svc, caller, req):
        result = handler(svc, caller, req)
        now = svc.clock.now()
        for member in ("KeyId", "SourceKeyId"):
            arn = result.get(member)
            ident = _key_of(arn) if arn else None
            if ident is not None:
                svc.usage.record(ident, (name, now, caller.request_id))
        return result

    tracked.tracks_usage = True  # type: ignore[attr-defined]
    return tracked


def track(operations: dict) -> None:
    """Wrap the handlers of the tracked operations in the operation table (idempotent)."""
    for name, row in operations.items():
        if row.tracked and not getattr(row.handler, "tracks_usage", False):
            operations[name] = dataclasses.replace(row, handler=_tracking(name, row.handler))


def flush(svc) -> int:
    return svc.usage.flush(svc.store)


def _tracking_start(value: str | None) -> float | None:
    """The meta value: ``CURRENT_TIMESTAMP`` as text (SQLite: UTC without offset)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@operation("GetKeyLastUsage")
def get_key_last_usage(svc, caller, req):
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])  # key id or key ARN only: an alias is InvalidArnException
    # Memory first, then the store in a transaction that starts afterwards: an entry leaves memory
    # only after its write committed, so whatever this node recorded is in one of the two.
    unflushed = svc.usage.peek((key.account, key.region, key.key_id))
    with svc.store.read() as tx:
        stored = tx.get_last_usage(key.account, key.region, key.key_id)
        started = _tracking_start(tx.get_meta(TRACKING_META))
    latest = max((u for u in (stored, unflushed) if u is not None), key=lambda u: u[1], default=None)
    usage = {}
    if latest is not None:
        operation_name, used_at, request_id = latest
        usage = {"Operation": operation_name, "Timestamp": used_at, "CloudTrailEventId": request_id,
                 "KmsRequestId": request_id}
    return {"KeyId": key.key_id, "KeyLastUsage": usage,
            "TrackingStartDate": max(started or key.created, key.created), "KeyCreationDate": key.created}
