"""Retention of the central trail (``--audit-retention-days N``): events older than N days are
purged from the store, chain by chain as a prefix, leaving per chain a checkpoint (the seq and hash
of the last line purged) from which ``trentd audit verify`` starts. The local files are never
touched (they rotate as ever; archive or remove them as any log).

The job runs in the central copier's thread (audit/central.py) on every node, at most every
``INTERVAL_SECONDS``; a claim in the store (store/trail.py ``claim_job``) makes it run once
across nodes. Age is measured on the service clock, like every other background job, so a test
clock moved forward ages events too.
"""

from __future__ import annotations

import logging

from ..store import trail

log = logging.getLogger("trentd.audit")

INTERVAL_SECONDS = 60
PURGE_BATCH = 5000  # events deleted per transaction
JOB = "retention"
_MICROS = 1_000_000


class Retention:
    def __init__(self, days: int, clock, interval: float = INTERVAL_SECONDS):
        self.days, self.clock, self.interval = days, clock, interval
        self._last: float | None = None

    def run_if_due(self, store) -> int:
        """Purge when due here and claimed across nodes; returns the events purged."""
        now = self.clock.now()
        if self._last is not None and abs(now - self._last) < self.interval:
            return 0
        self._last = now
        with store.write() as tx:
            if not trail.claim_job(tx, JOB, int(now * _MICROS), int(self.interval * _MICROS)):
                return 0
        return purge(store, int((now - self.days * 86_400) * _MICROS))


def purge(store, cutoff: int) -> int:
    """Purge every chain's events older than ``cutoff`` (microseconds since the epoch)."""
    with store.read() as tx:
        names = trail.chains_with_events_before(tx, cutoff)
    purged = 0
    for name in names:
        while True:
            with store.write() as tx:
                count = trail.purge_chain_before(tx, name, cutoff, PURGE_BATCH)
            purged += count
            if count < PURGE_BATCH:
                break
    if purged:
        log.info("central trail: %d event(s) older than the retention purged", purged)
    return purged
