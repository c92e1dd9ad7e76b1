"""Last-use tracking for GetKeyLastUsage, kept off the hot path.

A successful cryptographic operation records (operation, time, request id) for its key(s) in a
dict in this process's memory: no store round trip per request (DESIGN.md, Consistency). The
background job flushes the dict to the store at least once a second, and again at shutdown;
several nodes flushing keep the latest use (the upsert keeps the newer timestamp). Entries leave
memory only once their write has committed, so a database outage delays last-use times but does
not lose them, and GetKeyLastUsage on this node always sees its own latest use.
"""

from __future__ import annotations

import threading

UsageKey = tuple[str, str, str]  # account, region, key id
Usage = tuple[str, float, str]  # operation, timestamp (service clock), request id


class UsageTracker:
    def __init__(self):
        self._pending: dict[UsageKey, Usage] = {}
        self._lock = threading.Lock()

    def record(self, ident: UsageKey, usage: Usage) -> None:
        with self._lock:
            current = self._pending.get(ident)
            if current is None or current[1] <= usage[1]:
                self._pending[ident] = usage

    def peek(self, ident: UsageKey) -> Usage | None:
        """This node's use not flushed yet (read-your-writes for GetKeyLastUsage)."""
        with self._lock:
            return self._pending.get(ident)

    def clear(self) -> None:
        """Drop every use not written yet (the store was reset: their keys are gone)."""
        with self._lock:
            self._pending.clear()

    def flush(self, store) -> int:
        """Write every recorded use in one transaction; returns how many keys were written.

        Entries stay in memory until their write has committed (a GetKeyLastUsage in between
        must still see them), and only the ones not superseded meanwhile are dropped."""
        with self._lock:
            snapshot = dict(self._pending)
        if not snapshot:
            return 0
        with store.write() as tx:
            for (account, region, key_id), (operation, used_at, request_id) in snapshot.items():
                tx.record_last_usage(account, region, key_id, operation, used_at, request_id)
        with self._lock:
            for ident, usage in snapshot.items():
                if self._pending.get(ident) == usage:
                    del self._pending[ident]
        return len(snapshot)
