"""Running a request's handler on the event loop when it needs no blocking work.

A cryptographic call on a cached key costs a few microseconds (an RSA-2048 signature a quarter of
a millisecond); the hop to a worker thread and back costs far more (and GIL hand-offs between
threads add milliseconds of tail latency). So the HTTP edge first runs such a handler inline,
inside ``on_event_loop()``. Anything that would block the loop (a store transaction, a call to an
external key store, RSA decryption, a signature dearer than ~0.3 ms) calls ``offload_point()``,
which then raises ``MustOffload``; the edge discards that attempt and runs the handler again on
the bounded thread pool. Handlers are written so that nothing before such a point has effects
(the answer is built only after the key was found and checked).
"""

from __future__ import annotations

import threading

_state = threading.local()


class MustOffload(BaseException):
    """Blocking work was attempted on the event loop. A BaseException, so that a handler's own
    ``except Exception`` clauses cannot turn it into an error answer."""


class _OnEventLoop:
    """``with on_event_loop():`` marks this thread as the event loop's for the block (a plain
    class: a generator-based context manager costs three times as much, on every request)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _state.active = True

    def __exit__(self, *exc_info) -> None:
        _state.active = False


_ON_EVENT_LOOP = _OnEventLoop()


def on_event_loop() -> _OnEventLoop:
    return _ON_EVENT_LOOP


def offload_point() -> None:
    """Call before blocking work: refuses it on the event loop (see module docstring)."""
    if getattr(_state, "active", False):
        raise MustOffload()
