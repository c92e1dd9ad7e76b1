"""IAM roles: CreateRole, GetRole, ListRoles, UpdateRole, UpdateRoleDescription,
UpdateAssumeRolePolicy, DeleteRole and their tags.

A role is a row of ``principals`` (kind 'role'); its trust policy is the one
``trentd principals put-trust-policy`` sets and STS's AssumeRole evaluates (sts/trust.py), and
its MaxSessionDuration (3600 by default) caps AssumeRole's DurationSeconds.
"""

from __future__ import annotations

from ..errors import AWSError
from ..store.records import IamEntity
from ..sts import trust
from . import common
from .users import tagger


def role_out(tx, role: IamEntity, tags: bool = False) -> dict:
    document = tx.get_trust_policy(role.arn)
    out = {"Path": role.path, "RoleName": role.name, "RoleId": common.shown_id(role), "Arn": role.arn,
           "CreateDate": role.created, "Description": role.description,
           "AssumeRolePolicyDocument": common.encoded(document) if document is not None else None,
           "MaxSessionDuration": role.max_session_duration}
    if tags:
        out["Tags"] = common.tag_list(tx, role.arn) or None
    return out


def checked_trust_policy(tx, document: str) -> str:
    """A trust policy as IAM checks it: the grammar, no Resource, principals that exist (users and
    roles: a group is no principal)."""
    def exists(arn: str) -> bool:
        found = tx.get_principal(arn)
        return arn.endswith(":root") or found is not None and found.kind != "group"

    try:
        return trust.validate(document, exists)
    except AWSError as exc:
        raise AWSError("MalformedPolicyDocument", exc.message) from None


def create_role(svc, call, request: dict) -> dict:
    name, path = request["RoleName"], common.checked_path(request.get("Path"))
    arn = common.entity_arn(call.account, "role", name, path)
    common.authorize_creation(svc, call, arn, "iam:TagRole")
    with common.writing(svc, call) as tx:
        if tx.find_iam_entity(call.account, "role", name) is not None:
            raise common.entity_exists(f"Role with name {name} already exists.")
        document = checked_trust_policy(tx, request["AssumeRolePolicyDocument"])
        role = IamEntity(arn, call.account, name, "role", svc.clock.now(), common.new_unique_id("role"), path,
                         request.get("Description"), request.get("MaxSessionDuration", 3600))
        tx.insert_iam_entity(role)
        tx.put_trust_policy(arn, document)
        common.put_tags(tx, arn, request.get("Tags", []), "role", name)
        return {"Role": role_out(tx, role, tags=bool(request.get("Tags")))}


def get_role(svc, call, request: dict) -> dict:
    role = common.authorized_entity(svc, call, "role", request["RoleName"])
    with svc.store.read() as tx:
        return {"Role": role_out(tx, role, tags=True)}


def list_roles(svc, call, request: dict) -> dict:
    common.authorize(svc, call, common.entity_arn(call.account, "role", "*"))
    with svc.store.read() as tx:
        roles = [role_out(tx, r) for r in tx.list_iam_entities(call.account, "role", request.get("PathPrefix", "/"))]
    return common.page(roles, request, "Roles")


def update_role(svc, call, request: dict) -> dict:
    name = request["RoleName"]
    common.authorized_entity(svc, call, "role", name)
    with common.writing(svc, call) as tx:
        role = common.existing(tx, call, "role", name)
        tx.update_iam_entity(role.arn, description=request.get("Description"),
                             max_session_duration=request.get("MaxSessionDuration"))
    return {}


def update_role_description(svc, call, request: dict) -> dict:
    name = request["RoleName"]
    common.authorized_entity(svc, call, "role", name)
    with common.writing(svc, call) as tx:
        role = common.existing(tx, call, "role", name)
        tx.update_iam_entity(role.arn, description=request["Description"])
        return {"Role": role_out(tx, common.existing(tx, call, "role", name))}


def update_assume_role_policy(svc, call, request: dict) -> dict:
    name = request["RoleName"]
    common.authorized_entity(svc, call, "role", name)
    with common.writing(svc, call) as tx:
        role = common.existing(tx, call, "role", name)
        tx.put_trust_policy(role.arn, checked_trust_policy(tx, request["PolicyDocument"]))
    return {}


def delete_role(svc, call, request: dict) -> dict:
    name = request["RoleName"]
    common.authorized_entity(svc, call, "role", name)
    with common.writing(svc, call) as tx:
        role = common.existing(tx, call, "role", name)
        if tx.inline_policies(role.arn):
            raise common.delete_conflict("Cannot delete entity, must delete policies first.")
        if tx.attached_policies(role.arn):
            raise common.delete_conflict("Cannot delete entity, must detach all policies first.")
        tx.delete_principal(role.arn)  # its trust policy, and every session of it, go too
    return {}


tag_role, untag_role, list_role_tags = tagger("role", "RoleName")

HANDLERS = {
    "CreateRole": create_role, "GetRole": get_role, "ListRoles": list_roles, "UpdateRole": update_role,
    "UpdateRoleDescription": update_role_description, "UpdateAssumeRolePolicy": update_assume_role_policy,
    "DeleteRole": delete_role, "TagRole": tag_role, "UntagRole": untag_role, "ListRoleTags": list_role_tags,
}
