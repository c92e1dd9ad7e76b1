"""When a grant allows an operation: the grant names the operation, and its encryption-context
constraints hold for the request. Constraint keys compare case-insensitively and values
case-sensitively (KMS developer guide, grant constraints); operations that take no encryption
context (DescribeKey, RetireGrant, Sign, …) are not affected by the constraints."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping

from ..errors import AWSError

_TOKEN_VERSION = b"\x01"

# Private context entries (not AWS condition keys, so no policy can name them):
EC_CONTEXT_KEY = "trentd:encryptioncontext"  # the request's raw encryption context
CHILD_GRANT_KEY = "trentd:childgrant"  # CreateGrant: (operations, constraints) of the grant asked for
TAKES_CONTEXT = frozenset({
    "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
})


def _folded(context: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (context or {}).items()}


def constraints_hold(constraints: dict | None, context: Mapping[str, str] | None) -> bool:
    if not constraints:
        return True
    request = _folded(context)
    equals = constraints.get("EncryptionContextEquals")
    if equals is not None and _folded(equals) != request:
        return False
    subset = constraints.get("EncryptionContextSubset")
    return subset is None or all(request.get(k) == v for k, v in _folded(subset).items())


def at_least_as_strict(parent: dict | None, child: dict | None) -> bool:
    """A grant holding CreateGrant may only create grants whose constraints are as strict as its own."""
    if not parent:
        return True
    if not child:
        return False
    child_equals, child_subset = child.get("EncryptionContextEquals"), child.get("EncryptionContextSubset")
    if parent.get("EncryptionContextEquals") is not None:
        return child_equals is not None and _folded(child_equals) == _folded(parent["EncryptionContextEquals"])
    needed = _folded(parent.get("EncryptionContextSubset")).items()
    held = child_equals if child_equals is not None else child_subset
    return held is not None and needed <= _folded(held).items()


def _lookup(context: Mapping, name: str):
    try:
        return context[name]
    except KeyError:
        return None


def grant_allows(grant, operation: str, context: Mapping) -> bool:
    if operation not in grant.operations:
        return False
    if operation == "CreateGrant":
        operations, constraints = _lookup(context, CHILD_GRANT_KEY) or ((), None)
        return set(operations) <= set(grant.operations) and at_least_as_strict(grant.constraints, constraints)
    if operation not in TAKES_CONTEXT:
        return True
    return constraints_hold(grant.constraints, _lookup(context, EC_CONTEXT_KEY))


# Grant tokens: opaque to callers; inside, a version byte, the grant id and random bytes.
def make_token(grant_id: str) -> str:
    raw = _TOKEN_VERSION + bytes.fromhex(grant_id) + secrets.token_bytes(16)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_grant_id(token: str) -> str:
    """The grant a token names; InvalidGrantTokenException when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 49 or raw[:1] != _TOKEN_VERSION:
        raise AWSError("InvalidGrantTokenException", "The grant token is invalid.")
    return raw[1:33].hex()


def check_grant_tokens(tx, tokens) -> None:
    for token in tokens or ():
        if tx.get_grant(token_grant_id(token)) is None:
            raise AWSError("InvalidGrantTokenException", "The grant token is invalid.")
