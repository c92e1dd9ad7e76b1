"""The central trail's copier: this process's hash chain, copied into the store in the background.

The local file stays the durable, fail-closed record: a response leaves once its event is on disk
(audit/sink.py), and the hot path never waits on the database for audit. After each durable batch
the sink's writer thread hands the batch's lines (seq, prev, hash, the exact canonical bytes the
hash covers, and the event) to ``CentralCopier.written``; the copier's own thread inserts them,
batched, in seq order, idempotently on (chain, seq) (store/trail.py), normally within a fraction of
a second.

While the store is down the lines wait in memory (up to ``MAX_PENDING``; beyond that the oldest
are dropped from memory and read back from the chain's files, which hold them all), and the copy
catches up when the store returns, nothing missing or doubled: the copier inserts exactly the
seqs past the last one it committed, from memory when it still holds them, else from the files.

Chains no live process writes any more (a process that died before its tail was copied, an admin
command's chain) are copied from their files at start and every ``SCAN_SECONDS``, from the seq
past what the central trail already holds (or its retention checkpoint).

The lag (``lag()``: the age of the oldest line not yet central, 0 when caught up) is a Prometheus
gauge, a detail of ``GET /readyz``, logged when it passes ``LAG_WARNING`` seconds, and with
``--audit-central-max-lag`` makes requests fail closed while it exceeds the limit
(audit/__init__.py). Retention (``--audit-retention-days``) runs in this thread too
(audit/retention.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import orjson

from .. import metrics
from ..store import trail
from ..store.trail import TrailRow
from . import chain

log = logging.getLogger("trentd.audit")

BATCH_WINDOW = 0.05  # seconds the copier waits after waking, so a busy chain is copied in batches
MAX_BATCH = 1000  # lines per store transaction
MAX_PENDING = 50_000  # lines held in memory for the copy; older ones are read back from the files
RETRY_SECONDS = 0.5  # after a failed copy (the store is down)
SCAN_SECONDS = 10.0  # how often chains of processes that are gone are looked for
LAG_WARNING = 5.0  # seconds of lag from which it is logged (at most every LOG_EVERY seconds)
LOG_EVERY = 10.0
_CHAIN_MARK = b',"' + chain.CHAIN_KEY.encode() + b'":'
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --- one event as a row ---------------------------------------------------------------------------
def event_micros(text: str | None) -> int:
    """eventTime (ISO 8601, UTC) as microseconds since the epoch; 0 when absent or unreadable."""
    if not text:
        return 0
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def username(identity: dict) -> str | None:
    """CloudTrail's Username lookup attribute: an IAM user's name, an assumed role's session name,
    ``root`` for the account root; nothing for anyone else."""
    kind = identity.get("type")
    if kind == "IAMUser":
        return identity.get("userName")
    if kind == "AssumedRole":
        arn = identity.get("arn") or ""
        return arn.rsplit("/", 1)[-1] if "/" in arn else None
    if kind == "Root":
        return "root"
    return None


def visible_to(event: dict) -> tuple[str, ...]:
    """The accounts whose trail shows the event: the caller's; and for an allowed call, the
    owner of each key it used (AWS logs a cross-account call in both trails, a refused one only in
    the caller's)."""
    accounts: list[str] = []
    caller = event.get("recipientAccountId")
    if isinstance(caller, str) and caller:
        accounts.append(caller)
    if not event.get("errorCode"):
        for resource in event.get("resources") or ():
            owner = resource.get("accountId") if isinstance(resource, dict) else None
            if isinstance(owner, str) and owner and owner not in accounts:
                accounts.append(owner)
    return tuple(accounts)


def row_of(chain_name: str, seq: int, prev: str, digest: str, body: bytes, event: dict) -> TrailRow:
    identity = event.get("userIdentity") or {}
    read_only = event.get("readOnly")
    resources = tuple(dict.fromkeys(
        (r["type"], r["ARN"]) for r in event.get("resources") or ()
        if isinstance(r, dict) and isinstance(r.get("type"), str) and isinstance(r.get("ARN"), str)))
    return TrailRow(
        chain=chain_name, seq=seq, prev=prev, hash=digest, body=body,
        event_time=event_micros(event.get("eventTime")), event_id=str(event.get("eventID") or ""),
        region=str(event.get("awsRegion") or ""), event_name=str(event.get("eventName") or ""),
        event_source=str(event.get("eventSource") or ""),
        read_only=None if not isinstance(read_only, bool) else int(read_only),
        username=username(identity), access_key_id=identity.get("accessKeyId"),
        accounts=visible_to(event), resources=resources)


# --- reading a chain back from its files ----------------------------------------------------------
def split_line(line: bytes) -> tuple[bytes, dict] | None:
    """(the canonical bytes the hash covers, the chain member) of one written line, or None for a
    line that is not one the writer produced (torn, edited: the copy of its chain stops there)."""
    cut = line.rfind(_CHAIN_MARK)
    if line.startswith(b'{"' + chain.CHAIN_KEY.encode() + b'":'):
        body, tail = b"{}", line[len(chain.CHAIN_KEY) + 4:-1]
    elif cut > 0:
        body, tail = line[:cut] + b"}", line[cut + len(_CHAIN_MARK):-1]
    else:
        return None
    try:
        links = orjson.loads(tail)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(links, dict) or not isinstance(links.get("seq"), int):
        return None
    return body, links


def chain_parts(directory: Path, chain_name: str) -> list[Path]:
    """The files of one chain, in part order."""
    found = []
    for path in directory.glob(f"{chain_name}.*.jsonl"):
        name, part = chain.split_name(path)
        if part is not None and Path(name).name == chain_name:
            found.append((part, path))
    return [path for _, path in sorted(found)]


def read_chain(directory: Path, chain_name: str, after: int, until: int | None = None) -> Iterator[TrailRow]:
    """The chain's lines with ``after`` < seq (< ``until`` when given), from its files, in order.
    Each line's hash is checked; the copy stops at a line that does not verify (``audit verify``
    of the files names it)."""
    for path in chain_parts(directory, chain_name):
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("central trail: cannot read %s: %s", path, exc.strerror or exc)
            return
        for line in data.split(b"\n")[:-1]:  # the last piece: b"" or an incomplete line
            parts = split_line(line)
            if parts is None:
                log.warning("central trail: %s holds a line that is not an audit event; its chain is copied "
                            "up to it", path)
                return
            body, links = parts
            seq = links["seq"]
            if seq <= after:
                continue
            if until is not None and seq >= until:
                return
            prev, digest = str(links.get("prev")), str(links.get("hash"))
            if not _verifies(prev, seq, body, digest):
                log.warning("central trail: %s seq %d does not verify; its chain is copied up to it", path, seq)
                return
            yield row_of(chain_name, seq, prev, digest, body, orjson.loads(body))


def _verifies(prev: str, seq: int, body: bytes, digest: str) -> bool:
    try:
        return chain.link(prev, seq, body) == digest
    except ValueError:  # prev is not hex
        return False


def last_seq_in_files(directory: Path, chain_name: str) -> int:
    """The seq of the last complete line of the chain's last part (-1 when there is none)."""
    for path in reversed(chain_parts(directory, chain_name)):
        parts = _last_line(path)
        if parts is not None:
            return int(parts[1]["seq"])
    return -1


def _last_line(path: Path, block: int = 64 * 1024) -> tuple[bytes, dict] | None:
    """The last complete line of a file, split (split_line), reading only the file's end."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            data, pos = b"", end
            while pos > 0 and data.count(b"\n") < 2:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except OSError:
        return None
    lines = data.split(b"\n")[:-1]  # after the last newline: b"" or an incomplete line
    return split_line(lines[-1]) if lines and (pos == 0 or len(lines) > 1) else None


def live(chain_name: str) -> bool:
    """Whether a process of this host still writes ``chain_name`` (``<host>_<start>_<pid>_<rand>``,
    audit/sink.py): its pid is alive. Chains of other hosts are never live here: each node writes
    under its own data dir."""
    pieces = chain_name.split("_")
    if len(pieces) != 4 or not pieces[2].isdigit():
        return False
    import socket

    host = pieces[0]
    here = "".join(c if c.isalnum() or c in ".-" else "-" for c in socket.gethostname())[:64] or "host"
    if host != here:
        return False
    try:
        os.kill(int(pieces[2]), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def chain_names(directory: Path) -> set[str]:
    names = set()
    for path in directory.glob("*.jsonl"):
        name, part = chain.split_name(path)
        if part is not None:
            names.add(Path(name).name)
    return names


# --- the copier -----------------------------------------------------------------------------------
class CentralCopier:
    """Copies one process's chain (``chain_name``, written under ``directory``) into ``store``,
    and the chains of processes that are gone. ``retention``: a job run in this thread (audit/
    retention.py ``Retention``), or None."""

    def __init__(self, store, chain_name: str, directory: Path, *, max_lag: float | None = None,
                 retention=None, start: bool = True):
        self.store, self.chain_name, self.directory = store, chain_name, Path(directory)
        self.max_lag = max_lag
        self.retention = retention
        # (when written, (seq, prev, hash, body, event)) of lines not yet central, in seq order
        self._pending: deque[tuple[float, tuple]] = deque()
        self._copied = -1  # the last seq of this chain that is central
        self._dropped_since: float | None = None  # lines dropped from memory since then (monotonic)
        self._dropped_until = -1  # ... up to this seq: read back from the files
        self._cond = threading.Condition()
        self._closing = False
        self._failing: str | None = None
        self._last_log = 0.0
        self._next_scan = 0.0
        self._done_chains: dict[str, int] = {}  # gone chains copied through this seq
        self.stats = {"copied": 0, "failures": 0}
        self._thread = threading.Thread(target=self._run, name="trentd-audit-central", daemon=True)
        if start:
            self._thread.start()

    # --- the writer's hand-over (the sink's writer thread) -------------------------------------
    def written(self, lines: list[tuple]) -> None:
        """``lines``: (seq, prev, hash, body, event) of a batch now durable in the file. O(batch):
        the rows are made on the copier's thread."""
        now = time.monotonic()
        with self._cond:
            was_empty = not self._pending
            self._pending.extend((now, line) for line in lines)
            overflow = len(self._pending) - MAX_PENDING
            if overflow > 0:
                for _ in range(overflow):
                    when, line = self._pending.popleft()
                    if self._dropped_since is None:
                        self._dropped_since = when
                    self._dropped_until = max(self._dropped_until, line[0])
            if was_empty:
                self._cond.notify()

    # --- the lag -------------------------------------------------------------------------------
    def lag(self) -> float:
        """Seconds since the oldest line not yet central was written; 0 when caught up."""
        oldest = self._dropped_since
        if oldest is None:
            try:
                oldest = self._pending[0][0]
            except IndexError:
                return 0.0
        return max(0.0, time.monotonic() - oldest)

    def lagging(self) -> bool:
        """Whether ``--audit-central-max-lag`` is set and the lag is beyond it (the hot path asks)."""
        return self.max_lag is not None and self.lag() > self.max_lag

    def wait_copied(self, timeout: float = 1.0) -> bool:
        """Wait (at most ``timeout``) until every line written before this call is central, so a
        reader on this node sees its own latest events; whether they are."""
        with self._cond:
            target = self._pending[-1][1][0] if self._pending else None
            if target is None and self._dropped_since is None:
                return True
            target = max(target if target is not None else -1, self._dropped_until)
            return self._cond.wait_for(lambda: self._copied >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Copy what is pending (for at most ``timeout``: a store that is down leaves the rest to
        the next start, which copies this chain from its files), then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the copier's thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending and self._dropped_since is None and not self._closing:
                    self._cond.wait(self._sleep())
                closing = self._closing
            if not closing:
                time.sleep(BATCH_WINDOW)
            try:
                self._copy_own()
                self._failed(None)
            except Exception as exc:  # noqa: BLE001 - a store outage: retried, never fatal
                self._failed(exc)
                if closing:
                    return
                time.sleep(RETRY_SECONDS)
                continue
            if closing:
                if not self._pending:
                    return
                continue
            self._background()

    def _sleep(self) -> float:
        return 1.0 if self._failing is None else RETRY_SECONDS

    def _background(self) -> None:
        """Once the own chain is caught up: chains of processes that are gone, and retention."""
        now = time.monotonic()
        if now >= self._next_scan:
            self._next_scan = now + SCAN_SECONDS
            try:
                self.copy_gone_chains()
            except Exception as exc:  # noqa: BLE001
                self._next_scan = now + RETRY_SECONDS
                log.warning("central trail: could not copy the chains of stopped processes: %s", exc)
        if self.retention is not None:
            try:
                self.retention.run_if_due(self.store)
            except Exception as exc:  # noqa: BLE001
                log.warning("central trail: retention did not run: %s", exc)
        self._observe()

    def _copy_own(self) -> None:
        """Insert this chain's lines past the last one committed: the dropped ones from the files
        first, then what memory holds, in batches."""
        if self._dropped_since is not None:
            self._refill_dropped()
        while True:
            with self._cond:
                batch = [line for _, line in list(self._pending)[:MAX_BATCH]]
            batch = [line for line in batch if line[0] > self._copied]
            if not batch:
                with self._cond:
                    while self._pending and self._pending[0][1][0] <= self._copied:
                        self._pending.popleft()
                return
            rows = [row_of(self.chain_name, *line) for line in batch]
            with self.store.write() as tx:
                trail.insert_events(tx, rows)
            with self._cond:
                self._copied = batch[-1][0]
                while self._pending and self._pending[0][1][0] <= self._copied:
                    self._pending.popleft()
                self._cond.notify_all()
            self.stats["copied"] += len(rows)
            self._observe()

    def _refill_dropped(self) -> None:
        with self._cond:
            until = self._dropped_until
        batch: list[TrailRow] = []
        for row in read_chain(self.directory, self.chain_name, self._copied, until + 1):
            batch.append(row)
            if len(batch) >= MAX_BATCH:
                self._insert_own(batch)
                batch = []
        self._insert_own(batch)
        with self._cond:
            if self._dropped_until <= self._copied:
                self._dropped_since = None

    def _insert_own(self, rows: list[TrailRow]) -> None:
        if not rows:
            return
        with self.store.write() as tx:
            trail.insert_events(tx, rows)
        with self._cond:
            self._copied = rows[-1].seq
            self._cond.notify_all()
        self.stats["copied"] += len(rows)

    def copy_gone_chains(self) -> int:
        """Copy the chains in the audit directory that no live process writes, from the seq past
        what the central trail holds; returns the lines copied."""
        if not self.directory.is_dir():
            return 0
        copied = 0
        for name in sorted(chain_names(self.directory) - {self.chain_name}):
            last = last_seq_in_files(self.directory, name)
            if self._done_chains.get(name) == last or live(name):
                continue
            with self.store.read() as tx:
                through = trail.copied_through(tx, name)
            batch: list[TrailRow] = []
            for row in read_chain(self.directory, name, through):
                batch.append(row)
                if len(batch) >= MAX_BATCH:
                    copied += self._insert(batch)
                    batch = []
            copied += self._insert(batch)
            self._done_chains[name] = last
        if copied:
            log.info("central trail: %d event(s) of stopped processes copied", copied)
        return copied

    def _insert(self, rows: list[TrailRow]) -> int:
        if rows:
            with self.store.write() as tx:
                trail.insert_events(tx, rows)
        return len(rows)

    def _failed(self, exc: Exception | None) -> None:
        if exc is None:
            if self._failing is not None:
                log.warning("central trail: the store takes events again; caught up")
                self._failing = None
            return
        self.stats["failures"] += 1
        self._failing = f"{type(exc).__name__}: {exc}"
        self._observe()

    def _observe(self) -> None:
        """The lag to the metric, and to the log once it passes LAG_WARNING (every LOG_EVERY s)."""
        lag = self.lag()
        active = metrics.ACTIVE
        if active is not None:
            active.audit_central_lag.set(lag)
        now = time.monotonic()
        if lag >= LAG_WARNING and now - self._last_log >= LOG_EVERY:
            self._last_log = now
            log.warning("central trail: %.1f s behind (%d event(s) waiting)%s", lag, len(self._pending),
                        f"; the store does not take them: {self._failing}" if self._failing else "")

    def status(self) -> dict:
        """What ``GET /readyz`` shows of the copy."""
        out: dict = {"lagSeconds": round(self.lag(), 3)}
        if self.max_lag is not None:
            out["maxLagSeconds"] = self.max_lag
        return out
