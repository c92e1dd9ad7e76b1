"""The STS Query protocol on the same endpoint: form-encoded requests, XML answers.

Requests whose SigV4 scope names service ``sts`` come here: this module is the edge (form
parsing, XML errors with STS's codes, traps.md "STS on the wire"); the operations live in
``trentd.sts``.
"""

from __future__ import annotations

from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .. import sts as operations
from ..errors import AWSError

XML_TYPE = b"text/xml"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
FORM_TYPE = "application/x-www-form-urlencoded"
# STS words the SigV4 failures differently from the JSON services, and answers 403.
_AUTH_CODES = {
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "ExpiredTokenException": ("ExpiredToken", 403),
    "AccessDeniedException": ("AccessDenied", 403),
    "MalformedPolicyDocumentException": ("MalformedPolicyDocument", 400),
}


def is_sts_request(headers) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == FORM_TYPE


def parse_form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise AWSError("MalformedQueryString", "The request body is not a valid form-encoded query string.") from None
    return {name: values[-1] for name, values in fields.items()}


def dispatch(svc, caller, form: dict[str, str], exchange) -> bytes:
    """Run one STS request (trentd.sts); blocking: call it on a worker thread."""
    return operations.dispatch(svc, caller, form, exchange)


def error(err: AWSError, request_id: str) -> tuple[int, bytes]:
    code, status = _AUTH_CODES.get(err.code, (err.code, err.status))
    kind = "Receiver" if status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(err.message or '')}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, body.encode()
