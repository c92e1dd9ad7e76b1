"""Managed policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, their versions
(CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions, DeletePolicyVersion,
SetDefaultPolicyVersion) and tags.

They are the policies ``trentd policies create`` makes and STS's PolicyArns name (the table
``managed_policies``, whose ``document`` is the default version's). AWS's own managed policies
(account ``aws``, seeded by migration 0012) can be read and attached, never changed.
"""

from __future__ import annotations

import re

from ..errors import AWSError
from ..auth.policy import checked_identity_policy
from . import common

MAX_VERSIONS = 5
_POLICY_ARN = re.compile(r"arn:aws:iam::(\d{12}|aws):policy/((?:[\x21-\x7e]*/)?)([\w+=,.@-]+)", re.ASCII)


def policy_out(tx, policy, tags: bool = False) -> dict:
    out = {"PolicyName": policy.name, "PolicyId": policy.policy_id or common.entity_id("policy", policy.arn),
           "Arn": policy.arn, "Path": policy.path, "DefaultVersionId": policy.default_version,
           "AttachmentCount": len(tx.policy_attachments(policy.arn)), "PermissionsBoundaryUsageCount": 0,
           "IsAttachable": True, "Description": policy.description, "CreateDate": policy.created,
           "UpdateDate": policy.updated or policy.created}
    if tags:
        out["Tags"] = common.tag_list(tx, policy.arn) or None
    return out


def policy_missing(arn: str) -> AWSError:
    return common.no_such_entity(f"Policy {arn} was not found.")


def visible_policy(tx, call, arn: str):
    """The policy, if the caller's account or AWS owns it."""
    match = _POLICY_ARN.fullmatch(arn)
    policy = tx.managed_policy_record(arn) if match and match[1] in (call.account, "aws") else None
    if policy is None:
        raise policy_missing(arn)
    return policy


def own_policy(tx, call, arn: str):
    """A policy the caller's account may change: AWS managed policies are not."""
    policy = visible_policy(tx, call, arn)
    if policy.account != call.account:
        raise AWSError("AccessDeniedException", f"User: {call.shown_arn} is not authorized to perform: "
                                                f"{call.action} on resource: policy {arn}", 403)
    return policy


def create_policy(svc, call, request: dict) -> dict:
    name, path = request["PolicyName"], common.checked_path(request.get("Path"))
    arn = f"arn:aws:iam::{call.account}:policy/{path[1:]}{name}"
    common.authorize_creation(svc, call, arn, "iam:TagPolicy")
    document = checked_identity_policy(request["PolicyDocument"])
    common.checked_managed_size(document)
    with common.writing(svc, call) as tx:
        if tx.find_managed_policy(call.account, name) is not None:
            raise common.entity_exists(f"A policy called {name} already exists. Duplicate names are not allowed.")
        tx.insert_managed_policy(arn, call.account, name, document, svc.clock.now(),
                                 policy_id=common.new_unique_id("policy"), path=path,
                                 description=request.get("Description"))
        common.put_tags(tx, arn, request.get("Tags", []), "policy", name)
        return {"Policy": policy_out(tx, tx.managed_policy_record(arn), tags=bool(request.get("Tags")))}


def get_policy(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    with svc.store.read() as tx:
        return {"Policy": policy_out(tx, visible_policy(tx, call, arn), tags=True)}


def list_policies(svc, call, request: dict) -> dict:
    common.authorize(svc, call, f"arn:aws:iam::{call.account}:policy/*")
    scope = request.get("Scope", "All")
    accounts = {"All": (call.account, "aws"), "AWS": ("aws",), "Local": (call.account,)}[scope]
    prefix = request.get("PathPrefix", "/")
    with svc.store.read() as tx:
        shown = [policy_out(tx, p) for p in tx.managed_policy_records(accounts) if p.path.startswith(prefix)]
    if request.get("OnlyAttached"):
        shown = [p for p in shown if p["AttachmentCount"]]
    return common.page(shown, request, "Policies")


def delete_policy(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    with common.writing(svc, call) as tx:
        policy = own_policy(tx, call, arn)
        if tx.policy_attachments(arn):
            raise common.delete_conflict("Cannot delete a policy attached to entities.")
        if len(tx.policy_versions(arn)) > 1:
            raise common.delete_conflict("This policy has more than one version. Before you delete a policy, you "
                                         "must delete the policy's versions. The default version is deleted with "
                                         "the policy.")
        tx.delete_managed_policy(policy.arn)
    return {}


# --- versions --------------------------------------------------------------------------------------
def _version_out(row, default: str, document: bool) -> dict:
    version_id, text, created = row
    out = {"VersionId": version_id, "IsDefaultVersion": version_id == default, "CreateDate": created}
    if document:
        out["Document"] = common.encoded(text)
    return out


def _version(tx, arn: str, version_id: str):
    for row in tx.policy_versions(arn):
        if row[0] == version_id:
            return row
    raise common.no_such_entity(f"Policy {arn} version {version_id} does not exist or is not attachable.")


def create_policy_version(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    document = checked_identity_policy(request["PolicyDocument"])
    common.checked_managed_size(document)
    with common.writing(svc, call) as tx:
        policy = own_policy(tx, call, arn)
        if len(tx.policy_versions(arn)) >= MAX_VERSIONS:
            raise common.limit_exceeded(f"A managed policy can have up to {MAX_VERSIONS} versions. Before you "
                                        f"create a new version, you must delete an existing version.")
        version_id, now = f"v{policy.next_version}", svc.clock.now()
        tx.insert_policy_version(arn, version_id, document, now)
        default = policy.default_version
        if request.get("SetAsDefault"):
            tx.set_default_policy_version(arn, version_id, document, now)
            default = version_id
        return {"PolicyVersion": _version_out((version_id, document, now), default, document=True)}


def get_policy_version(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    with svc.store.read() as tx:
        policy = visible_policy(tx, call, arn)
        row = _version(tx, arn, request["VersionId"])
    return {"PolicyVersion": _version_out(row, policy.default_version, document=True)}


def list_policy_versions(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    with svc.store.read() as tx:
        policy = visible_policy(tx, call, arn)
        versions = [_version_out(row, policy.default_version, document=False) for row in tx.policy_versions(arn)]
    return common.page(versions, request, "Versions")


def delete_policy_version(svc, call, request: dict) -> dict:
    arn, version_id = request["PolicyArn"], request["VersionId"]
    common.authorize(svc, call, arn)
    with common.writing(svc, call) as tx:
        policy = own_policy(tx, call, arn)
        _version(tx, arn, version_id)
        if version_id == policy.default_version:
            raise common.delete_conflict("Cannot delete the default version of a policy.")
        tx.delete_policy_version(arn, version_id)
    return {}


def set_default_policy_version(svc, call, request: dict) -> dict:
    arn, version_id = request["PolicyArn"], request["VersionId"]
    common.authorize(svc, call, arn)
    with common.writing(svc, call) as tx:
        own_policy(tx, call, arn)
        row = _version(tx, arn, version_id)
        tx.set_default_policy_version(arn, version_id, row[1], svc.clock.now())
    return {}


# --- tags ------------------------------------------------------------------------------------------
def tag_policy(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    with common.writing(svc, call) as tx:
        policy = own_policy(tx, call, arn)
        common.put_tags(tx, arn, request["Tags"], "policy", policy.name)
    return {}


def untag_policy(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    with common.writing(svc, call) as tx:
        common.untag(tx, own_policy(tx, call, arn).arn, request["TagKeys"])
    return {}


def list_policy_tags(svc, call, request: dict) -> dict:
    arn = request["PolicyArn"]
    common.authorize(svc, call, arn)
    with svc.store.read() as tx:
        visible_policy(tx, call, arn)
        return common.page(common.tag_list(tx, arn), request, "Tags")


HANDLERS = {
    "CreatePolicy": create_policy, "GetPolicy": get_policy, "ListPolicies": list_policies,
    "DeletePolicy": delete_policy, "CreatePolicyVersion": create_policy_version,
    "GetPolicyVersion": get_policy_version, "ListPolicyVersions": list_policy_versions,
    "DeletePolicyVersion": delete_policy_version, "SetDefaultPolicyVersion": set_default_policy_version,
    "TagPolicy": tag_policy, "UntagPolicy": untag_policy, "ListPolicyTags": list_policy_tags,
}
