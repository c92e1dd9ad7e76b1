"""The STS Query protocol on the same endpoint: form-encoded requests, XML answers.

Requests whose SigV4 scope names service ``sts`` come here; the wire format (form parsing, XML
answers and errors with STS's codes, traps.md "STS on the wire") is the Query codec of
protocol/query.py, ``load_service("sts").codec``; the operations live in ``trentd.sts``.
"""

from __future__ import annotations

from .. import sts as operations
from ..protocol import query


def is_sts_request(headers) -> bool:
    return query.is_form(headers)


def dispatch(svc, caller, form: dict[str, str], exchange) -> bytes:
    """Run one STS request (trentd.sts); blocking: call it on a worker thread."""
    return operations.dispatch(svc, caller, form, exchange)
