"""Key policies: the default policy, document checks, GetKeyPolicy, ListKeyPolicies, PutKeyPolicy."""

from __future__ import annotations

import json

from ..errors import AWSError, not_found
from .paging import dry_run
from .service import operation

POLICY_MAX_BYTES = 32_768  # AWS's documented limit; the model allows 131,072


def default_policy(account: str) -> str:
    """The default key policy, worded and laid out exactly as AWS returns it."""
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Id" : "key-default-1",\n'
        '  "Statement" : [ {\n'
        '    "Sid" : "Enable IAM User Permissions",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:aws:iam::{account}:root"\n'
        "    },\n"
        '    "Action" : "kms:*",\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )


def check_policy(text: str) -> str:
    """Validate a policy document and return it verbatim (AWS stores policies as given)."""
    if len(text.encode("utf-8")) > POLICY_MAX_BYTES:
        raise AWSError("LimitExceededException", "Policy exceeds the maximum size of 32768 bytes.")
    try:
        document = json.loads(text)
    except ValueError:
        raise AWSError("MalformedPolicyDocumentException", "The new key policy is not valid JSON.") from None
    if not isinstance(document, dict):
        raise AWSError("MalformedPolicyDocumentException", "The new key policy must be a JSON object.")
    statements = document.get("Statement")
    if statements is None:
        raise AWSError("MalformedPolicyDocumentException", "Policy is missing required element - Statement.")
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            raise AWSError("MalformedPolicyDocumentException", "Policy statements must have an Effect of Allow or Deny.")
    return text


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
    policy = check_policy(req["Policy"])
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        tx.update_key(key, policy=policy)
    return None
