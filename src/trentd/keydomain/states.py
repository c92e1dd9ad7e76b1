"""Key states, and AWS's wording when a state (or the key's usage or spec) refuses an operation."""

from __future__ import annotations

from ..crypto.specs import algorithms_for
from ..errors import AWSError
from ..store.records import KeyRecord

PENDING_DELETION = ("PendingDeletion", "PendingReplicaDeletion")

# How KMSInvalidStateException names a state that refuses a cryptographic operation.
STATE_WORDS = {
    "PendingDeletion": "pending deletion",
    "PendingReplicaDeletion": "pending deletion",
    "PendingImport": "pending import",
    "Unavailable": "unavailable",
    "Creating": "creating",
    "Updating": "updating",
}


def require_usable(key: KeyRecord) -> None:
    """Cryptographic operations need an Enabled key (kms-api.md §3.4)."""
    state = key.key_state
    if state == "Enabled":
        return
    if state == "Disabled":
        raise AWSError("DisabledException", f"{key.arn} is disabled.")
    raise AWSError("KMSInvalidStateException", f"{key.arn} is {STATE_WORDS.get(state, 'unavailable')}.")


def require_usage(key: KeyRecord, usage: str, operation_name: str) -> None:
    if key.key_usage != usage:
        raise AWSError("InvalidKeyUsageException",
                       f"{key.arn} key usage is {key.key_usage} which is not valid for {operation_name}.")


def require_algorithm(key: KeyRecord, algorithm: str) -> None:
    if algorithm not in algorithms_for(key.key_spec, key.key_usage):
        raise AWSError("InvalidKeyUsageException",
                       f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}.")


def require_not_pending_deletion(key: KeyRecord) -> None:
    if key.key_state in PENDING_DELETION:
        raise AWSError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
