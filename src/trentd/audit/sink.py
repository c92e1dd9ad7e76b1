"""The audit file sink: one hash-chained JSON-lines file per process, written by group commit.

Request handlers ``submit`` an event and wait; one writer thread takes every pending event as a
batch, chains and writes them durably (the file is opened ``O_DSYNC``: the write returns once the
data is on disk, one system call where write + ``fdatasync`` took two, and one less hand-over of
the GIL with the event loop), and only then releases the batch's waiters.
A response therefore leaves only after its event is durable, while throughput is bounded by
events per fsync rather than by fsyncs per second. Events from the event loop reach the writer
already batched (``_LoopBatcher``: what arrived while the previous batch was being written goes
as one), so the writer wakes once per batch instead of contending with the loop per event.

Files: ``DIR/<host>_<start>_<pid>_<rand>.<part>.jsonl`` (mode 0600). A part is closed when the next
batch would take it past ``max_bytes``; the chain continues in the next part. Before each batch
the writer checks that its file is still the one at its path (moved, deleted or replaced files
would otherwise swallow events silently) and otherwise starts a new part.

Failure: if a batch cannot be written, its waiters get ``AuditUnavailable`` (fail-closed: the
request is answered 500) — or, with ``fail_open``, are released anyway and the failure is logged
loudly. Either way the events are kept (bounded) and written as soon as the directory is writable
again, marked ``additionalEventData.auditDelivery = "late"``; the writer retries every second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path

from .. import metrics
from . import chain

log = logging.getLogger("trentd.audit")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
RETRY_SECONDS = 1.0
MAX_BACKLOG = 100_000


class AuditUnavailable(Exception):
    """The event could not be made durable."""


class AuditSink:
    def __init__(self, directory: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES, fail_open: bool = False,
                 stdout: int | None = None, fsync: bool = True, start: bool = True):
        self.directory = Path(directory)
        self.max_bytes = max(1, int(max_bytes))
        self.fail_open = fail_open
        self.stdout = stdout  # a file descriptor (1) or None
        self.fsync = fsync
        host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "host"
        started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.chain_name = f"{host}_{started}_{os.getpid()}_{secrets.token_hex(2)}"
        self._part = -1
        self._fd: int | None = None
        self._path: Path | None = None
        self._ident: tuple[int, int] | None = None
        self._size = 0
        self._seq = 0
        self._prev = chain.ZERO
        self._pending: list[tuple[dict, object]] = []
        self._backlog: deque[dict] = deque()
        self._dropped = 0
        self._failing = False
        self._last_error = ""  # why the last batch could not be written (for the log of /readyz)
        self._last_alarm = 0.0
        self._closing = False
        self._cond = threading.Condition()
        self._batchers: dict = {}  # event loop -> _LoopBatcher
        self._thread = threading.Thread(target=self._run, name="trentd-audit", daemon=True)
        self.stats = {"events": 0, "batches": 0, "failures": 0}
        # Called by the writer with (seq, prev, hash, body, event) of each batch once it is durable:
        # the central trail's copier (audit/central.py). Set before the first event.
        self.on_written: Callable[[list[tuple]], None] | None = None
        if start:
            self._thread.start()

    # --- producers --------------------------------------------------------------------------
    def submit(self, event: dict) -> Future:
        """From any thread: a future that resolves once the event is durable (result True), or
        False (fail-open, not written yet), or raises AuditUnavailable (fail-closed)."""
        future: Future = Future()
        self._enqueue(event, future)
        return future

    async def record(self, event: dict, loop=None) -> bool:
        """From the event loop (``loop``, when the caller has it): wait for the batch holding
        ``event`` to be flushed."""
        loop = loop or asyncio.get_running_loop()
        waiter = loop.create_future()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _LoopBatcher(self, loop)
        batcher.add(event, waiter)
        return await waiter

    def _enqueue(self, event: dict, waiter) -> None:
        self._enqueue_many([(event, waiter)])

    def _enqueue_many(self, items: list) -> None:
        with self._cond:
            if self._closing:
                raise AuditUnavailable("the audit log is closed")
            self._pending.extend(items)
            if len(self._pending) == len(items):
                self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending, then stop the writer and close the file."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._close_file()

    @property
    def current_path(self) -> Path | None:
        return self._path

    def unwritable(self) -> str | None:
        """None when the sink can write, else why not (``GET /readyz``). Not writable: the last
        batch failed and no later one was written yet, or a file cannot be made and written in the
        directory now (what the next batch would need; the probe is no ``*.jsonl`` file, so no
        event and no chain sees it). Runs off the event loop: it touches the disk."""
        if self._failing:
            return self._last_error or "the last batch could not be written"
        probe = self.directory / f".{self.chain_name}.ready"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # as the next batch would
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                _write_fd(fd, b"\n")  # one byte needs a block: a full disk fails here
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    # --- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    if self._backlog:
                        if not self._cond.wait(RETRY_SECONDS):
                            break  # retry the backlog
                    else:
                        self._cond.wait()
                batch, self._pending = self._pending, []
                closing = self._closing
            if batch or self._backlog:
                try:
                    self._write(batch)
                except Exception:  # never let the writer die: waiters would hang
                    log.exception("audit writer failed unexpectedly")
                    self._settle(batch, AuditUnavailable("audit writer error"))
            if closing:
                with self._cond:
                    if not self._pending:
                        return

    def _write(self, batch: list) -> None:
        events = [event for event, _ in batch]
        late = list(self._backlog)
        try:
            self._ensure_file()
            seq, prev = self._seq, self._prev
            lines = []
            links = []
            for event in late + events:
                body = chain.canonical(event)
                digest = chain.link(prev, seq, body)
                lines.append(chain.render_line(body, seq, prev, digest))
                links.append((seq, prev, digest, body, event))
                prev = digest
                seq += 1
            data = b"".join(lines)
            if self._size and self._size + len(data) > self.max_bytes:
                self._close_file()
                self._ensure_file()
            observed = metrics.ACTIVE
            started = time.perf_counter() if observed is not None else 0.0
            self._write_all(data)
            if observed is not None:
                observed.audit_batch(len(lines), time.perf_counter() - started)
            if self.stdout is not None:
                # One write per line: workers share stdout, and a line up to PIPE_BUF is never
                # interleaved with another process's.
                for line in lines:
                    _write_fd(self.stdout, line)
        except OSError as exc:
            self._failed(exc, batch)
            return
        self._seq, self._prev = seq, prev
        self._size += len(data)
        self._backlog.clear()
        if self.on_written is not None:
            self.on_written(links)
        self.stats["events"] += len(lines)
        self.stats["batches"] += 1
        if self._failing:
            self._failing = False
            log.warning("audit log writable again: %d delayed event(s) written to %s%s", len(late), self._path,
                        f"; {self._dropped} event(s) were lost while it was not" if self._dropped else "")
            self._dropped = 0
        self._settle(batch, True)

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None  # _ensure_file opened it
        _write_fd(self._fd, data)  # durable on return when self.fsync (O_DSYNC, _ensure_file)

    def _failed(self, exc: Exception, batch: list) -> None:
        self.stats["failures"] += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        if metrics.ACTIVE is not None:
            metrics.ACTIVE.audit_write_failures.inc()
        # Undo a partial write so the file ends at the last durable line, then start a new part
        # next time (the failure may have been the file itself).
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
        self._close_file()
        answer = "as recorded" if self.fail_open else "KMSInternalException"
        for event, _ in batch:
            extra = event.setdefault("additionalEventData", {})
            extra["auditDelivery"] = "late"
            extra["callerAnswer"] = answer
            self._backlog.append(event)
        while len(self._backlog) > MAX_BACKLOG:
            self._backlog.popleft()
            self._dropped += 1
        now = time.monotonic()
        if now - self._last_alarm >= 1.0:  # loud, but at most once a second
            self._last_alarm = now
            log.error("AUDIT LOG NOT WRITABLE (%s: %s); %s; %d event(s) waiting", type(exc).__name__, exc,
                      "continuing because of --audit-fail-open" if self.fail_open else
                      "requests are refused until it is writable again", len(self._backlog))
        self._failing = True
        self._settle(batch, False if self.fail_open else AuditUnavailable("the audit log cannot be written"))

    def _ensure_file(self) -> None:
        if self._fd is not None:
            assert self._path is not None  # set with self._fd
            try:
                st = os.stat(self._path)
                if (st.st_dev, st.st_ino) == self._ident:
                    return
            except OSError:
                pass
            log.warning("audit file %s was moved, deleted or replaced; continuing the chain in a new part", self._path)
            self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._part += 1
        path = self.directory / f"{self.chain_name}.{self._part:04d}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags | (os.O_DSYNC if self.fsync else 0), 0o600)
        st = os.fstat(fd)
        self._fd, self._path, self._ident, self._size = fd, path, (st.st_dev, st.st_ino), 0
        if self.fsync:  # make the new name durable too
            try:
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            except OSError:
                pass

    def _close_file(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
            self._ident = None

    @staticmethod
    def _settle(batch: list, outcome) -> None:
        by_loop: dict = {}
        for _, waiter in batch:
            if waiter is None:  # one of a loop batch's events: its _LoopBatch comes last
                continue
            if isinstance(waiter, _LoopBatch):
                try:
                    waiter.loop.call_soon_threadsafe(waiter.finish, outcome)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    pass
            elif isinstance(waiter, Future):
                if not waiter.done():
                    if isinstance(outcome, BaseException):
                        waiter.set_exception(outcome)
                    else:
                        waiter.set_result(outcome)
            else:
                loop, future = waiter
                by_loop.setdefault(loop, []).append(future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures, outcome)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _resolve(futures: list, outcome) -> None:
    for future in futures:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(AuditUnavailable(*outcome.args))
        else:
            future.set_result(outcome)


class _LoopBatch:
    """The waiters of one batch handed over by a _LoopBatcher: settled together, on their loop."""

    def __init__(self, batcher: "_LoopBatcher", futures: list):
        self.batcher, self.futures, self.loop = batcher, futures, batcher.loop

    def finish(self, outcome) -> None:
        _resolve(self.futures, outcome)
        self.batcher.flushed()


class _LoopBatcher:
    """Group commit driven from the event loop. Events are collected on the loop while the
    previous batch is being written (and until the current loop iteration ends), then handed to
    the writer thread as one batch with one waiter, settled by one callback. Handing over each
    event as it comes woke the writer for a batch of one or two and made it contend with the
    loop for the GIL on every request: measured, that cost more CPU per request than building
    and chaining the event itself."""

    def __init__(self, sink: AuditSink, loop):
        self.sink, self.loop = sink, loop
        self.items: list = []
        self.futures: list = []
        self.in_flight = False

    def add(self, event: dict, future) -> None:
        self.items.append((event, None))
        self.futures.append(future)
        if not self.in_flight:
            self.in_flight = True
            self.loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        items, futures = self.items, self.futures
        self.items, self.futures = [], []
        if not items:
            self.in_flight = False
            return
        items[-1] = (items[-1][0], _LoopBatch(self, futures))
        try:
            self.sink._enqueue_many(items)
        except AuditUnavailable as exc:  # closed
            _resolve(futures, exc)
            self.in_flight = False

    def flushed(self) -> None:
        """The batch in flight is settled: hand over what came in meanwhile, if anything."""
        if self.items:
            self._hand_over()
        else:
            self.in_flight = False
