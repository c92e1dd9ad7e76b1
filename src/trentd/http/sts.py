"""The STS Query protocol on the same endpoint: form-encoded requests, XML answers.

Requests whose SigV4 scope names service ``sts`` come here; the wire format (form parsing, XML
answers and errors with STS's codes, traps.md "STS on the wire") is the Query codec of
protocol/query.py, ``load_service("sts").codec``; the operations live in ``trentd.sts``.
"""

from __future__ import annotations

import hashlib

from ..protocol import query


def is_sts_request(headers) -> bool:
    return query.is_form(headers)


def user_id(principal_arn: str) -> str:
    """A stable unique id per principal, shaped like IAM's (AIDA… for users, AROA… for roles)."""
    prefix = "AROA" if ":role/" in principal_arn else "AIDA"
    return prefix + hashlib.sha256(principal_arn.encode()).hexdigest()[:17].upper()


def dispatch(svc, caller, form: dict[str, str], exchange) -> bytes:
    """Run one STS request (trentd.sts); blocking: call it on a worker thread."""
    from .. import sts as operations

    return operations.dispatch(svc, caller, form, exchange)
