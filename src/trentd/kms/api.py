"""The operation table: importing each family's module registers its operations."""

from __future__ import annotations

from . import agreement, aliases, datakeys, encryption, grants, keys, mac, policies, signing, tags  # noqa: F401
from . import imports, keystores, lastusage, multiregion, rotation  # noqa: F401
from .service import OPERATIONS

__all__ = ["OPERATIONS", "run_background_jobs", "shutdown"]

# Successful cryptographic operations record the key's last use (GetKeyLastUsage).
lastusage.track(OPERATIONS)

# Work the service clock makes due, run every second on every node and whenever the test clock
# moves; each job claims its rows so that every deletion, rotation and expiry happens once.
BACKGROUND_JOBS = (
    lastusage.flush,            # last-use times kept in memory → the store
    keys.sweep_deletions,       # keys whose deletion window has passed
    multiregion.release_waiting_primaries,  # primaries whose last replica is gone: PendingDeletion
    rotation.rotate_due_keys,   # automatic rotation past NextRotationDate
    imports.expire_materials,   # imported material past its ValidTo
)


def run_background_jobs(svc) -> None:
    """Run every job; one failing (a store outage) does not keep the others from running."""
    failure = None
    for job in BACKGROUND_JOBS:
        try:
            job(svc)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other jobs had their turn
            failure = failure or exc
    if failure is not None:
        raise failure


def shutdown(svc) -> None:
    """Before the process exits: write the last-use times still in memory."""
    lastusage.flush(svc)
