"""Key policy rules of the service core: what CreateKey, ReplicateKey and PutKeyPolicy check of a
policy document (its size and grammar, principals that exist, the lockout safety check). The
operations on key policies are kms/policies.py; the default policy, keydomain/policy.py."""

from __future__ import annotations

from ..auth import policy as policy_language
from ..errors import AWSError
from .context_keys import condition_context

POLICY_MAX_BYTES = 32_768  # AWS's documented limit; the model allows 131,072


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
