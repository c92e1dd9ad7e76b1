"""Prometheus metrics of this process (``--metrics-port``; docs/operations.md "Metrics").

Off by default, and then free: ``ACTIVE`` stays None, prometheus_client is never imported, and
each instrumented place pays one module-attribute check (``m = metrics.ACTIVE; if m is not
None: …``). ``enable()`` turns them on in a process whose environment already names
``PROMETHEUS_MULTIPROC_DIR`` (set by ``trentd serve`` before anything imports prometheus_client,
and inherited by the workers): every process writes its own files there, and the listener
(http/exporter.py) sums them. Hence the multiprocess mode's rules: no Info or Enum metrics, and
every gauge names its ``multiprocess_mode``.

Labels are only ever names trentd chose (a model operation, an error code, an engine, a cache, a
job), never a key id, a principal or anything else a request carries.

This module sits at the bottom of the layers (beside errors and clock): the store, the audit
sink, the caches and the HTTP edge all count through it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported for real only when metrics are on (Metrics.__init__)
    from prometheus_client import Counter

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ACTIVE: "Metrics | None" = None

# Seconds: an Encrypt answers in well under a millisecond in-process; a store call may wait
# up to its deadline (5 s).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def enable() -> "Metrics":
    """Turn metrics on in this process (idempotent)."""
    global ACTIVE
    if ACTIVE is None:
        if not os.environ.get(MULTIPROC_ENV):
            raise RuntimeError(f"{MULTIPROC_ENV} must be set before metrics are enabled")
        ACTIVE = Metrics()
    return ACTIVE


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("trentd")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


class Metrics:
    """Every metric of trentd, in prometheus_client's multiprocess mode. Registered in no
    registry: in that mode the values live in files, and only the listener's collector reads them."""

    def __init__(self):
        from prometheus_client import Counter, Gauge, Histogram

        def counter(name, text, labels=()):
            return Counter(name, text, labels, registry=None)

        def histogram(name, text, labels=(), buckets=LATENCY_BUCKETS):
            return Histogram(name, text, labels, buckets=buckets, registry=None)

        self.requests = counter("trentd_requests_total", "API requests answered, by operation and outcome "
                                "(ok or the AWS error code)", ("service", "operation", "outcome"))
        self.request_seconds = histogram("trentd_request_duration_seconds", "Time from a request's arrival to "
                                         "its answer, audit included", ("service", "operation"))
        self.audit_batches = counter("trentd_audit_batches_total", "Audit batches written")
        self.audit_batch_events = histogram("trentd_audit_batch_events", "Audit events per batch written",
                                            buckets=BATCH_BUCKETS)
        self.audit_write_seconds = histogram("trentd_audit_write_seconds", "Time of one audit batch's durable write")
        self.audit_write_failures = counter("trentd_audit_write_failures_total",
                                            "Audit batches that could not be written")
        self.audit_central_lag = Gauge("trentd_audit_central_lag_seconds", "Age of the oldest audit event not yet "
                                       "copied to the central trail (0 when caught up)", registry=None,
                                       multiprocess_mode="livemax")
        self.store_seconds = histogram("trentd_store_call_duration_seconds",
                                       "Store calls (transactions), by engine and mode (read or write)",
                                       ("engine", "mode"))
        self.store_errors = counter("trentd_store_errors_total", "Store transactions that failed for the "
                                    "database (unreachable, deadline, engine error)", ("engine",))
        self.cache_hits = counter("trentd_cache_hits_total", "Hot-path cache lookups answered from memory", ("cache",))
        self.cache_misses = counter("trentd_cache_misses_total", "Hot-path cache lookups read from the store",
                                    ("cache",))
        self.job_runs = counter("trentd_background_job_runs_total", "Background job runs", ("job",))
        self.job_failures = counter("trentd_background_job_failures_total", "Background job runs that failed", ("job",))
        self.connections_open = Gauge("trentd_connections_open", "Client connections open now",
                                      registry=None, multiprocess_mode="livesum")
        self.connections_evicted = counter("trentd_connections_evicted_total", "Idle connections closed to make room "
                                           "at --limit-concurrency")
        build = Gauge("trentd_build_info", "Always 1; the version is the label", ("version",),
                      registry=None, multiprocess_mode="max")
        build.labels(version()).set(1)
        self._request_children: dict[tuple, tuple] = {}
        self._hits: dict[str, Counter] = {}
        self._misses: dict[str, Counter] = {}

    def request(self, service: str, operation: str, outcome: str, seconds: float) -> None:
        key = (service, operation, outcome)
        pair = self._request_children.get(key)
        if pair is None:  # labels() takes a lock and builds a tuple: once per combination
            pair = self._request_children[key] = (self.requests.labels(*key),
                                                   self.request_seconds.labels(service, operation))
        pair[0].inc()
        pair[1].observe(seconds)

    def cache_hit(self, cache: str) -> None:
        child = self._hits.get(cache)
        if child is None:
            child = self._hits[cache] = self.cache_hits.labels(cache)
        child.inc()

    def cache_miss(self, cache: str) -> None:
        child = self._misses.get(cache)
        if child is None:
            child = self._misses[cache] = self.cache_misses.labels(cache)
        child.inc()

    def audit_batch(self, events: int, seconds: float) -> None:
        self.audit_batches.inc()
        self.audit_batch_events.observe(events)
        self.audit_write_seconds.observe(seconds)

    def job(self, name: str, failed: bool) -> None:
        self.job_runs.labels(name).inc()
        if failed:
            self.job_failures.labels(name).inc()

    def store_transaction(self, engine: str, mode: str, transaction, unavailable: type):
        """``transaction`` (a store's context manager) timed, and counted as an error when it ends
        in ``unavailable`` (the store's StoreUnavailable)."""
        return _TimedTransaction(self, engine, mode, transaction, unavailable)


class _TimedTransaction:
    __slots__ = ("_metrics", "_engine", "_mode", "_inner", "_unavailable", "_started")

    def __init__(self, metrics: Metrics, engine: str, mode: str, inner, unavailable: type):
        self._metrics, self._engine, self._mode = metrics, engine, mode
        self._inner, self._unavailable = inner, unavailable

    def __enter__(self):
        self._started = time.perf_counter()
        try:
            return self._inner.__enter__()
        except self._unavailable:  # the connection or BEGIN failed
            self._finish(failed=True)
            raise

    def __exit__(self, kind, exc, traceback):
        failed = isinstance(exc, self._unavailable)
        try:
            return self._inner.__exit__(kind, exc, traceback)
        except self._unavailable:
            failed = True
            raise
        finally:
            self._finish(failed)

    def _finish(self, failed: bool) -> None:
        self._metrics.store_seconds.labels(self._engine, self._mode).observe(time.perf_counter() - self._started)
        if failed:
            self._metrics.store_errors.labels(self._engine).inc()
