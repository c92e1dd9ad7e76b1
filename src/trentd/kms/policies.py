"""Key policies: the default policy, document checks, GetKeyPolicy, ListKeyPolicies, PutKeyPolicy."""

from __future__ import annotations

from ..auth import policy as policy_language
from ..errors import AWSError, not_found
from .context_keys import condition_context
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


def check_policy(svc, tx, caller, text: str) -> str:
    """Validate a key policy (size, JSON, policy grammar, principals that exist) and return it
    verbatim: AWS stores and returns policies exactly as given."""
    if len(text.encode("utf-8")) > POLICY_MAX_BYTES:
        raise AWSError("LimitExceededException", "Policy exceeds the maximum size of 32768 bytes.")
    policy_language.parse_policy(text, resource_policy=True,
                                 principal_exists=lambda arn: svc.principal_exists(tx, arn))
    return text


def check_lockout(svc, tx, caller, key, text: str) -> None:
    """The policy lockout safety check: refuse a policy under which the caller could no longer
    change the key policy, unless BypassPolicyLockoutSafetyCheck is set."""
    if (caller.request or {}).get("BypassPolicyLockoutSafetyCheck"):
        return
    context = condition_context(tx, caller, "kms:PutKeyPolicy", key)
    try:
        svc.authorizer.check_key(tx, caller, "kms:PutKeyPolicy", key, context, policy_text=text, use_grants=False)
    except AWSError as err:
        if err.code != "AccessDeniedException":
            raise
        raise AWSError("MalformedPolicyDocumentException",
                       "The new key policy will not allow you to update the key policy in the future.") from None


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
