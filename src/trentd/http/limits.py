"""Limits on what a client may send, and how slowly (docs/operations.md, "Limits and deadlines").

uvicorn has no request-receipt timeout: its keep-alive timer is reset by every byte, so a client
trickling one header byte at a time holds a connection (and a ``--limit-concurrency`` slot)
forever, and its httptools protocol keeps every header line a client sends, without a bound. The
protocol below is uvicorn's httptools protocol with two additions:

- a **header deadline**: a request line and headers must be complete ``header_timeout`` seconds
  after the connection opens or the request's first byte arrives, else ``408`` and close;
- a **header size cap**: request line plus headers at most ``max_head_bytes``, at most
  ``max_headers`` fields, else ``431`` and close;
- nothing else changes (keep-alive, pipelining, flow control, 503 beyond ``limit_concurrency``).

The body deadline and size cap are enforced by the application (http/app.py ``read_body``), which
sees the body as it arrives. Workers are separate processes started by uvicorn: the limits reach
them through the environment (``export``/``current``), the protocol through its import string.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ENV = "TRENTD_HTTP_LIMITS"
PROTOCOL = "trentd.http.limits:GuardedHttpToolsProtocol"


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0  # seconds for the request line and headers
    body_timeout: float = 10.0  # seconds for the body (enforced in http/app.py)
    max_head_bytes: int = 16 * 1024  # request line and header fields, as sent
    max_headers: int = 100


def export(limits: Limits) -> None:
    os.environ[ENV] = json.dumps(asdict(limits))


_current: Limits | None = None


def current() -> Limits:
    global _current
    if _current is None:
        raw = os.environ.get(ENV)
        _current = Limits(**json.loads(raw)) if raw else Limits()
    return _current


def _status(code: int, reason: str, error: str, text: str) -> bytes:
    body = json.dumps({"__type": error, "message": text}).encode()
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


HEAD_TIMEOUT = _status(408, "Request Timeout", "RequestTimeoutException",
                       "The request headers were not received in time.")
HEAD_TOO_LARGE = _status(431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLargeException",
                         "The request headers are too large.")


class _HeadTooLarge(Exception):
    pass


_SWEPT: dict[int, asyncio.TimerHandle] = {}  # id(server's connection set) -> its sweeper's next run


def _sweep_interval(timeout: float) -> float:
    return min(1.0, max(0.05, timeout / 4))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and header size limits.

    The deadline costs nothing per request: a connection notes when its current head began
    (``loop.time()``), and one sweeper per server, every ``min(1 s, timeout/4)``, closes the
    connections whose head is older than the deadline. (A timer armed and cancelled per request
    costs about a tenth of uvicorn's throughput on a small request.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._limits = current()
        self._head_since: float | None = None  # loop time the current request head began; None: not in one
        self._pending_head = 0  # bytes received since the head began and it is still incomplete
        self._head_too_large = False
        self._chunk = 0  # size of the read being parsed
        self._began = False  # a request has begun on this connection

    # --- the header deadline --------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_since = self.loop.time()  # a connection that never sends a request is closed too
        if self._limits.header_timeout > 0 and id(self.connections) not in _SWEPT:
            self._sweep()

    def _sweep(self) -> None:
        connections, timeout = self.connections, self._limits.header_timeout
        cutoff = self.loop.time() - timeout
        for conn in list(connections):
            since = getattr(conn, "_head_since", None)
            if since is not None and since < cutoff:
                conn._head_timed_out()
        if connections:
            _SWEPT[id(connections)] = self.loop.call_later(_sweep_interval(timeout), self._sweep)
        else:  # nothing to watch: the next connection starts the sweeper again
            _SWEPT.pop(id(connections), None)

    def _head_timed_out(self) -> None:
        self._head_since = None
        if self.transport is not None and not self.transport.is_closing():
            if self._began:  # a request was started: say why it ends; an unused connection just closes
                self.transport.write(HEAD_TIMEOUT)
            self.transport.close()

    # --- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = True
        if self._head_since is None:
            self._head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._head_since = None
        limits = self._limits
        # The head is at most what arrived while it was incomplete: count it exactly only when
        # that could be over the cap (a large read), which keeps the common case free.
        if len(self.headers) > limits.max_headers or (
                self._pending_head + self._chunk > limits.max_head_bytes
                and len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) > limits.max_head_bytes):
            self._pending_head = 0
            self._head_too_large = True
            raise _HeadTooLarge  # httptools stops parsing; uvicorn then calls send_400_response
        self._pending_head = 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        self._chunk = len(data)
        super().data_received(data)
        # httptools buffers a header line until it is complete, so a never-ending head must be
        # bounded here: while the head is still incomplete, every byte received belongs to it.
        if self._head_since is not None and self.transport is not None and not self.transport.is_closing():
            self._pending_head += len(data)
            if self._pending_head > self._limits.max_head_bytes:
                self._head_too_large = True
                self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        self._head_since = None
        if self._head_too_large:
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()
            return
        super().send_400_response(msg)


async def read_capped(receive, limit: int, too_large) -> bytes:
    """An ASGI request body of at most ``limit`` bytes; ``too_large()`` is raised past it (a
    chunked body is cut off at the cap). A client gone away raises ConnectionError."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
