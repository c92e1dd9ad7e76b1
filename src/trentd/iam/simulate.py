"""SimulatePrincipalPolicy and SimulateCustomPolicy, answered by trentd's own policy evaluator
(auth/policy.py, the one that authorizes every request), for people who debug a policy.

A decision per (action, resource): ``explicitDeny`` when a statement denies, ``allowed`` when
one allows, else ``implicitDeny``. The context is the ContextEntries given (types as IAM names
them). MatchedStatements name the statements that decided (the Denies of an explicitDeny, the
Allows of an allowed; none for an implicitDeny) with their policy and place in it;
MissingContextValues the condition keys of the statements that name the action and resource
which the request did not supply.
"""

from __future__ import annotations

from datetime import datetime

import json
from dataclasses import dataclass

from ..auth import policy as policy_language
from ..errors import AWSError
from . import common
from .statement_positions import statement_positions


@dataclass
class Source:
    """One policy the simulation weighs: its id and type as MatchedStatements show them."""

    policy_id: str  # the inline policy's name, the managed policy's name, or PolicyInputList.N
    policy_type: str  # user, group, role, aws-managed, user-managed or none
    text: str


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


def _compiled(sources: list[Source]) -> list:
    out = []
    for source in sources:
        try:
            out.append(policy_language.parse_policy(source.text, resource_policy=False))
        except AWSError as exc:
            raise AWSError("MalformedPolicyDocument", exc.message) from None
    return out


def _inputs(request: dict) -> list[Source]:
    inputs = request.get("PolicyInputList", [])
    return [Source(f"PolicyInputList.{n}", "none", text) for n, text in enumerate(inputs, 1)]


def evaluate(sources: list[Source], principal_arn: str, account: str, request: dict) -> list[dict]:
    policies = _compiled(sources)
    positions = [statement_positions(s.text) for s in sources]
    context = {e["ContextKeyName"].lower(): _context_value(e) for e in request.get("ContextEntries", [])}
    context = {k: v for k, v in context.items() if v is not None}
    results = []
    for action in request["ActionNames"]:
        for resource in request.get("ResourceArns") or ["*"]:
            asked = policy_language.Request(principal_arn=principal_arn, principal_account=account, action=action,
                                            resource=resource, context=context)
            results.append(_result(sources, policies, positions, asked))
    return results


def _result(sources: list[Source], policies: list, positions: list, asked) -> dict:
    explained = [(n, index, deny, applies) for n, p in enumerate(policies) for index, deny, applies in p.explain(asked)]
    denied = any(deny and applies for _, _, deny, applies in explained)
    allowed = any(applies for _, _, _, applies in explained)
    decision = "explicitDeny" if denied else "allowed" if allowed else "implicitDeny"
    matched = [_matched(sources[n], positions[n], index) for n, index, deny, applies in explained
               if applies and deny == denied and decision != "implicitDeny"]
    missing: dict[str, None] = {}
    for n, index, _, _ in explained:
        for key in _condition_keys(sources[n].text, index):
            if key.lower() not in asked.context:
                missing.setdefault(key)
    return {"EvalActionName": asked.action, "EvalResourceName": asked.resource, "EvalDecision": decision,
            "MatchedStatements": matched, "MissingContextValues": list(missing)}


def _matched(source: Source, positions: list, index: int) -> dict:
    out = {"SourcePolicyId": source.policy_id, "SourcePolicyType": source.policy_type}
    if index < len(positions):
        out["StartPosition"], out["EndPosition"] = positions[index]
    return out


def _condition_keys(text: str, index: int) -> list[str]:
    """The condition keys of a statement, as the policy writes them (the document is valid)."""
    statements = json.loads(text)["Statement"]
    statement = statements[index] if isinstance(statements, list) else statements
    return [key for keys in statement.get("Condition", {}).values() for key in keys]


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
        sources = _principal_sources(tx, entity)
    return common.page(evaluate([*sources, *_inputs(request)], source, call.account, request), request,
                       "EvaluationResults")


def _principal_sources(tx, entity) -> list[Source]:
    """The identity policies of a user (its groups' too), role or group, as authorization reads
    them, each with its id and type."""
    sources = [Source(name, entity.kind, text) for name, text in tx.inline_policies(entity.arn).items()]
    groups = tx.user_groups(entity.arn) if entity.kind == "user" else []
    for group in groups:
        sources += [Source(name, "group", text) for name, text in tx.inline_policies(group).items()]
    for arn, text in tx.attached_documents([entity.arn, *groups]):
        kind = "aws-managed" if arn.startswith("arn:aws:iam::aws:") else "user-managed"
        sources.append(Source(arn.rsplit("/", 1)[-1], kind, text))
    return sources


def simulate_custom_policy(svc, call, request: dict) -> dict:
    common.authorize(svc, call, "*")
    caller = request.get("CallerArn") or call.principal_arn
    return common.page(evaluate(_inputs(request), caller, call.account, request), request, "EvaluationResults")


HANDLERS = {"SimulatePrincipalPolicy": simulate_principal_policy, "SimulateCustomPolicy": simulate_custom_policy}
