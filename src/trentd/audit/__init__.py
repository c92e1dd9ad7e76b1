"""Audit: one CloudTrail-shaped event per API request, hash-chained, written by group commit,
fail-closed unless ``--audit-fail-open`` (docs/audit.md).

``AuditLog`` is what the request pipeline uses: ``await audit.record(exchange)`` builds the event and
returns once the batch holding it is durable, or raises ``AuditUnavailable``.
"""

from __future__ import annotations

import logging
import secrets
import sys
from pathlib import Path

from ..store.rootkey import aad_for, stored_secret
from .central import CentralCopier
from .events import Exchange, Hasher, build_event
from .retention import Retention
from .sink import DEFAULT_MAX_BYTES, AuditSink, AuditUnavailable

__all__ = ["AuditLog", "AuditSink", "AuditUnavailable", "Exchange", "Hasher", "build_event", "load_hmac_key"]

log = logging.getLogger("trentd.audit")
HMAC_META = "audit_hmac_key"
_HMAC_AAD = aad_for("audit-hmac-key")


def load_hmac_key(store, root_key) -> bytes:
    """The per-deployment key of the audit log's salted hashes: random, kept in the store wrapped
    under the root key (so every worker and node hashes alike), created on first use."""
    return stored_secret(store, root_key, HMAC_META, _HMAC_AAD)


def audit_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "audit"


class AuditLog:
    def __init__(self, directory: str | Path, *, hmac_key: bytes | None = None, fail_open: bool = False,
                 stdout: bool = False, max_bytes: int = DEFAULT_MAX_BYTES, fsync: bool = True, dev: bool = False):
        self.fail_open = fail_open
        self.dev = dev  # --dev accepts any access key id: events keep it as sent (redact.py)
        self.hasher = Hasher(hmac_key or secrets.token_bytes(32))
        self.sink = AuditSink(directory, max_bytes=max_bytes, fail_open=fail_open,
                              stdout=sys.stdout.fileno() if stdout else None, fsync=fsync)
        self.central: CentralCopier | None = None  # the copy into the store's central trail

    @classmethod
    def for_runtime(cls, runtime) -> "AuditLog":
        settings = runtime.settings
        directory = audit_dir(settings.data_dir)
        audit_log = cls(directory, hmac_key=getattr(runtime, "audit_hmac_key", None),
                        fail_open=getattr(settings, "audit_fail_open", False),
                        stdout=getattr(settings, "audit_stdout", False),
                        max_bytes=getattr(settings, "audit_max_bytes", DEFAULT_MAX_BYTES),
                        dev=getattr(settings, "dev", False))
        days = getattr(settings, "audit_retention_days", None)
        retention = Retention(days, runtime.clock) if days else None
        audit_log.central = CentralCopier(runtime.store, audit_log.sink.chain_name, directory,
                                          max_lag=getattr(settings, "audit_central_max_lag", None),
                                          retention=retention)
        audit_log.sink.on_written = audit_log.central.written
        return audit_log

    def event(self, exchange: Exchange) -> dict:
        """The exchange's event, redacted as this server's mode requires."""
        return build_event(exchange, self.hasher, self.dev)

    async def record(self, exchange: Exchange, loop=None) -> None:
        """Return once the exchange's event is durable; AuditUnavailable if it cannot be (unless
        fail-open, which logs and returns)."""
        try:
            event = self.event(exchange)
        except Exception:
            log.exception("could not build the audit event of request %s", exchange.request_id)
            if self.fail_open:
                return
            raise AuditUnavailable("audit event could not be built") from None
        central = self.central
        behind = central is not None and central.max_lag is not None and central.lagging()
        if behind:  # --audit-central-max-lag: recorded, and the caller is refused (fail-closed)
            extra = event.setdefault("additionalEventData", {})
            extra["centralTrail"] = "behind"
            extra["callerAnswer"] = "KMSInternalException"
        try:
            await self.sink.record(event, loop)
        except AuditUnavailable:
            if not self.fail_open:
                raise
        if behind:
            raise AuditUnavailable("the central audit trail is behind more than --audit-central-max-lag")

    def close(self) -> None:
        self.sink.close()  # the last batches reach the copier before it stops
        if self.central is not None:
            self.central.close()
