"""The CloudTrail operations trentd answers: LookupEvents, over the central audit trail.

One row, of the shape the request pipeline reads of every operation table (kms/operations.py,
sts/operations.py): run on the thread pool (it reads the store), no cached state (so no retry with
fresh reads), audited as CloudTrail records its own lookups (event source
cloudtrail.amazonaws.com, readOnly true; requestParameters: what protocol/redaction.py lets it
show). Every other operation of CloudTrail's model is refused by the pipeline with ``UNSUPPORTED``.
"""

from __future__ import annotations

from ..audit.events import AuditFacts, PoolRow
from .lookup import lookup_events

UNSUPPORTED = ("UnsupportedOperationException", "trentd implements only LookupEvents")


OPERATIONS: dict[str, PoolRow] = {
    "LookupEvents": PoolRow("cloudtrail", "LookupEvents", lookup_events, AuditFacts(read_only=True)),
}
