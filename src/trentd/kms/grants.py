"""Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

A grant lets one principal (the grantee) perform some operations on one key, optionally only
with a given encryption context; authorize.py consults grants after policies. trentd is
immediately consistent, so a new grant works at once; grant tokens are still checked for form
and must name a grant that exists, as callers pass them to bridge AWS's eventual consistency.
"""

from __future__ import annotations

import re
import secrets

from ..crypto import specs
from ..errors import AWSError, validation
from ..store.grants import GrantRecord
from .grant_rules import make_token, token_grant_id
from .paging import decode_marker, dry_run, page
from .service import operation

MAX_GRANTS_PER_KEY = 50_000
_GRANT_ID = re.compile(r"[0-9a-f]{64}")
_EVERY_KEY = {"DescribeKey", "CreateGrant", "RetireGrant"}
_ENCRYPTION = {"Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo"}
# Operations a grant may name, by key family and usage (kms-api.md §3.7).
_GRANTABLE = {
    ("symmetric", specs.ENCRYPT_DECRYPT): _ENCRYPTION | {
        "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext"},
    ("asymmetric", specs.ENCRYPT_DECRYPT): _ENCRYPTION | {"GetPublicKey"},
    ("asymmetric", specs.SIGN_VERIFY): {"Sign", "Verify", "GetPublicKey"},
    ("hmac", specs.GENERATE_VERIFY_MAC): {"GenerateMac", "VerifyMac"},
    ("asymmetric", specs.KEY_AGREEMENT): {"DeriveSharedSecret", "GetPublicKey"},
    ("asymmetric", specs.ENCAPSULATE_DECAPSULATE): {"Encapsulate", "Decapsulate", "GetPublicKey"},
}


def _grantable(key) -> set[str]:
    family = specs.KEY_SPECS[key.key_spec].family
    kind = family if family in ("symmetric", "hmac") else "asymmetric"
    return _GRANTABLE.get((kind, key.key_usage), set()) | _EVERY_KEY


def _grant_id(value: str) -> str:
    if not _GRANT_ID.fullmatch(value):
        raise AWSError("InvalidGrantIdException", "Invalid grant ID.")
    return value


def _check_new_grant(svc, tx, caller, key, req) -> None:
    not_grantable = [op for op in req["Operations"] if op not in _grantable(key)]
    if not req["Operations"] or not_grantable:
        raise validation(f"Grant operations {', '.join(not_grantable) or '(none)'} are not valid for a key with "
                         f"key spec {key.key_spec} and key usage {key.key_usage}.")
    if req.get("Constraints") and not specs.KEY_SPECS[key.key_spec].symmetric:
        raise validation("Encryption context grant constraints are supported only on symmetric encryption KMS keys.")
    if "GranteePrincipal" not in req and "GranteeServicePrincipal" not in req:
        raise validation("Either GranteePrincipal or GranteeServicePrincipal must be specified.")
    for member in ("GranteePrincipal", "RetiringPrincipal"):
        arn = req.get(member)
        if arn is not None and not (arn.startswith("arn:") and svc.principal_exists(tx, arn)):
            raise validation(f"Invalid {member[0].lower() + member[1:]}: {arn} is not a valid principal.")


def _same_grant(g: GrantRecord, req: dict) -> bool:
    return (g.grantee == req.get("GranteePrincipal") and g.retiring == req.get("RetiringPrincipal")
            and sorted(g.operations) == sorted(req["Operations"]) and g.constraints == (req.get("Constraints") or None))


@operation("CreateGrant")
def create_grant(svc, caller, req):
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        _check_new_grant(svc, tx, caller, key, req)
        name = req.get("Name")
        existing = None
        if name is not None:  # Name makes CreateGrant idempotent per key: same grant, new token
            existing = next((g for g in tx.key_grants(key.account, key.region, key.key_id)
                             if g.name == name and _same_grant(g, req)), None)
        if existing is None and tx.count_grants(key.account, key.region, key.key_id) >= MAX_GRANTS_PER_KEY:
            raise AWSError("LimitExceededException",
                           f"The request would exceed the limit of {MAX_GRANTS_PER_KEY} grants for key {key.arn}.")
        dry_run(req)  # after every check, the grant limit included; nothing written yet
        if existing is not None:
            return {"GrantToken": make_token(svc.grant_token_key, existing.grant_id), "GrantId": existing.grant_id}
        grant = GrantRecord(
            account=key.account, region=key.region, key_id=key.key_id, grant_id=secrets.token_hex(32), name=name,
            grantee=req.get("GranteePrincipal"), retiring=req.get("RetiringPrincipal"),
            grantee_service=req.get("GranteeServicePrincipal"), retiring_service=req.get("RetiringServicePrincipal"),
            operations=list(req["Operations"]), constraints=req.get("Constraints") or None,
            issuing_account=f"arn:aws:iam::{caller.account}:root", created=svc.clock.now())
        tx.insert_grant(grant)
    return {"GrantToken": make_token(svc.grant_token_key, grant.grant_id), "GrantId": grant.grant_id}


def grant_entry(g: GrantRecord) -> dict:
    entry = {
        "KeyId": f"arn:aws:kms:{g.region}:{g.account}:key/{g.key_id}", "GrantId": g.grant_id, "Name": g.name,
        "CreationDate": g.created, "GranteePrincipal": g.grantee, "RetiringPrincipal": g.retiring,
        "GranteeServicePrincipal": g.grantee_service, "RetiringServicePrincipal": g.retiring_service,
        "IssuingAccount": g.issuing_account, "Operations": g.operations, "Constraints": g.constraints,
    }
    return {k: v for k, v in entry.items() if v is not None}


@operation("ListGrants")
def list_grants(svc, caller, req):
    limit = req.get("Limit", 50)
    after = decode_marker(req.get("Marker"))
    wanted = _grant_id(req["GrantId"]) if "GrantId" in req else None
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        if wanted is None:
            rows = tx.key_grants(key.account, key.region, key.key_id, after, limit + 1, req.get("GranteePrincipal"))
        else:  # looked up directly: filtering one page would miss a grant beyond it
            grant = tx.get_grant(wanted)
            rows = [grant] if grant is not None and grant.grant_id > after and (
                grant.account, grant.region, grant.key_id) == (key.account, key.region, key.key_id) and (
                req.get("GranteePrincipal") in (None, grant.grantee)) else []
    rows, more = page(rows, limit, lambda g: g.grant_id)
    return {"Grants": [grant_entry(g) for g in rows], **more}


@operation("ListRetirableGrants")
def list_retirable_grants(svc, caller, req):
    if "RetiringPrincipal" not in req:
        raise validation("RetiringPrincipal is required.")
    svc.authorize_account(caller)
    limit = req.get("Limit", 50)
    # A principal of the caller's own account sees its retirable grants on every account's keys
    # (AWS: "can include grants on KMS keys owned by other AWS accounts"); any other principal,
    # only those on the caller's keys, so no account can list another's grants.
    retiring = req["RetiringPrincipal"]
    own = retiring.split(":")[4:5] == [caller.account] if retiring.startswith("arn:") else False
    with svc.store.read() as tx:
        rows = tx.retirable_grants(None if own else caller.account, caller.region, retiring,
                                   decode_marker(req.get("Marker")), limit + 1)
    rows, more = page(rows, limit, lambda g: g.grant_id)
    return {"Grants": [grant_entry(g) for g in rows], **more}


def _may_retire(svc, tx, caller, grant: GrantRecord, key) -> bool:
    """Retiring is decided by the grant: its retiring principal, its grantee when the grant
    includes RetireGrant, or the key's account when policy allows kms:RetireGrant."""
    if caller.principal_arn == grant.retiring or (
            caller.principal_arn == grant.grantee and "RetireGrant" in grant.operations):
        return True
    try:
        svc.authorize(tx, caller, key, "kms:RetireGrant")
    except AWSError:
        return False
    return caller.account == key.account


@operation("RetireGrant")
def retire_grant(svc, caller, req):
    with svc.store.write() as tx:
        if "GrantToken" in req:
            grant = tx.get_grant(token_grant_id(svc.grant_token_key, req["GrantToken"]))
            if grant is None:
                raise AWSError("InvalidGrantTokenException", "The grant token is invalid.")
        elif "KeyId" in req and "GrantId" in req:
            key = svc.resolve(tx, caller, req["KeyId"], authorize=False)
            grant = tx.get_grant(_grant_id(req["GrantId"]))
            if grant is None or (grant.account, grant.key_id) != (key.account, key.key_id):
                raise AWSError("InvalidGrantIdException", "Invalid grant ID.")
        else:
            raise validation("Either GrantToken, or both KeyId and GrantId, must be specified.")
        key = tx.get_key(grant.account, grant.region, grant.key_id)
        if not _may_retire(svc, tx, caller, grant, key):
            raise AWSError("AccessDeniedException",
                           f"User: {caller.shown_arn} is not authorized to perform: kms:RetireGrant on resource: "
                           f"{key.arn} because the grant does not allow it to retire the grant")
        dry_run(req)
        tx.delete_grant(grant.grant_id)


@operation("RevokeGrant")
def revoke_grant(svc, caller, req):
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        grant = tx.get_grant(_grant_id(req["GrantId"]))
        if grant is None or (grant.account, grant.region, grant.key_id) != (key.account, key.region, key.key_id):
            raise AWSError("InvalidGrantIdException", "Invalid grant ID.")
        dry_run(req)
        tx.delete_grant(grant.grant_id)
