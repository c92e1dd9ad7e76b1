"""Signed KMS requests as raw HTTP/1.1 bytes, and a plain keep-alive connection to send them.

The body is serialized by botocore's JSON serializer from the bundled KMS model and signed by
botocore's SigV4Auth, so the bytes are what boto3 itself would send; the only differences are
that they are frozen (wrk replays them) and that nothing is added after signing but
Content-Length. Signatures are dated: trentd, like AWS, refuses them after 5 minutes of clock
skew, so callers re-sign for every measured run.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from .target import Target


@functools.lru_cache(maxsize=None)
def _kms_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("kms")


@functools.lru_cache(maxsize=None)
def _serializer():
    from botocore.serialize import create_serializer

    return create_serializer("json", include_validation=True)


def signed_request(target: Target, operation: str, params: dict) -> bytes:
    """One complete request (head and body) for ``operation`` with ``params`` as boto3 takes them."""
    serialized = _serializer().serialize_to_request(params, _kms_model().operation_model(operation))
    request = AWSRequest(method="POST", url=target.url.rstrip("/") + "/", data=serialized["body"],
                         headers={"Host": target.host, **serialized["headers"]})
    SigV4Auth(target.credentials, "kms", target.region).add_auth(request)
    return _raw_bytes(request.prepare())


def _raw_bytes(prepared) -> bytes:
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    headers = {key: value for key, value in prepared.headers.items()}
    headers["Content-Length"] = str(len(body))
    head = "POST / HTTP/1.1\r\n" + "".join(f"{key}: {_text(value)}\r\n" for key, value in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float  # from the first byte sent to the last byte of the body received


class RawConnection:
    """A keep-alive connection that sends pre-built request bytes verbatim: a request checked
    here is byte for byte the request wrk replays."""

    def __init__(self, url: str, timeout: float = 120.0):
        parts = urlsplit(url)
        self._address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self._tls = parts.scheme == "https"
        self._timeout = timeout
        self._sock = None

    def _connect(self):
        sock = socket.create_connection(self._address, timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:  # a benchmark trusts whatever it was pointed at
            sock = ssl._create_unverified_context().wrap_socket(sock, server_hostname=self._address[0])
        return sock

    def send(self, raw: bytes) -> Answer:
        if self._sock is None:
            self._sock = self._connect()
        started = time.perf_counter()
        self._sock.sendall(raw)
        response = http.client.HTTPResponse(self._sock)
        response.begin()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.will_close:
            self.close()
        return Answer(response.status, body, elapsed)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
