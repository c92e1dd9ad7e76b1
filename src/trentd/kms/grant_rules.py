"""When a grant allows an operation: the grant names the operation, and its encryption-context
constraints hold for the request. Constraint keys compare case-insensitively and values
case-sensitively (KMS developer guide, grant constraints); operations that take no encryption
context (DescribeKey, RetireGrant, Sign, …) are not affected by the constraints. Two context keys
that differ only in case (``TENANT`` and ``tenant``) make that key ambiguous: no constraint on it
holds, as no key-policy condition on it does (context_keys.py).

Grant tokens are made and checked here too: a MAC under a per-deployment key covers the whole
token, so only tokens trentd issued are accepted."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping

from ..errors import AWSError
from ..store.rootkey import aad_for

# Token v2: version, grant id (32 B), random bytes (16 B), HMAC-SHA256 of those, truncated (16 B).
# (v1 had no MAC: its random tail was never checked; such tokens are now refused.)
_TOKEN_VERSION = b"\x02"
_TOKEN_BYTES = 1 + 32 + 16 + 16
GRANT_TOKEN_META = "grant_token_key"  # the MAC key, wrapped under the root key (store/rootkey.stored_secret)
GRANT_TOKEN_AAD = aad_for("grant-token-key")

# Private context entries (not AWS condition keys, so no policy can name them):
EC_CONTEXT_KEY = "trentd:encryptioncontext"  # the request's raw encryption context
CHILD_GRANT_KEY = "trentd:childgrant"  # CreateGrant: (operations, constraints) of the grant asked for
TAKES_CONTEXT = frozenset({
    "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
})


def fold_context(context: Mapping[str, str] | None) -> tuple[dict[str, str], frozenset[str]]:
    """The context with its keys lower-cased, and the lower-cased keys that two or more of its
    keys share: for those, which value was meant is ambiguous (the folded dict holds the last)."""
    folded: dict[str, str] = {}
    ambiguous: set[str] = set()
    for key, value in (context or {}).items():
        name = key.lower()
        if name in folded:
            ambiguous.add(name)
        folded[name] = value
    return folded, frozenset(ambiguous)


def _folded(context: Mapping[str, str] | None) -> dict[str, str] | None:
    """Lower-cased keys; None when any two keys collide (the constraint or request is ambiguous)."""
    folded, ambiguous = fold_context(context)
    return None if ambiguous else folded


def constraints_hold(constraints: dict | None, context: Mapping[str, str] | None) -> bool:
    if not constraints:
        return True
    request, ambiguous = fold_context(context)
    equals = constraints.get("EncryptionContextEquals")
    if equals is not None and (ambiguous or _folded(equals) != request):
        return False
    subset = constraints.get("EncryptionContextSubset")
    if subset is None:
        return True
    needed = _folded(subset)
    return needed is not None and all(k not in ambiguous and request.get(k) == v for k, v in needed.items())


def at_least_as_strict(parent: dict | None, child: dict | None) -> bool:
    """A grant holding CreateGrant may only create grants whose constraints are as strict as its own."""
    if not parent:
        return True
    if not child:
        return False
    child_equals, child_subset = child.get("EncryptionContextEquals"), child.get("EncryptionContextSubset")
    parent_equals = parent.get("EncryptionContextEquals")
    if parent_equals is not None:
        folded = _folded(parent_equals)
        return folded is not None and child_equals is not None and _folded(child_equals) == folded
    needed, held = _folded(parent.get("EncryptionContextSubset")), _folded(
        child_equals if child_equals is not None else child_subset)
    return needed is not None and held is not None and needed.items() <= held.items()


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


# Grant tokens: opaque to callers (see _TOKEN_VERSION).
def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.digest(key, body, "sha256")[:16]


def make_token(key: bytes, grant_id: str) -> str:
    body = _TOKEN_VERSION + bytes.fromhex(grant_id) + secrets.token_bytes(16)
    return _encode(body + _mac(key, body))


def token_grant_id(key: bytes, token: str) -> str:
    """The grant a token names; InvalidGrantTokenException unless trentd issued exactly this token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    # The decoder skips characters outside the alphabet and ignores a last character's spare
    # bits, so several strings decode alike: only the one make_token wrote is accepted.
    well_formed = len(raw) == _TOKEN_BYTES and raw[:1] == _TOKEN_VERSION and _encode(raw) == token
    if not (well_formed and hmac.compare_digest(raw[-16:], _mac(key, raw[:-16]))):
        raise AWSError("InvalidGrantTokenException", "The grant token is invalid.")
    return raw[1:33].hex()


def check_grant_tokens(tx, key: bytes, tokens) -> None:
    for token in tokens or ():
        if tx.get_grant(token_grant_id(key, token)) is None:
            raise AWSError("InvalidGrantTokenException", "The grant token is invalid.")
