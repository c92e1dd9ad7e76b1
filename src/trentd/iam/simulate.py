"""SimulatePrincipalPolicy and SimulateCustomPolicy, answered by trentd's own policy evaluator
(auth/policy.py, the one that authorizes every request), for people who debug a policy.

A decision per (action, resource): ``explicitDeny`` when a statement denies, ``allowed`` when
one allows, else ``implicitDeny``. The context is the ContextEntries given (types as IAM names
them); trentd does not report MatchedStatements or MissingContextValues (empty lists).
"""

from __future__ import annotations

from datetime import datetime

from ..auth import policy as policy_language
from ..errors import AWSError
from . import common


def _context_value(entry: dict):
    kind = entry.get("ContextKeyType", "string")
    values = [_typed(kind.removesuffix("List"), v) for v in entry.get("ContextKeyValues", [])]
    return values if kind.endswith("List") else (values[0] if values else None)


def _typed(kind: str, value: str):
    if kind == "boolean":
        return value.lower() == "true"
    if kind == "date":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise common.invalid_input(f"Invalid date value {value} for a context key of type date.") from None
    return value


def _compiled(documents: list[str]) -> list:
    out = []
    for text in documents:
        try:
            out.append(policy_language.parse_policy(text, resource_policy=False))
        except AWSError as exc:
            raise AWSError("MalformedPolicyDocument", exc.message) from None
    return out


def evaluate(policies: list, principal_arn: str, account: str, request: dict) -> list[dict]:
    context = {e["ContextKeyName"].lower(): _context_value(e) for e in request.get("ContextEntries", [])}
    context = {k: v for k, v in context.items() if v is not None}
    results = []
    for action in request["ActionNames"]:
        for resource in request.get("ResourceArns") or ["*"]:
            asked = policy_language.Request(principal_arn=principal_arn, principal_account=account, action=action,
                                            resource=resource, context=context)
            verdicts = [p.evaluate(asked, resource_policy=False) for p in policies]
            decision = ("explicitDeny" if any(v.denied for v in verdicts)
                        else "allowed" if any(v.allowed for v in verdicts) else "implicitDeny")
            results.append({"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision,
                            "MatchedStatements": [], "MissingContextValues": []})
    return results


def _unknown_source(source: str) -> AWSError:
    kind, _, rest = source.split(":", 5)[-1].partition("/")
    if kind in ("user", "role", "group") and rest:
        return common.missing(kind, rest.rsplit("/", 1)[-1])
    return common.invalid_input(f"Invalid Entity Arn: {source} does not clearly define entity type and name.")


def simulate_principal_policy(svc, call, request: dict) -> dict:
    source = request["PolicySourceArn"]
    common.authorize(svc, call, source)
    with svc.store.read() as tx:
        entity = tx.iam_entity(source)
        if entity is None or entity.account != call.account:
            raise _unknown_source(source)
        documents = (tx.identity_policies(source) if entity.kind != "group"
                     else {**tx.inline_policies(source), **dict(tx.attached_documents([source]))})
    policies = _compiled([*documents.values(), *request.get("PolicyInputList", [])])
    return common.page(evaluate(policies, source, call.account, request), request, "EvaluationResults")


def simulate_custom_policy(svc, call, request: dict) -> dict:
    common.authorize(svc, call, "*")
    policies = _compiled(request["PolicyInputList"])
    caller = request.get("CallerArn") or call.principal_arn
    return common.page(evaluate(policies, caller, call.account, request), request, "EvaluationResults")


HANDLERS = {"SimulatePrincipalPolicy": simulate_principal_policy, "SimulateCustomPolicy": simulate_custom_policy}
