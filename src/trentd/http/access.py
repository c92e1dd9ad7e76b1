"""The access log (``--access-log``): one line per API request, after its audit record.

The event loop only queues the request's ``Exchange`` (the same one the audit event is built
from) with its status and duration; a thread of its own turns it into a line and writes it, so
the loop never waits on stdout or stderr. The queue is bounded: when the output cannot keep up,
lines are dropped and counted (a warning says how many), never the requests slowed.

Members: ``request_id``, ``service``, ``operation``, ``principal`` (the caller's ARN, none when
not authenticated), ``source_ip``, ``status``, ``error_code``, ``duration_ms``. Nothing a caller
sent beyond names: no access key id, no signature, no message, no parameter.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from .. import logs
from ..audit.events import event_name

log = logging.getLogger("trentd.access")
MAX_PENDING = 10_000  # lines waiting for the writer; beyond, dropped
_STOP = None


def fields(exchange, status: int, duration: float) -> dict:
    """The members of a request's line."""
    caller = exchange.caller
    error = exchange.error
    client = exchange.scope.get("client")
    return {
        "request_id": exchange.request_id,
        "service": exchange.service,
        "operation": event_name(exchange),
        "principal": getattr(caller, "shown_arn", None) or getattr(caller, "principal_arn", None),
        "source_ip": client[0] if client else None,
        "status": status,
        "error_code": exchange.error_code or (error.code if error is not None else None),
        "duration_ms": round(duration * 1000, 3),
    }


def text_line(members: dict) -> str:
    return " ".join(f"{k}={'-' if v is None else v}" for k, v in members.items())


class AccessLog:
    def __init__(self, max_pending: int = MAX_PENDING):
        self.max_pending = max_pending
        self.dropped = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_forever, name="trentd-access-log", daemon=True)
        self._thread.start()

    def record(self, exchange, status: int) -> None:
        """Queue the line of a finished request (on the event loop: a few µs, no I/O)."""
        if self._queue.qsize() >= self.max_pending:
            self.dropped += 1
            return
        self._queue.put((exchange, status, time.time()))

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (at shutdown), then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _write_forever(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._write(*item)
            except Exception:  # a line lost, never the writer
                log.exception("could not write an access log line")
            if self.dropped and self._queue.empty():
                dropped, self.dropped = self.dropped, 0
                log.warning("access log: %d line(s) dropped, the output could not keep up", dropped)

    @staticmethod
    def _write(exchange, status: int, now: float) -> None:
        members = fields(exchange, status, now - _seconds(exchange.received))
        # Shown whatever --log-level says: the access log was asked for by its own flag.
        if logs.json_mode():
            record = log.makeRecord(log.name, logging.INFO, __name__, 0, "request", (), None,
                                    extra={"fields": members})
        else:
            record = log.makeRecord(log.name, logging.INFO, __name__, 0, text_line(members), (), None)
        record.created, record.msecs = now, now % 1 * 1000
        log.handle(record)


def _seconds(received) -> float:
    return received if isinstance(received, (int, float)) else received.timestamp()
