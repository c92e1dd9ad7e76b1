"""Running the operation table's handlers, and the KMS background jobs.

The table itself, a row per operation, is kms/operations.py.
"""

from __future__ import annotations

from ..errors import AWSError
from ..inline import MustOffload
from . import imports, keys, lastusage, multiregion, rotation
from .cache import fresh_reads, served_from_cache, watch_hits
from .operations import OPERATIONS, OperationRow

__all__ = ["BACKGROUND_JOBS", "OPERATIONS", "OperationRow", "retry_fresh", "run", "shutdown"]


# Errors that stale cached state can cause: a key enabled, a deletion cancelled, an alias, grant
# or policy changed on another node within the last second (kms/cache.py).
STALE_ERRORS = frozenset({"NotFoundException", "DisabledException", "KMSInvalidStateException",
                          "AccessDeniedException"})


class RetryFresh(MustOffload):
    """On the event loop, the retry with fresh reads needs the store: the thread pool runs the
    retry alone (``retry_fresh``), not the failed first run again."""


def run(handler, cached: bool, svc, call, request):
    """One run of a handler, plus at most one retry with fresh reads: only for an operation that
    reads cached state (``cached``: read-only handlers that write nothing to the store, so nothing
    is ever committed twice), and only when this run was served a cached entry and failed with
    an error stale state can cause. Last use (lastusage.track) is recorded by a run that succeeds
    and the audit event by the pipeline after this returns: each once, retry or not."""
    if not cached:
        return handler(svc, call, request)
    watch_hits()
    try:
        return handler(svc, call, request)
    except AWSError as err:
        if err.code not in STALE_ERRORS or not served_from_cache():
            raise
    try:
        return retry_fresh(handler, svc, call, request)
    except MustOffload:  # on the event loop: the store is needed
        raise RetryFresh() from None


def retry_fresh(handler, svc, call, request):
    """The retry: every key, alias and grant read from the store."""
    call.resources.clear()  # the retry records the keys it touches again
    with fresh_reads():
        return handler(svc, call, request)


# The KMS part of the work the service clock makes due (runtime.py BACKGROUND_JOBS runs it with
# STS's, every second on every node and whenever the test clock moves); each job claims its rows
# so that every deletion, rotation and expiry happens once.
BACKGROUND_JOBS = (
    lastusage.flush,            # last-use times kept in memory → the store
    keys.sweep_deletions,       # keys whose deletion window has passed
    multiregion.release_waiting_primaries,  # primaries whose last replica is gone: PendingDeletion
    rotation.rotate_due_keys,   # automatic rotation past NextRotationDate
    imports.expire_materials,   # imported material past its ValidTo
)


def shutdown(svc) -> None:
    """Before the process exits: write the last-use times still in memory."""
    lastusage.flush(svc)
