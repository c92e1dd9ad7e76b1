"""Key policies: GetKeyPolicy, ListKeyPolicies, PutKeyPolicy. The default policy of a new key is
keydomain/policy.py; the checks of a policy document, shared with CreateKey and ReplicateKey,
kms/policy_rules.py."""

from __future__ import annotations

from ..errors import not_found
from .policy_rules import check_lockout, check_policy
from .service import operation


def _policy_name(request: dict) -> str:
    name = request.get("PolicyName", "default")
    if name != "default":
        raise not_found(f"No such policy exists: {name}")
    return name


@operation("GetKeyPolicy")
def get_key_policy(svc, caller, req):
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
    name = _policy_name(req)
    return {"Policy": key.policy, "PolicyName": name}


@operation("ListKeyPolicies")
def list_key_policies(svc, caller, req):
    with svc.store.read() as tx:
        svc.resolve(tx, caller, req["KeyId"])
    return {"PolicyNames": ["default"], "Truncated": False}


@operation("PutKeyPolicy")
def put_key_policy(svc, caller, req):
    _policy_name(req)
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        policy = check_policy(svc, tx, caller, req["Policy"])
        check_lockout(svc, tx, caller, key, policy)
        tx.update_key(key, policy=policy)
    return None
