"""The operation table: importing each family's module registers its operations."""

from __future__ import annotations

from . import agreement, aliases, datakeys, encryption, grants, keys, mac, policies, signing, tags  # noqa: F401
from . import imports, keystores, lastusage, multiregion, rotation  # noqa: F401
from ..errors import AWSError
from .cache import fresh_reads
from .service import OPERATIONS

__all__ = ["BACKGROUND_JOBS", "OPERATIONS", "shutdown"]

# Successful cryptographic operations record the key's last use (GetKeyLastUsage).
lastusage.track(OPERATIONS)
# Naming a predefined alias/aws/<service> creates its AWS managed key on first use (kms/managed.py).
keys.create_managed_keys_on_first_use(OPERATIONS)

# Operations the HTTP edge first tries on the event loop: on a cached key they need no store and
# little CPU (symmetric crypto, HMAC, the cheap signature specs of crypto/specs.py INLINE_SIGN).
# Anything blocking or dear they meet sends them to the thread pool (trentd/inline.py).
INLINE_OPERATIONS = frozenset({
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
    "VerifyMac", "Sign", "Verify",  # Sign and Verify only for keys whose spec is cheap enough (signing.py)
})

# Operations that read keys through the cache (kms/cache.py); when one fails, it is run once more
# with fresh reads before the error is answered (checked_call).
CACHED_OPERATIONS = INLINE_OPERATIONS | {"Sign", "Verify", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"}


def checked_call(handler, svc, caller, request):
    """Run a cached operation; an error it meets may come from cached state that another node
    has just changed (an EnableKey, a new grant), so the call is answered only after a second
    attempt that reads the store. Handlers of these operations have no effects: safe to repeat."""
    try:
        return handler(svc, caller, request)
    except AWSError:
        caller.resources.clear()
        with fresh_reads():
            return handler(svc, caller, request)


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
