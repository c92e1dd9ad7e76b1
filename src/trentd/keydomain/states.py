"""Key states: which states each operation accepts, and AWS's wording when a state (or the key's
usage or spec) refuses an operation.

The states an operation accepts are a column of the operation table (kms/operations.py
``DECIDED``): each row names one of the rules below. A rule is AWS's per-operation line of the
key-state table (kms-api.md §3.4): for each state it refuses, the error and its message. The
service applies the row's rule right after authorization (kms/service.py ``check_key_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..crypto.specs import algorithms_for
from ..errors import AWSError
from ..store.records import KeyRecord

# Every state a KMS key can be in (botocore's KeyState enum).
STATES = ("Creating", "Enabled", "Disabled", "PendingDeletion", "PendingImport", "PendingReplicaDeletion",
          "Unavailable", "Updating")
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


@dataclass(frozen=True)
class Refusal:
    """AWS's answer to a key in a state the operation does not accept. ``message`` is formatted
    with the key's ``arn`` and ``origin``."""

    code: str
    message: str

    def error(self, key: KeyRecord) -> AWSError:
        return AWSError(self.code, self.message.format(arn=key.arn, origin=key.origin))


def _invalid(words: str) -> Refusal:
    return Refusal("KMSInvalidStateException", "{arn} is " + words + ".")


@dataclass(frozen=True)
class KeyStateRule:
    """The key states one operation accepts: every state but those ``refused``, each with its answer."""

    name: str
    refused: Mapping[str, Refusal]

    def accepts(self, state: str) -> bool:
        return state not in self.refused

    def check(self, key: KeyRecord) -> None:
        refusal = self.refused.get(key.key_state)
        if refusal is not None:
            raise refusal.error(key)


def _rule(name: str, refused: dict[str, Refusal]) -> KeyStateRule:
    assert set(refused) <= set(STATES), name
    return KeyStateRule(name, MappingProxyType(refused))


# Any state: reads, policies, grants' retirement, and operations that name no key.
ANY = _rule("ANY", {})
# Cryptographic operations (and GetPublicKey, CreateGrant, rotation): Enabled only.
USABLE = _rule("USABLE", {
    "Disabled": Refusal("DisabledException", "{arn} is disabled."),
    **{state: _invalid(words) for state, words in STATE_WORDS.items()},
})
# Changes to a key (aliases, tags, description, deletion, replication, import): any state but
# pending deletion.
NOT_PENDING_DELETION = _rule("NOT_PENDING_DELETION", {
    state: _invalid("pending deletion") for state in PENDING_DELETION})
# EnableKey and DisableKey: neither pending deletion nor waiting for its key material.
NOT_PENDING = _rule("NOT_PENDING", {**NOT_PENDING_DELETION.refused, "PendingImport": _invalid("pending import")})
# CancelKeyDeletion: pending deletion only.
PENDING_DELETION_ONLY = _rule("PENDING_DELETION_ONLY", {
    state: _invalid("not pending deletion") for state in STATES if state not in PENDING_DELETION})
# GetKeyRotationStatus: a key waiting for its imported material answers as an origin that cannot rotate.
NOT_PENDING_IMPORT = _rule("NOT_PENDING_IMPORT", {
    "PendingImport": Refusal("UnsupportedOperationException",
                             "{arn} origin is {origin} which is not valid for this operation.")})

RULES = {rule.name: rule for rule in (ANY, USABLE, NOT_PENDING_DELETION, NOT_PENDING, PENDING_DELETION_ONLY,
                                      NOT_PENDING_IMPORT)}


def require_usage(key: KeyRecord, usage: str, operation_name: str) -> None:
    if key.key_usage != usage:
        raise AWSError("InvalidKeyUsageException",
                       f"{key.arn} key usage is {key.key_usage} which is not valid for {operation_name}.")


def require_algorithm(key: KeyRecord, algorithm: str) -> None:
    if algorithm not in algorithms_for(key.key_spec, key.key_usage):
        raise AWSError("InvalidKeyUsageException",
                       f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}.")
