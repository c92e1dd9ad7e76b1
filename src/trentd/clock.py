"""The service clock: wall time plus an offset that tests move (``--test-clock``).

Key lifecycle (deletion windows, rotation, expiry) reads time only through here. The offset
lives in the store so every worker and node sees the same time; SigV4 skew checks and TLS use
the real wall clock and never this one.
"""

from __future__ import annotations

import time

OFFSET_META = "clock_offset_seconds"


class ServiceClock:
    def __init__(self, store, movable: bool):
        self.store = store
        self.movable = movable
        # (epoch, offset): the offset is cached like key records, and dropped on the same signal
        # (store/changes.py), so the hot path reads no store while the clock stays where it is.
        self._cached: tuple[int, float] | None = None

    def offset(self) -> float:
        if not self.movable:
            return 0.0
        changes = getattr(self.store, "changes", None)
        epoch = changes.epoch() if changes is not None else None
        cached = self._cached
        if epoch is not None and cached is not None and cached[0] == epoch:
            return cached[1]
        value = self.store.read_meta(OFFSET_META)
        offset = float(value) if value else 0.0
        if epoch is not None:
            self._cached = (epoch, offset)
        return offset

    def now(self) -> float:
        return time.time() + self.offset()

    def set_offset(self, seconds: float) -> float:
        with self.store.write() as tx:
            tx.set_meta(OFFSET_META, repr(float(seconds)))
        return float(seconds)
