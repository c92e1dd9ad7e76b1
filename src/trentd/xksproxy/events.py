"""The audit event of each XKS proxy call: CloudTrail-shaped like every other trentd event, in the
same hash chain (audit/), with eventSource ``kms-xks-proxy``.

``additionalEventData`` carries the requestMetadata AWS KMS sent (kmsRequestId, to correlate with
the caller's CloudTrail, kmsOperation, awsPrincipalArn, kmsKeyArn, kmsViaService, awsSourceVpc(e)),
the key store and the processing time. Plaintext, ciphertext, AAD and keys are never recorded: a
request shows only the sizes of its data members.
"""

from __future__ import annotations

import time

from ..audit.events import EVENT_VERSION, event_id
from ..protocol.redaction import iso_time
from .api import Call
from .errors import XksError

SOURCE = "kms-xks-proxy"
_METADATA = ("kmsRequestId", "kmsOperation", "awsPrincipalArn", "kmsKeyArn", "kmsViaService", "awsSourceVpc",
             "awsSourceVpce")
_MAX = 2048


def _clip(value: object) -> str | None:
    return value[:_MAX] if isinstance(value, str) else None


def build_event(call: Call, *, received: float, error: XksError | None, client: str | None,
                user_agent: str | None, default_region: str) -> dict:
    identity: dict = {"type": "XksProxyCredential"}
    if call.access_key_id is not None:
        identity["accessKeyId"] = call.access_key_id[:128]
    if call.keystore is not None:
        identity["keyStore"] = call.keystore.name
    extra: dict = {name: _clip(call.metadata.get(name)) for name in _METADATA
                   if call.metadata and _clip(call.metadata.get(name)) is not None}
    extra["processingTimeMillis"] = round((time.time() - received) * 1000, 3)
    request: dict = {"uriPath": call.path[:512]}
    if call.key_id is not None:
        request["externalKeyId"] = call.key_id
    request.update(call.parameters)
    event: dict = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": iso_time(received),
        "eventSource": SOURCE,
        "eventName": call.operation or "Unknown",
        "awsRegion": call.region or default_region,
        "sourceIPAddress": client,
        "userAgent": (user_agent or "")[:1024] or None,
        "requestParameters": request,
        "responseElements": None,
        "additionalEventData": extra,
        "requestID": call.request_id,
        "eventID": event_id(),
        "readOnly": True,  # no XKS operation changes anything (crypto operations count as reads)
        "resources": [],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "eventCategory": "Data",
    }
    if call.keystore is not None:
        event["recipientAccountId"] = call.keystore.account
    if error is not None:
        event["errorCode"] = error.name
        event["errorMessage"] = error.message
    return event
