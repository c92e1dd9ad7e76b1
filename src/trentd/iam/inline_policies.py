"""Inline policies of users, roles and groups: Put/Get/List/Delete for UserPolicy, RolePolicy and
GroupPolicy. They are the rows ``trentd principals put-policy`` writes (``identity_policies``,
keyed by the user's, role's or group's ARN); authorization reads them through the store's
``identity_policies`` within a second of a change on every node."""

from __future__ import annotations

from ..auth.policy import checked_identity_policy
from . import common


# IAM's quotas on the inline policies of one user, role or group, together (whitespace not counted).
MAX_INLINE_SIZE = {"user": 2048, "role": 10240, "group": 5120}


def _check_size(tx, kind: str, arn: str, name: str, policy_name: str, document: str) -> None:
    others = sum(common.policy_size(text) for n, text in tx.inline_policies(arn).items() if n != policy_name)
    limit = MAX_INLINE_SIZE[kind]
    if others + common.policy_size(document) > limit:
        raise common.limit_exceeded(f"Maximum policy size of {limit} bytes exceeded for {kind} {name}")


def _family(kind: str, name_member: str):
    title = common.kind_title(kind)

    def put(svc, call, request: dict) -> dict:
        name = request[name_member]
        common.authorized_entity(svc, call, kind, name)
        document = checked_identity_policy(request["PolicyDocument"])
        with common.writing(svc, call) as tx:
            entity = common.existing(tx, call, kind, name)
            _check_size(tx, kind, entity.arn, entity.name, request["PolicyName"], document)
            tx.put_identity_policy(entity.arn, request["PolicyName"], document)
        return {}

    def get(svc, call, request: dict) -> dict:
        name, policy_name = request[name_member], request["PolicyName"]
        entity = common.authorized_entity(svc, call, kind, name)
        with svc.store.read() as tx:
            document = tx.inline_policies(entity.arn).get(policy_name)
        if document is None:
            raise common.no_such_entity(f"The {kind} policy with name {policy_name} cannot be found.")
        return {name_member: entity.name, "PolicyName": policy_name, "PolicyDocument": common.encoded(document)}

    def list_names(svc, call, request: dict) -> dict:
        entity = common.authorized_entity(svc, call, kind, request[name_member])
        with svc.store.read() as tx:
            names = list(tx.inline_policies(entity.arn))
        return common.page(names, request, "PolicyNames")

    def delete(svc, call, request: dict) -> dict:
        name, policy_name = request[name_member], request["PolicyName"]
        common.authorized_entity(svc, call, kind, name)
        with common.writing(svc, call) as tx:
            if not tx.delete_inline_policy(common.existing(tx, call, kind, name).arn, policy_name):
                raise common.no_such_entity(f"The {kind} policy with name {policy_name} cannot be found.")
        return {}

    return {f"Put{title}Policy": put, f"Get{title}Policy": get, f"List{title}Policies": list_names,
            f"Delete{title}Policy": delete}


HANDLERS = {**_family("user", "UserName"), **_family("role", "RoleName"), **_family("group", "GroupName")}
