"""STS on the KMS endpoint: GetCallerIdentity, GetSessionToken and AssumeRole (issue #10).

``dispatch`` runs one Query-protocol request: the operation from ``Action``, the request parsed
and validated from botocore's STS model (query.py), the handler (operations.py), the XML answer.
Credentials it issues are checked on every later call by auth/temporary.py.
"""

from __future__ import annotations

from ..auth.invocation import Invocation
from ..errors import AWSError
from . import query
from .operations import OPERATIONS

# Request members an audit event shows; MFA codes, session policies and tags stay out.
_AUDITED = ("RoleArn", "RoleSessionName", "DurationSeconds", "ExternalId", "PolicyArns", "SourceIdentity")


def dispatch(svc, caller, form: dict[str, str], exchange) -> bytes:
    action = form.get("Action") or ""
    model = query.model()
    if action not in model.operations:
        raise AWSError("InvalidAction",
                       f"Could not find operation {action} for version {form.get('Version', 'NO_VERSION_SPECIFIED')}")
    exchange.operation = action
    handler = OPERATIONS.get(action)
    if handler is None:
        raise AWSError("InvalidAction", f"{action} is not supported by trentd.")
    request = model.parse(action, form)
    # the audit event's requestParameters (audit/events.py), lowerCamelCase as CloudTrail writes them
    exchange.request = {k[:1].lower() + k[1:]: request[k] for k in _AUDITED if k in request}
    exchange.invocation = call = Invocation(caller, action, request, service="sts")
    result = handler(svc, call, request)
    return model.serialize(action, result, exchange.request_id)
