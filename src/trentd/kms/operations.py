"""The operation table: one row per KMS operation, every fact about it in one place.

A row joins three sources, once, when this module is imported:
- the handler, registered by its family module with ``@operation("Name")`` (kms/service.py);
  its module is the row's ``family``;
- what AWS states in botocore's model of the operation: whether it may act on another
  account's key (``cross_account``, from the reference's "Cross-account use" line and the
  members that name a key) and whether it takes ``DryRun``;
- what trentd decides, written below in ``DECIDED``: the key states it accepts and AWS's answer
  to the others (``key_states``, a rule of keydomain/states.py, from AWS's key-state table;
  Service.resolve applies it right after authorization, or the handler calls
  Service.check_key_state where AWS checks later), run on the event loop first (``inline``),
  read keys, aliases and grants through the cache (``cached``), record the key's last use
  (``tracked``, GetKeyLastUsage), the defaults of request condition keys a policy sees when the
  request omits the parameter, and what its CloudTrail event shows (``audit``: read-only or
  not, the answer's members shown, the request members always shown with their default).

Adding an operation: one handler with ``@operation`` in its family module, and one line in
``DECIDED`` naming the key states it accepts (``_(ANY)`` when trentd decides nothing else). The
request pipeline (trentd/pipeline) and the tests read only this table; nothing about an
operation is worked out per request.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..audit.events import AuditFacts
from ..keydomain.states import (ANY, NOT_PENDING, NOT_PENDING_DELETION, NOT_PENDING_IMPORT, PENDING_DELETION_ONLY,
                                USABLE, KeyStateRule)
from ..protocol.model import load_service
from . import agreement, aliases, datakeys, encryption, grants, keys, mac, policies, signing, tags  # noqa: F401
from . import imports, keystores, lastusage, multiregion, rotation  # noqa: F401
from . import context_keys, service


class CrossAccount(str, enum.Enum):
    """May an operation act on a KMS key of another account? AWS's reference answers "Cross-account
    use: Yes|No" for each operation; operations that name no key at all are their own case."""

    YES = "yes"
    NO = "no"
    NO_KEY = "no key"


# CloudTrail's read-only events: these reads, and every cryptographic operation.
READ_PREFIXES = ("Describe", "Get", "List")
# Members through which a KMS request names a key.
KEY_MEMBERS = frozenset({"KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId"})


def cross_account_use(model_operation) -> CrossAccount:
    """The fact as botocore's model of the operation states it."""
    if model_operation.cross_account_documented:
        return CrossAccount.YES
    return CrossAccount.NO if model_operation.input_members & KEY_MEMBERS else CrossAccount.NO_KEY


@dataclass(frozen=True)
class Decided:
    """The facts trentd decides about an operation."""

    key_states: KeyStateRule  # the key states it accepts, AWS's answer to the others (keydomain/states.py)
    inline: bool = False  # first tried on the event loop (trentd/inline.py); implies cached
    cached: bool = False  # reads keys through the cache: one retry with fresh reads (kms/api.py run)
    tracked: bool = False  # a success records the key's last use (kms/lastusage.py)
    # condition keys the request may omit -> their default, by IAM action (kms:<operation>)
    condition_defaults: Mapping[str, object] = field(default_factory=dict)
    crypto: bool = False  # cryptography: a read-only event whose answer (data, keys) is never shown
    shown: tuple[str, ...] = ()  # members of the answer the audit event shows (responseElements)
    audit_defaults: Mapping[str, object] = field(default_factory=dict)  # request members always shown


_ = Decided


def inline(states: KeyStateRule) -> Decided:
    """Cheap cryptography on a cached key."""
    return Decided(states, inline=True, cached=True, tracked=True, crypto=True)


def cached(states: KeyStateRule) -> Decided:
    """Cryptography on a cached key, always on the pool."""
    return Decided(states, cached=True, tracked=True, crypto=True)


def tracked(states: KeyStateRule) -> Decided:
    """Cryptography that reads the store itself."""
    return Decided(states, tracked=True, crypto=True)


RAW_MESSAGE = {"kms:messagetype": "RAW"}
SYMMETRIC = {"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

# fmt: off
DECIDED: dict[str, Decided] = {
    # cryptographic operations
    "Encrypt":   _(USABLE, inline=True, cached=True, tracked=True, crypto=True, audit_defaults=SYMMETRIC),
    "Decrypt":   _(USABLE, inline=True, cached=True, tracked=True, crypto=True, audit_defaults=SYMMETRIC),
    "ReEncrypt": _(USABLE, inline=True, cached=True, tracked=True, crypto=True, audit_defaults={
        "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
    "GenerateDataKey":                     inline(USABLE),
    "GenerateDataKeyWithoutPlaintext":     inline(USABLE),
    "GenerateDataKeyPair":                 cached(USABLE),
    "GenerateDataKeyPairWithoutPlaintext": cached(USABLE),
    "GenerateMac":                         inline(USABLE),
    "VerifyMac":                           inline(USABLE),
    "Sign":   _(USABLE, inline=True, cached=True, tracked=True, crypto=True, condition_defaults=RAW_MESSAGE),
    "Verify": _(USABLE, inline=True, cached=True, tracked=True, crypto=True, condition_defaults=RAW_MESSAGE),
    "DeriveSharedSecret":                  tracked(USABLE),
    "Encapsulate":                         tracked(USABLE),
    "Decapsulate":                         tracked(USABLE),
    "GenerateRandom":                      _(ANY, crypto=True),
    # keys
    "CreateKey": _(ANY, shown=("KeyMetadata",), condition_defaults={
        "kms:bypasspolicylockoutsafetycheck": False, "kms:keyspec": "SYMMETRIC_DEFAULT",
        "kms:keyusage": "ENCRYPT_DECRYPT", "kms:keyorigin": "AWS_KMS", "kms:multiregion": False}),
    "DescribeKey":                         _(ANY),
    "ListKeys":                            _(ANY),
    "EnableKey":                           _(NOT_PENDING),
    "DisableKey":                          _(NOT_PENDING),
    "UpdateKeyDescription":                _(NOT_PENDING_DELETION),
    "ScheduleKeyDeletion": _(NOT_PENDING_DELETION, shown=("KeyId", "DeletionDate", "KeyState", "PendingWindowInDays"),
                             condition_defaults={"kms:schedulekeydeletionpendingwindowindays": 30}),
    "CancelKeyDeletion":                   _(PENDING_DELETION_ONLY, shown=("KeyId",)),
    "GetPublicKey":                        _(USABLE),
    "GetKeyLastUsage":                     _(ANY),
    # policies and tags
    "PutKeyPolicy": _(ANY, condition_defaults={"kms:bypasspolicylockoutsafetycheck": False}),
    "GetKeyPolicy":                        _(ANY),
    "ListKeyPolicies":                     _(ANY),
    "TagResource":                         _(NOT_PENDING_DELETION),
    "UntagResource":                       _(NOT_PENDING_DELETION),
    "ListResourceTags":                    _(ANY),
    # aliases (the states of the target key)
    "CreateAlias":                         _(NOT_PENDING_DELETION),
    "UpdateAlias":                         _(NOT_PENDING_DELETION),
    "DeleteAlias":                         _(ANY),
    "ListAliases":                         _(ANY),
    # grants
    "CreateGrant":                         _(USABLE, shown=("GrantId", "GrantToken")),
    "ListGrants":                          _(ANY),
    "ListRetirableGrants":                 _(ANY),
    "RetireGrant":                         _(ANY),
    "RevokeGrant":                         _(ANY),
    # rotation
    "EnableKeyRotation":                   _(USABLE),
    "DisableKeyRotation":                  _(USABLE),
    "GetKeyRotationStatus":                _(NOT_PENDING_IMPORT),
    "RotateKeyOnDemand":                   _(USABLE, shown=("KeyId",)),
    "ListKeyRotations":                    _(ANY),
    # imported key material
    "GetParametersForImport":              _(NOT_PENDING_DELETION),
    "ImportKeyMaterial":                   _(NOT_PENDING_DELETION, shown=("KeyId", "KeyMaterialId")),
    "DeleteImportedKeyMaterial":           _(ANY, shown=("KeyId", "KeyMaterialId")),
    # multi-Region keys (UpdatePrimaryRegion: the primary and the replica)
    "ReplicateKey":                        _(NOT_PENDING_DELETION, shown=("ReplicaKeyMetadata",)),
    "UpdatePrimaryRegion":                 _(NOT_PENDING_DELETION),
    # custom key stores
    "CreateCustomKeyStore":                _(ANY, shown=("CustomKeyStoreId",)),
    "DescribeCustomKeyStores":             _(ANY),
    "UpdateCustomKeyStore":                _(ANY),
    "DeleteCustomKeyStore":                _(ANY),
    "ConnectCustomKeyStore":               _(ANY),
    "DisconnectCustomKeyStore":            _(ANY),
}
# fmt: on


@dataclass(frozen=True)
class OperationRow:
    """Everything trentd knows of one KMS operation."""

    name: str
    handler: Callable
    family: str  # the handler's module under kms/
    cross_account: CrossAccount  # the model
    dry_run: bool  # the model: the request has a DryRun member
    key_states: KeyStateRule  # the key states it accepts (applied by Service.resolve or check_key_state)
    inline: bool
    cached: bool
    tracked: bool
    condition_defaults: Mapping[str, object]
    audit: AuditFacts  # what the audit event shows (audit/events.py), handed over on the Exchange

    @property
    def action(self) -> str:
        return f"kms:{self.name}"


def _row(name: str, handler: Callable) -> OperationRow:
    model = load_service("kms").operation(name)
    if model is None:
        raise RuntimeError(f"{name} is not an operation of the KMS model")
    decided = DECIDED[name]
    return OperationRow(
        name=name, handler=handler, family=handler.__module__.rsplit(".", 1)[-1],
        cross_account=cross_account_use(model), dry_run="DryRun" in model.input_members,
        key_states=decided.key_states,
        inline=decided.inline, cached=decided.cached or decided.inline, tracked=decided.tracked,
        condition_defaults=MappingProxyType(dict(decided.condition_defaults)),
        audit=AuditFacts(read_only=decided.crypto or name.startswith(READ_PREFIXES),
                         response_members=() if decided.crypto else decided.shown,
                         request_defaults=MappingProxyType(dict(decided.audit_defaults))))


if set(service.HANDLERS) != set(DECIDED):  # a handler without a row, or a row without a handler
    raise RuntimeError(f"operation table out of step with the handlers: {set(service.HANDLERS) ^ set(DECIDED)}")

# The table, in the order of DECIDED.
OPERATIONS: dict[str, OperationRow] = {name: _row(name, service.HANDLERS[name]) for name in DECIDED}

# What lower layers read of the table, by name: whether an ARN may name another account's key
# (Service.resolve), the key states the operation accepts (Service.check_key_state) and the
# condition-key defaults (context_keys.condition_context).
service.CROSS_ACCOUNT.update(name for name, row in OPERATIONS.items() if row.cross_account is CrossAccount.YES)
service.KEY_STATES.update({name: row.key_states for name, row in OPERATIONS.items()})
context_keys.DEFAULTS.update({row.action: row.condition_defaults for row in OPERATIONS.values()
                              if row.condition_defaults})

# Successful cryptographic operations record the key's last use (GetKeyLastUsage).
lastusage.track(OPERATIONS)
# Naming a predefined alias/aws/<service> creates its AWS managed key on first use (keydomain/managed.py).
keys.create_managed_keys_on_first_use(OPERATIONS)
