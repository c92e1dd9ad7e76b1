"""Audit events of admin commands that change who may do what (``trentd sessions revoke``).

An admin command is a process of its own, so it writes its event into a hash-chained file of its
own in the data dir's audit directory, as every serving process does (docs/audit.md); ``trentd
audit verify|tail|search`` read it with the rest. The event is written before the command's
transaction commits: if it cannot be written, the change is rolled back (fail-closed).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

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


def record(directory: str | Path, event: dict, timeout: float = 30.0) -> None:
    """Write ``event`` durably, or raise AuditUnavailable."""
    sink = AuditSink(directory)
    try:
        sink.submit(event).result(timeout)
    finally:
        sink.close()
