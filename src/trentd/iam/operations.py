"""The IAM operations trentd answers, one row each, in the shape of STS's rows (sts/operations.py):
``handler(svc, call, request) -> result``, run on the thread pool (every one reads the store),
no cached state, audited with event source ``iam.amazonaws.com`` (requestParameters: the members
protocol/redaction.py lets IAM show; responseElements: null, so CreateAccessKey's secret is never
in an event). An operation of the model not in this table is answered 400 InvalidAction.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from ..audit.events import AuditFacts, PoolRow
from . import access_keys, attachments, groups, inline_policies, managed_policies, roles, simulate, terraform_reads
from . import users

_READS = ("Get", "List", "Simulate")


def _row(name: str, handler: Callable) -> PoolRow:
    return PoolRow("iam", name, handler, AuditFacts(read_only=name.startswith(_READS),
                                                    request_defaults=MappingProxyType({})))


OPERATIONS: dict[str, PoolRow] = {
    name: _row(name, handler)
    for family in (users, access_keys, roles, groups, inline_policies, managed_policies, attachments,
                   terraform_reads, simulate)
    for name, handler in family.HANDLERS.items()
}
