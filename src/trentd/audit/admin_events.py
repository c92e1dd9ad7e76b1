"""Audit events of admin commands that change who may do what (``trentd sessions revoke``).

An admin command is a process of its own, so it writes its event into a hash-chained file of its
own in the data dir's audit directory, as every serving process does (docs/audit.md); ``trentd
audit verify FILE|tail --file|search --file`` read it with the rest. The event is written before the
command's transaction commits: if it cannot be written, the change is rolled back (fail-closed).
Given that transaction, the event also enters the central trail in it (audit/central.py), so it
is there as soon as the change is; a server copying the chain's file later changes nothing.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from ..store import trail
from .central import row_of
from .events import EVENT_VERSION, event_id, iso_time
from .sink import AuditSink

INVOKED_BY = "trentd admin command"


def admin_event(*, source: str, name: str, account: str, request: dict, extra: dict) -> dict:
    """A CloudTrail-shaped event for a change an administrator made through the admin CLI."""
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"type": "Unknown", "invokedBy": INVOKED_BY},
        "eventTime": iso_time(time.time()),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",  # IAM is global: CloudTrail records it in us-east-1
        "sourceIPAddress": socket.gethostname(),
        "userAgent": "trentd-cli",
        "requestParameters": request,
        "responseElements": None,
        "additionalEventData": extra,
        "requestID": event_id(),
        "eventID": event_id(),
        "readOnly": False,
        "resources": [],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def record(directory: str | Path, event: dict, timeout: float = 30.0, tx=None) -> None:
    """Write ``event`` durably, or raise AuditUnavailable; and into the central trail in ``tx``
    (the command's write transaction), when given."""
    sink = AuditSink(directory)
    written: list[tuple] = []
    sink.on_written = written.extend
    try:
        sink.submit(event).result(timeout)
    finally:
        sink.close()
    if tx is not None:
        trail.insert_events(tx, [row_of(sink.chain_name, *line) for line in written])
