"""``GET /readyz``: whether this worker can serve requests now (``/healthz`` only says it is alive).

Three checks, each run on the app's thread pool (they block: a database round trip, a file
write, an HSM call) and each result kept for at most ``CACHE_SECONDS`` per worker, so probes
from several load balancers cost at most one run of each check a second; concurrent probes share
a run in progress instead of starting their own (a hung database must not pile up threads).

- ``store``: a read transaction and one meta read, within the store's own deadline;
- ``audit``: the audit sink can write (audit/sink.py ``unwritable``);
- ``root_key``: the root-key provider unwraps the store's canary (an HSM call with PKCS#11). The
  canary is read from the store on each run; while the store is down the last one read is used,
  so that a database outage is reported as the store's alone.

Every answer also shows ``centralTrail.lagSeconds``: how far the copy of this worker's audit
events into the store's central trail is behind (audit/central.py; 0 when caught up). With
``--audit-central-max-lag`` a lag beyond it is a failing ``central_trail`` too (requests are
refused meanwhile).

The answer names what is not ready with a fixed reason; the details (host names, paths, driver
messages) go to the log only, once per change of state: ``/readyz`` needs no credentials.
Readiness probes are not audited: they read nothing of anyone's keys.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import orjson

from ..runtime import CANARY_META, INITIALIZED_META
from ..store import rootkey
from ..store.errors import StoreUnavailable

log = logging.getLogger("trentd.http")

CACHE_SECONDS = 1.0
STORE_DOWN = "the store did not answer within its deadline"
AUDIT_DOWN = "the audit log cannot be written"
ROOT_KEY_DOWN = "the root-key provider cannot unwrap the store's canary"
CENTRAL_BEHIND = "the central audit trail is behind more than --audit-central-max-lag"


class NotReady(Exception):
    """A check failed: ``reason`` is what /readyz says, ``str(self)`` the detail for the log."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class Check:
    """One check, its last result (None: ready, else the reason) and a run in progress."""

    def __init__(self, name: str, probe):
        self.name, self.probe = name, probe
        self._reason: str | None = None
        self._at = float("-inf")  # when the run that gave the last result started
        self._running: asyncio.Future | None = None

    async def result(self, loop, executor) -> str | None:
        if time.monotonic() - self._at < CACHE_SECONDS:
            return self._reason
        if self._running is None:
            started = time.monotonic()
            self._running = loop.run_in_executor(executor, self._run)
            self._running.add_done_callback(lambda future: self._settle(future, started))
        return await asyncio.shield(self._running)

    def _run(self) -> str | None:
        try:
            self.probe()
        except NotReady as exc:
            return self._changed(exc.reason, str(exc))
        except Exception as exc:  # an unexpected failure is a failed check, never a 500
            log.exception("readiness: the %s check failed unexpectedly", self.name)
            return self._changed(f"the {self.name} check failed", f"{type(exc).__name__}: {exc}")
        return self._changed(None, "")

    def _changed(self, reason: str | None, detail: str) -> str | None:
        """Log a change of state once (the pool thread runs one check at a time per Check)."""
        if reason is not None and self._reason is None:
            log.warning("readiness: %s not ready: %s", self.name, detail)
        elif reason is None and self._reason is not None:
            log.warning("readiness: %s ready again", self.name)
        self._reason = reason
        return reason

    def _settle(self, future: asyncio.Future, started: float) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._at = started


class Readiness:
    def __init__(self, runtime, audit_sink, central=None):
        self.store, self.root_key, self.sink = runtime.store, runtime.root_key, audit_sink
        self.central = central  # audit/central.py CentralCopier: its lag is a detail of every answer
        self._canary: bytes | None = None
        self.checks = (Check("store", self._store), Check("audit", self._audit), Check("root_key", self._root_key))

    async def answer(self, loop, executor) -> tuple[int, bytes]:
        """(status, JSON body) of ``GET /readyz``."""
        reasons = await asyncio.gather(*(check.result(loop, executor) for check in self.checks))
        failing = {check.name: reason for check, reason in zip(self.checks, reasons, strict=True) if reason is not None}
        detail: dict = {}
        if self.central is not None:
            detail["centralTrail"] = self.central.status()
            if self.central.lagging():
                failing["central_trail"] = CENTRAL_BEHIND
        if failing:
            return 503, orjson.dumps({"status": "not ready", "failing": failing, **detail})
        return 200, orjson.dumps({"status": "ready", **detail})

    # --- the checks (on the thread pool) -----------------------------------------------------
    def _store(self) -> None:
        try:
            with self.store.read() as tx:
                tx.get_meta(INITIALIZED_META)
        except StoreUnavailable as exc:
            raise NotReady(STORE_DOWN, str(exc)) from None

    def _audit(self) -> None:
        why = self.sink.unwritable()
        if why is not None:
            raise NotReady(AUDIT_DOWN, why)

    def _root_key(self) -> None:
        try:
            canary = self.store.read_meta(CANARY_META)
            if canary:
                self._canary = base64.b64decode(canary)
        except StoreUnavailable:
            pass  # the store check says so; the canary read last time still tells about the HSM
        if self._canary is None:
            raise NotReady(ROOT_KEY_DOWN, "no canary could be read from the store yet")
        try:
            rootkey.check_canary(self.root_key, self._canary)
        except rootkey.RootKeyError as exc:
            raise NotReady(ROOT_KEY_DOWN, str(exc)) from None
