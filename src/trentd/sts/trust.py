"""Who may assume a role: its trust policy, evaluated with the policy engine (auth/policy.py).

A trust policy is a resource policy on the role, so the same rules as for a key policy apply
(IAM "Policy evaluation logic", and the AssumeRole documentation):
* an explicit Deny in the trust policy, the caller's identity policies or its session policies
  refuses;
* same account: a trust policy naming the caller suffices; one naming the account (root, or the
  bare account id) delegates to the caller's identity policies, which must allow sts:AssumeRole
  on the role;
* another account: the trust policy must name the caller or its account, *and* the caller's
  identity policies must allow.
Trust policies have no Resource element (IAM refuses one); the role itself is the resource.
"""

from __future__ import annotations

import json
from functools import lru_cache

from ..auth import policy as policy_language
from ..errors import AWSError
from ..auth.identity import session_result

ROOT_REFUSED = "Roles may not be assumed by root accounts."


def _statements(doc: dict) -> list:
    raw = doc.get("Statement")
    return raw if isinstance(raw, list) else [raw]


def _as_resource_policy(text: str) -> str:
    """The document with ``Resource: "*"`` in each statement (the role is the only resource), so
    the policy engine, which ignores statements without a resource, evaluates it."""
    doc = json.loads(text)
    for statement in _statements(doc):
        if isinstance(statement, dict):
            statement.setdefault("Resource", "*")
    return json.dumps(doc)


def validate(text: str, principal_exists) -> str:
    """Check a trust policy as IAM does when it is set; returns the text to store."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for statement in _statements(doc):
            if isinstance(statement, dict) and ("Resource" in statement or "NotResource" in statement):
                raise AWSError("MalformedPolicyDocumentException", "Has prohibited field Resource")
    # A malformed document fails here with the engine's message, as on PutKeyPolicy.
    policy_language.parse_policy(_as_resource_policy(text) if isinstance(doc, dict) else text,
                                 resource_policy=True, principal_exists=principal_exists)
    return text


@lru_cache(maxsize=1024)
def _compiled(text: str) -> policy_language.Policy:
    return policy_language.compile_cached(_as_resource_policy(text), resource_policy=True)


def refusal(caller, action: str, role_arn: str) -> AWSError:
    return AWSError("AccessDenied", f"User: {caller.shown_arn} is not authorized to perform: {action} on resource: "
                                    f"{role_arn}", 403)


def check(authorizer, tx, caller, role_arn: str, trust_text: str | None, action: str, context) -> None:
    """Raise AccessDenied unless ``caller`` may perform ``action`` (sts:AssumeRole, sts:TagSession)
    on the role whose trust policy is ``trust_text`` (None: the role does not exist, or trusts no one)."""
    if trust_text is None:
        raise refusal(caller, action, role_arn)
    request = policy_language.Request(principal_arn=caller.principal_arn, principal_account=caller.account,
                                      action=action, resource=role_arn, context=context)
    by_trust = _compiled(trust_text).evaluate(request, resource_policy=True)
    identity = [p.evaluate(request, resource_policy=False)
                for p in authorizer.identity_policies(caller.principal_arn, tx)]
    session_denied, session_allowed = session_result(caller, request)
    if by_trust.denied or session_denied or any(r.denied for r in identity):
        raise refusal(caller, action, role_arn)
    identity_allowed = any(r.allowed for r in identity)
    same_account = caller.account == role_arn.split(":")[4]
    trusted = (by_trust.allowed and (same_account or identity_allowed)) or (by_trust.allowed_account
                                                                             and identity_allowed)
    if not (trusted and session_allowed):
        raise refusal(caller, action, role_arn)
