"""Knowing when cached state may have changed, in this process and in every other one.

Caches (kms/cache.py, the service clock's offset) tag each entry with the *epoch* current when
its value was read from the store, and serve an entry only while the epoch is unchanged. The
epoch moves:

- at once, after any transaction of this process that changed cached state commits (the store
  calls ``committed()``), so a change is visible here before the call that made it returns;
- within ``POLL_SECONDS`` of another process's or node's change: every such write transaction
  bumps a row of ``cache_generations`` in the same transaction (store/tx.py), and a thread of
  each process polls the sum of that table.

Entries are trusted only while the last successful poll *started* less than ``TRUST_SECONDS``
ago: a poll that starts after a commit sees it, so no entry older than a change is served more
than TRUST_SECONDS after that change, even when polling stalls or the database is unreachable
(the caches then step aside and requests go to the store, and fail as the store fails). Without
a running poller (admin commands, tests of the service) nothing is ever cached.

Tagging entries with the epoch read *before* the store read makes a reader that raced with an
invalidation store its value under the old epoch, where it is never served.

A reset of the store (``--dev``, store/reset.py) also moves a row of its own; when a poll sees it
move, the functions given to ``on_reset()`` run, for state that is not tagged with an epoch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .interface import Store
from .reset import reset_generation

log = logging.getLogger("trentd.store")

POLL_SECONDS = 0.25
TRUST_SECONDS = 0.75  # < 1 s: DESIGN.md's bound for a change to reach every node


class ChangeFeed:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._epoch = 0
        self._seen: int | None = None  # the store's generation at the last poll
        self._resets: int | None = None  # the store's reset generation at the last poll
        self._on_reset: list[Callable[[], None]] = []
        self._trusted_until = 0.0  # time.monotonic() deadline; 0: never trusted yet
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def epoch(self) -> int | None:
        """The current epoch, or None while caches must not be used."""
        if time.monotonic() < self._trusted_until:
            return self._epoch
        return None

    def committed(self) -> None:
        """A transaction of this process that changed cached state has committed."""
        with self._lock:
            self._epoch += 1

    def on_reset(self, forget: Callable[[], None]) -> None:
        """Call ``forget()`` from the polling thread whenever the store has been reset."""
        self._on_reset.append(forget)

    def poll(self) -> None:
        """Read the store's generation once; raises what the store raises."""
        started = time.monotonic()
        with self._store.read() as tx:
            generation = tx.cache_generation()
            resets = reset_generation(tx)
        with self._lock:
            if generation != self._seen:
                self._seen = generation
                self._epoch += 1
            was_reset = self._resets is not None and resets != self._resets
            self._resets = resets
            self._trusted_until = started + TRUST_SECONDS
        if was_reset:
            for forget in self._on_reset:
                forget()

    def start(self) -> None:
        """Poll in a daemon thread until ``stop()`` (idempotent; one per process)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="trentd-changes", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._trusted_until = 0.0
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - an outage: caches step aside until polls succeed again
                log.debug("cache generation poll failed: %s", exc)
            self._stopping.wait(POLL_SECONDS)
