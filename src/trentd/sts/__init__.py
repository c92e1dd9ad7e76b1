"""STS on the KMS endpoint: GetCallerIdentity, GetSessionToken and AssumeRole (issue #10).

``dispatch`` runs one Query-protocol request: the operation from ``Action``, the request parsed
and validated from botocore's STS model (protocol/query.py), the handler (operations.py), the XML answer.
Credentials it issues are checked on every later call by auth/temporary.py.
"""

from __future__ import annotations

from ..auth.invocation import Invocation
from ..errors import AWSError
from ..protocol.model import load_service
from .operations import OPERATIONS


def dispatch(svc, caller, form: dict[str, str], exchange) -> bytes:
    action = form.get("Action") or ""
    operation = load_service("sts").operation(action)
    if operation is None:
        raise AWSError("InvalidAction",
                       f"Could not find operation {action} for version {form.get('Version', 'NO_VERSION_SPECIFIED')}")
    exchange.operation = action
    handler = OPERATIONS.get(action)
    if handler is None:
        raise AWSError("InvalidAction", f"{action} is not supported by trentd.")
    request = operation.request(form)
    # the audit event's requestParameters (audit/events.py): the members protocol/redaction.py
    # lets it show, lowerCamelCase as CloudTrail writes them
    exchange.request = operation.audit.parameters(request) if operation.audit is not None else {}
    exchange.invocation = call = Invocation(caller, action, request, service="sts")
    result = handler(svc, call, request)
    return operation.serialize(result, exchange.request_id)
