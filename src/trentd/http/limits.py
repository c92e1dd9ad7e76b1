"""Limits on what a client may send, and how slowly (docs/operations.md, "Limits and deadlines").

uvicorn has no request-receipt timeout: its keep-alive timer is reset by every byte, so a client
trickling one header byte at a time holds a connection (and a ``--limit-concurrency`` slot)
forever, and its httptools protocol keeps every header line a client sends, without a bound. The
protocol below is uvicorn's httptools protocol with these additions:

- a **header deadline**: a request line and headers must be complete ``header_timeout`` seconds
  after the connection opens or the request's first byte arrives, else ``408`` and close;
- a **header size cap**: request line plus headers at most ``max_head_bytes``, at most
  ``max_headers`` fields, else ``431`` and close;
- a **lingering close** after an answer given before the request was read to its end (413, 408,
  431): the answer is followed by a FIN and the rest of the request is read and dropped, for at
  most ``LINGER_SECONDS`` and ``LINGER_BYTES``, before the connection closes. Closed at once,
  the kernel answers the client's next bytes with a reset, and a reset can destroy the answer
  before the client reads it: the client saw "connection reset" instead of the error;
- **room at the concurrency limit**: when a worker holds ``limit_concurrency`` connections, a new
  one closes that worker's longest-idle connection (no request in progress: after an answer, or
  opened and nothing sent yet) instead of being answered 503. Without it, a thousand connections
  that each sent one request and then sat idle made every other client's request a 503 for as
  long as they stayed open. uvicorn's 503 remains for when every connection has a request in flight;
- nothing else changes (keep-alive, pipelining, flow control).

And one change of cost, not of behaviour: a response leaves in one write (``_OneWriteResponses``).
uvicorn writes the status line and headers as soon as the app starts its answer and the body
separately: two sends, and two TCP segments, per response.

The body deadline and size cap are enforced by the application (pipeline/asgi.py ``read_body``),
which sees the body as it arrives; its deadline is a ``Deadlines`` sweep rather than a timer per request.
Workers are separate processes started by uvicorn: the limits reach them through the environment
(``export``/``current``), the protocol through its import string.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
from dataclasses import asdict, dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .. import metrics
from ..pipeline.asgi import sweep_interval

ENV = "TRENTD_HTTP_LIMITS"
LINGER_SECONDS = 5.0  # how long the unread rest of an answered request is still read and dropped
LINGER_BYTES = 16 * 1024 * 1024  # and how much of it
PROTOCOL = "trentd.http.limits:GuardedHttpToolsProtocol"


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0  # seconds for the request line and headers
    body_timeout: float = 10.0  # seconds for the body (enforced in pipeline/asgi.py)
    max_head_bytes: int = 16 * 1024  # request line and header fields, as sent
    max_headers: int = 100


# Descriptors a worker holds besides its client connections: stdio, the listening socket, the
# store's files or database pool, the audit log, the event loop's own, XKS proxy connections.
FILES_BESIDES_CONNECTIONS = 128


def raise_open_files_limit(connections: int | None) -> str | None:
    """Raise this process's soft open-files limit to its hard limit (workers inherit it). Returns
    a warning when it is still below what ``connections`` (``--limit-concurrency``, per worker)
    needs: at the limit, accepting a connection fails (EMFILE), whoever is asking."""
    try:
        import resource
    except ImportError:  # not POSIX: no such limit to raise
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # e.g. macOS refuses an unlimited soft limit: keep ours
            pass
    needed = (connections or 0) + FILES_BESIDES_CONNECTIONS
    if not connections or soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    return (f"the open-files limit is {soft}, below the {needed} that --limit-concurrency {connections} needs "
            f"({connections} connections and {FILES_BESIDES_CONNECTIONS} other files per worker): raise the "
            f"hard limit (ulimit -Hn, systemd's LimitNOFILE=) or lower --limit-concurrency")


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

# Marks the order in which this worker's connections fell idle (opened, or answered). An order,
# not a time: the loop's clock under uvloop (loop.time(), a timer's when()) counts milliseconds,
# and connections answered within one millisecond tied, the tie going to whichever the
# connection set yielded first, often the newest.
_IDLE_ORDER = itertools.count()


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
        self._linger_left: int | None = None  # bytes still dropped before closing; None: not lingering
        self._linger_timer: asyncio.TimerHandle | None = None
        self._idle_mark = 0  # _IDLE_ORDER when this connection last fell idle

    # --- the header deadline --------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._idle_mark = next(_IDLE_ORDER)
        if metrics.ACTIVE is not None:  # one per connection, undone in connection_lost
            metrics.ACTIVE.connections_open.inc()
        self._head_since = self.loop.time()  # a connection that never sends a request is closed too
        if self._limits.header_timeout > 0 and id(self.connections) not in _SWEPT:
            self._sweep()
        self._make_room()

    def _sweep(self) -> None:
        connections, timeout = self.connections, self._limits.header_timeout
        cutoff = self.loop.time() - timeout
        for conn in list(connections):
            if not isinstance(conn, GuardedHttpToolsProtocol):
                continue
            since = conn._head_since
            if since is not None and since < cutoff:
                conn._head_timed_out()
        if connections:
            _SWEPT[id(connections)] = self.loop.call_later(sweep_interval(timeout), self._sweep)
        else:  # nothing to watch: the next connection starts the sweeper again
            _SWEPT.pop(id(connections), None)

    def _head_timed_out(self) -> None:
        self._head_since = None
        if self.transport is not None and not self.transport.is_closing():
            if self._began:  # a request was started: say why it ends; an unused connection just closes
                self.transport.write(HEAD_TIMEOUT)
            self.transport.close()

    # --- room at the concurrency limit ------------------------------------------------------
    def _make_room(self) -> None:
        """At the limit, close the longest-idle connections of this worker until uvicorn (which
        counts this connection too) will serve a request here; when none is idle, its 503 stands.
        A scan of the connections, only at the limit: per request, only a mark when it is answered."""
        limit, connections = self.limit_concurrency, self.connections
        while limit is not None and len(connections) >= limit:
            idle = {conn: order for conn in connections
                    if conn is not self and (order := _idle_order(conn)) is not None}
            if not idle:
                return
            conn = min(idle, key=idle.__getitem__)
            # abort, not close: closing TLS waits up to 30 s for the client's close_notify, which an
            # idle client does not send, and the descriptor stays taken meanwhile. An idle
            # connection has no request in progress (what its last answer may still have unsent
            # is for a client that has not read for the longest time). Uncounted at once, not
            # when the loop reports the connection lost.
            conn.transport.abort()
            connections.discard(conn)
            if metrics.ACTIVE is not None:
                metrics.ACTIVE.connections_evicted.inc()

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
        self._make_room()  # connections that fell idle since this one opened can make room now
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:  # a new request's cycle
            # a stand-in with the Transport's interface (writes held, the rest passed through)
            cycle.transport = _OneWriteResponses(self.transport, self.close_after_answer)  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._linger_left is not None:  # the answer has left: the rest of the request is dropped
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self.transport.close()
            return
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
            self._linger()
            return
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle now (no pipelined request started)
            self._idle_mark = next(_IDLE_ORDER)

    # --- closing after an answer ------------------------------------------------------------
    def close_after_answer(self) -> None:
        """The answer has been written and the connection is not kept alive: close it, lingering
        when the request's body has not all been read."""
        cycle = self.cycle
        if cycle is not None and cycle.more_body:
            self._linger()
        else:
            self.transport.close()

    def _linger(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or self._linger_left is not None:
            return
        self._linger_left = LINGER_BYTES
        if transport.can_write_eof():  # TLS cannot half-close; the answer's length still ends it
            transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, transport.close)
        self.flow.resume_reading()  # the body may have paused reading: the client must not stall

    def shutdown(self) -> None:
        """The server is stopping. An idle TLS connection is aborted rather than closed: closing
        waits (up to 30 s) for the client's close_notify, which an idle keep-alive client never
        sends, and the stop would wait for it. Plain HTTP closes at once either way."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.transport.get_extra_info("ssl_object") is not None:
            self.transport.abort()
            return
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        if metrics.ACTIVE is not None:
            metrics.ACTIVE.connections_open.dec()
        super().connection_lost(exc)


def _idle_order(conn) -> float | None:
    """Where ``conn`` stands among the idle connections, lowest first (longest idle); None while
    it has a request in progress. Idle is between an answer and the next request's first byte
    (exactly while uvicorn's keep-alive timer runs), or opened and nothing sent yet. A connection
    already closing with nothing left to send comes first (-inf): over TLS it stays open, and
    counted, for up to 30 s waiting for the client's close_notify (after a keep-alive timeout, a
    503, a 408...)."""
    transport = conn.transport if isinstance(conn, GuardedHttpToolsProtocol) else None
    if transport is None:
        return None
    if transport.is_closing():
        return -math.inf if transport.get_write_buffer_size() == 0 else None
    if conn.timeout_keep_alive_task is not None or not conn._began:
        return conn._idle_mark
    return None


class _OneWriteResponses:
    """The transport as one request's cycle sees it: the status line and headers are held until
    the first body write and leave with it, in one send. Everything else passes through (an
    interim ``100 Continue`` is written at once: the client waits for it before sending the body)."""

    __slots__ = ("_transport", "_close", "_head", "_head_seen")

    def __init__(self, transport, close):
        self._transport = transport
        self._close = close  # the protocol's close_after_answer
        self._head: bytes | None = None  # the response head, until the first body write
        self._head_seen = False  # only the first final status line is a head: bodies pass through

    def write(self, data: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head + data)
        elif not self._head_seen and data.startswith(b"HTTP/") and not data.startswith(b"HTTP/1.1 1"):
            self._head_seen = True
            self._head = data
        else:
            self._transport.write(data)

    def close(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)
        self._close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)
