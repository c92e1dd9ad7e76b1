"""Managed policies attached to users, roles and groups: Attach/Detach/ListAttached for each,
and ListEntitiesForPolicy. An attached policy's default version applies to the user or role (and
to a group's members) within a second on every node (the store's ``identity_policies``)."""

from __future__ import annotations

from ..errors import AWSError
from . import common
from .managed_policies import policy_missing, visible_policy

MAX_ATTACHED = 10


def _family(kind: str, name_member: str):
    title = common.kind_title(kind)

    def attach(svc, call, request: dict) -> dict:
        name, arn = request[name_member], request["PolicyArn"]
        common.authorized_entity(svc, call, kind, name)
        with common.writing(svc, call) as tx:
            entity = common.existing(tx, call, kind, name)
            try:
                visible_policy(tx, call, arn)
            except AWSError:  # not found, or another account's
                raise common.no_such_entity(f"Policy {arn} does not exist or is not attachable.") from None
            attached = tx.attached_policies(entity.arn)
            if arn not in attached and len(attached) >= MAX_ATTACHED:
                raise common.limit_exceeded(f"Cannot exceed quota for PoliciesPer{title}: {MAX_ATTACHED}")
            tx.attach_policy(entity.arn, arn)
        return {}

    def detach(svc, call, request: dict) -> dict:
        name, arn = request[name_member], request["PolicyArn"]
        common.authorized_entity(svc, call, kind, name)
        with common.writing(svc, call) as tx:
            if not tx.detach_policy(common.existing(tx, call, kind, name).arn, arn):
                raise policy_missing(arn)
        return {}

    def list_attached(svc, call, request: dict) -> dict:
        entity = common.authorized_entity(svc, call, kind, request[name_member])
        prefix = request.get("PathPrefix", "/")
        with svc.store.read() as tx:
            policies = [tx.managed_policy_record(arn) for arn in tx.attached_policies(entity.arn)]
        shown = [{"PolicyName": p.name, "PolicyArn": p.arn}
                 for p in sorted((p for p in policies if p), key=lambda p: p.name.lower()) if p.path.startswith(prefix)]
        return common.page(shown, request, "AttachedPolicies")

    return {f"Attach{title}Policy": attach, f"Detach{title}Policy": detach,
            f"ListAttached{title}Policies": list_attached}


_MEMBERS = {"user": ("PolicyUsers", "UserName", "UserId"), "role": ("PolicyRoles", "RoleName", "RoleId"),
            "group": ("PolicyGroups", "GroupName", "GroupId")}


def list_entities_for_policy(svc, call, request: dict) -> dict:
    """Users, roles and groups the policy is attached to (by name), paged as one listing:
    ``EntityFilter`` picks a kind (a policy is attached to no policy, so LocalManagedPolicy and
    AWSManagedPolicy list nothing), ``PathPrefix`` their paths, ``PolicyUsageFilter``
    PermissionsBoundary nothing (trentd has no permissions boundaries)."""
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    wanted = request.get("EntityFilter")
    prefix = request.get("PathPrefix") or "/"
    with svc.store.read() as tx:
        visible_policy(tx, call, arn)
        entities = [e for e in (tx.iam_entity(a) for a in tx.policy_attachments(arn)) if e is not None]
    entities = sorted((e for e in entities if _listed(e, wanted, prefix, request.get("PolicyUsageFilter"))),
                      key=lambda e: (e.name.lower(), e.kind))
    shown = common.page(entities, request, "Entities")
    out: dict = {member: [] for member, _, _ in _MEMBERS.values()}
    for entity in shown.pop("Entities"):
        member, name_key, id_key = _MEMBERS[entity.kind]
        out[member].append({name_key: entity.name, id_key: common.shown_id(entity)})
    return {**out, **shown}


def _listed(entity, wanted: str | None, prefix: str, usage: str | None) -> bool:
    return ((wanted is None or entity.kind == wanted.lower()) and entity.path.startswith(prefix)
            and usage != "PermissionsBoundary")


HANDLERS = {**_family("user", "UserName"), **_family("role", "RoleName"), **_family("group", "GroupName"),
            "ListEntitiesForPolicy": list_entities_for_policy}
