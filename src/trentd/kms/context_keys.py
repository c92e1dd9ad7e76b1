"""The condition keys of a request, for policy evaluation (KMS guide, "conditions-kms").

Request-parameter keys take the parameter's default when it is omitted ("works even when the
parameter doesn't appear"), so a policy that says `kms:EncryptionAlgorithm = SYMMETRIC_DEFAULT`
matches an Encrypt that did not name an algorithm.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..auth.identity import base_context
from ..auth.invocation import Invocation
from .authorize import RequestContext
from .grant_rules import CHILD_GRANT_KEY, EC_CONTEXT_KEY, fold_context

# request member -> condition key (lower-case)
MEMBER_KEYS = {
    "SigningAlgorithm": "kms:signingalgorithm",
    "MacAlgorithm": "kms:macalgorithm",
    "KeyAgreementAlgorithm": "kms:keyagreementalgorithm",
    "KeyPairSpec": "kms:datakeypairspec",
    "MessageType": "kms:messagetype",
    "Operations": "kms:grantoperations",
    "GranteePrincipal": "kms:granteeprincipal",
    "RetiringPrincipal": "kms:retiringprincipal",
    "PendingWindowInDays": "kms:schedulekeydeletionpendingwindowindays",
    "RotationPeriodInDays": "kms:rotationperiodindays",
    "WrappingAlgorithm": "kms:wrappingalgorithm",
    "WrappingKeySpec": "kms:wrappingkeyspec",
    "ExpirationModel": "kms:expirationmodel",
    "ReplicaRegion": "kms:replicaregion",
    "PrimaryRegion": "kms:primaryregion",
    "BypassPolicyLockoutSafetyCheck": "kms:bypasspolicylockoutsafetycheck",
}

# action -> defaults of parameters it may omit: each operation's row says them (kms/operations.py
# fills this map when the table is built).
DEFAULTS: dict[str, Mapping[str, object]] = {}

# For ReEncrypt the source and destination halves read different members.
_CONTEXT_MEMBER = {"kms:ReEncryptFrom": "SourceEncryptionContext", "kms:ReEncryptTo": "DestinationEncryptionContext"}
_ALGORITHM_MEMBER = {"kms:ReEncryptFrom": "SourceEncryptionAlgorithm",
                     "kms:ReEncryptTo": "DestinationEncryptionAlgorithm"}
_KEY_ID_MEMBER = {"kms:ReEncryptFrom": "SourceKeyId", "kms:ReEncryptTo": "DestinationKeyId"}
_TAKES_ALGORITHM = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"}


def _alias_named(key_id: str | None) -> str | None:
    if not key_id:
        return None
    if key_id.startswith("alias/"):
        return key_id
    if key_id.startswith("arn:") and ":alias/" in key_id:
        return "alias/" + key_id.split(":alias/", 1)[1]
    return None


def _context_keys(context: dict[str, str]) -> dict:
    """kms:EncryptionContext:<k>, whose <k> part is case-insensitive. Two context keys that differ
    only in case would collide; their condition key gets a value no operator can compare, which
    the evaluator treats as unknown: it never satisfies an Allow and always satisfies a Deny.
    (Grant constraints fail closed on the same collisions: grant_rules.fold_context.)"""
    folded, ambiguous = fold_context(context)
    return {f"kms:encryptioncontext:{k}": {"ambiguous": True} if k in ambiguous else v for k, v in folded.items()}


def _request_values(action: str, request: dict) -> dict:
    values: dict = dict(DEFAULTS.get(action) or {})
    for member, name in MEMBER_KEYS.items():
        if member in request:
            values[name] = request[member]
    context = request.get(_CONTEXT_MEMBER.get(action, "EncryptionContext"))
    if context is not None:
        values[EC_CONTEXT_KEY] = context
        values["kms:encryptioncontextkeys"] = list(context)
        values.update(_context_keys(context))
    if action in _TAKES_ALGORITHM:
        values["kms:encryptionalgorithm"] = request.get(_ALGORITHM_MEMBER.get(action, "EncryptionAlgorithm"),
                                                        "SYMMETRIC_DEFAULT")
    alias = _alias_named(request.get(_KEY_ID_MEMBER.get(action, "KeyId")))
    if alias:
        values["kms:requestalias"] = alias
    if action == "kms:CreateKey":
        spec = request.get("KeySpec") or request.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        values.update({"kms:keyspec": spec,
                       "kms:keyusage": request.get("KeyUsage", values["kms:keyusage"]),
                       "kms:keyorigin": request.get("Origin", "AWS_KMS"),
                       "kms:multiregion": bool(request.get("MultiRegion", False))})
    constraints = request.get("Constraints")
    if action == "kms:CreateGrant":
        values[CHILD_GRANT_KEY] = (request.get("Operations", ()), constraints)
        if constraints:
            values["kms:grantconstrainttype"] = [c for c in ("EncryptionContextEquals", "EncryptionContextSubset")
                                                 if c in constraints]
    tags = request.get("Tags")
    if tags is not None:
        values.update({f"aws:requesttag/{t['TagKey'].lower()}": t["TagValue"] for t in tags})
        values["aws:tagkeys"] = [t["TagKey"] for t in tags]
    elif "TagKeys" in request:
        values["aws:tagkeys"] = list(request["TagKeys"])
    return values


def condition_context(tx, call: Invocation, action: str, key=None) -> RequestContext:
    values = base_context(call.caller, key, _request_values(action, call.request or {}))
    loaders = {}
    if key is not None:
        loaders = {
            "kms:resourcealiases": lambda _: [a.name for a in
                                              tx.list_aliases(key.account, key.region, "", 1000, key.key_id)],
            # condition key names are case-insensitive, so the tag key part is matched that way too
            "aws:resourcetag/": lambda tag: {k.lower(): v for k, v in tx.get_tags(key).items()}.get(tag),
        }
    return RequestContext(values, loaders)
