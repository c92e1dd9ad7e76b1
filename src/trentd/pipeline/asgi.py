"""The ASGI side of a request: its body read within a size cap and a deadline, and the answer.

``read_body`` is the pipeline's first step (the API, and trentd's signed controls): at most
``MAX_BODY`` bytes (413 before reading when Content-Length says more; a chunked body is cut off
at the cap), received within the body deadline (408). Its deadline is a ``Deadlines`` sweep
rather than a timer per request. The console reads its forms with ``read_capped`` too. The limits
on the request line and headers are the HTTP protocol's (http/limits.py).
"""

from __future__ import annotations

import asyncio

from ..errors import AWSError

MAX_BODY = 512 * 1024  # a legal CreateKey with non-ASCII text reaches ~360 KB
JSON_TYPE = b"application/x-amz-json-1.1"


class BodyTooLarge(AWSError):
    def __init__(self):
        super().__init__("RequestEntityTooLargeException",
                         f"Request body exceeds the maximum allowed size of {MAX_BODY} bytes.", 413)


class BodyTimeout(AWSError):
    """The body did not arrive within the body deadline (a stalled or lying client)."""

    def __init__(self):
        super().__init__("RequestTimeoutException", "The request body was not received in time.", 408)


# Answers after which the rest of the request is not read: the connection is closed instead.
CLOSE_AFTER = (BodyTooLarge, BodyTimeout)


def sweep_interval(timeout: float) -> float:
    """How often a sweep looks for what is late, for deadlines of ``timeout`` seconds."""
    return min(1.0, max(0.05, timeout / 4))


class Deadlines:
    """Deadlines on awaits, without a timer per await: each waiting task is noted with its
    deadline, and one sweep per event loop, every ``min(1 s, timeout/4)`` while any task waits,
    cancels the late ones, whose ``within`` then raises TimeoutError. (``asyncio.timeout`` arms
    and cancels a timer per request, a few percent of the cost of a small API call.)"""

    def __init__(self):
        self._waiting: dict[asyncio.Task, float] = {}  # task -> loop time of its deadline
        self._expired: set[asyncio.Task] = set()
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._loop = None  # the loop the sweep runs on
        self._interval = 1.0

    async def within(self, awaitable, timeout: float, loop=None):
        """Await ``awaitable``; TimeoutError if it takes more than about ``timeout`` seconds.
        ``loop``: the running loop, when the caller has it (on Python 3.11 every lookup of the
        running loop costs a getpid() system call)."""
        loop = loop or asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None  # within() is awaited, so from a task
        self._waiting[task] = loop.time() + timeout
        if self._sweep_handle is None or loop is not self._loop or sweep_interval(timeout) < self._interval:
            self._schedule(loop, sweep_interval(timeout))
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            task.uncancel()
            raise TimeoutError from None
        finally:
            # The task is deregistered as soon as it resumes, so a sweep can only cancel it while
            # it is suspended in the await above.
            self._waiting.pop(task, None)
            self._expired.discard(task)

    def _schedule(self, loop, interval: float) -> None:
        if self._sweep_handle is not None and self._loop is loop:
            self._sweep_handle.cancel()
        if loop is not self._loop:  # a new loop (tests run several): what waited on the old one is gone
            self._waiting = {task: when for task, when in self._waiting.items() if task.get_loop() is loop}
            self._loop = loop
        self._interval = interval
        self._sweep_handle = loop.call_later(interval, self._sweep, loop)

    def _sweep(self, loop) -> None:
        self._sweep_handle = None
        now = loop.time()
        for task, deadline in list(self._waiting.items()):
            if deadline <= now:
                del self._waiting[task]
                self._expired.add(task)
                task.cancel()
        if self._waiting:
            self._schedule(loop, self._interval)


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


_body_deadlines = Deadlines()


async def read_body(scope, receive, timeout: float | None = None, loop=None) -> bytes:
    """The whole body, at most MAX_BODY bytes (413 before reading when Content-Length says more;
    a chunked body is cut off at the cap), received within ``timeout`` seconds (408)."""
    if not timeout:
        return await _read_body(scope, receive)
    try:
        return await _body_deadlines.within(_read_body(scope, receive), timeout, loop)
    except TimeoutError:
        raise BodyTimeout() from None


async def _read_body(scope, receive) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise BodyTooLarge()
    return await read_capped(receive, MAX_BODY, BodyTooLarge)


async def respond(send, status: int, body: bytes, content_type: bytes = JSON_TYPE, request_id: str | None = None,
                  close: bool = False):
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if request_id:
        headers.append((b"x-amzn-requestid", request_id.encode()))
    if close:  # the request was not read to its end: uvicorn closes the connection after this answer
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
