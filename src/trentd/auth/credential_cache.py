"""Credentials by access key id, held in memory so the hot path does no database round trip.

An entry is served for at most ``TTL_SECONDS`` and only while the epoch of the store's change
feed (store/changes.py) is the one it was read in. Deleting an access key, a principal or its
sessions changes cached state, so the epoch moves: at once in the process that committed the
change, and within the feed's trust window (< 1 s) in every other worker and node. While the
feed is not trusted (no poller yet, or the store unreachable) nothing is served from memory.
A store without a change feed (unit tests) falls back to the time limit alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TTL_SECONDS = 1.0
MAX_ENTRIES = 10_000
_NO_FEED = 0  # the epoch of a store without a change feed: entries expire by time only


class CredentialCache:
    def __init__(self, store):
        self._changes = getattr(store, "changes", None)
        self._entries: dict[str, tuple[float, int, object]] = {}
        self._lock = threading.Lock()

    def _epoch(self) -> int | None:
        return self._changes.epoch() if self._changes is not None else _NO_FEED

    def has(self, access_key_id: str) -> bool:
        """True when ``get`` would answer from memory (the caller may then skip a thread hop)."""
        return self._valid(self._entries.get(access_key_id), self._epoch())

    def get(self, access_key_id: str, load: Callable[[], object]):
        """The cached value, or ``load()`` (a miss, None, is cached too: unknown keys cost one read)."""
        epoch = self._epoch()  # before load(): a change racing with the read leaves the entry stale
        entry = self._entries.get(access_key_id)
        if entry is not None and self._valid(entry, epoch):
            return entry[2]
        value = load()
        if epoch is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[access_key_id] = (time.monotonic() + TTL_SECONDS, epoch, value)
        return value

    @staticmethod
    def _valid(entry, epoch: int | None) -> bool:
        return entry is not None and epoch is not None and entry[1] == epoch and entry[0] >= time.monotonic()
