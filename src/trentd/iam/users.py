"""IAM users: CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser and their tags.

A user is a row of ``principals`` (kind 'user'), the same row ``trentd principals create`` makes:
either door sees what the other made.
"""

from __future__ import annotations

from ..errors import AWSError
from ..store.records import IamEntity
from . import common

NON_USER = "Must specify userName when calling with non-User credentials"


def user_out(tx, user: IamEntity, tags: bool = False) -> dict:
    out = {"Path": user.path, "UserName": user.name, "UserId": common.shown_id(user), "Arn": user.arn,
           "CreateDate": user.created}
    if tags:
        out["Tags"] = common.tag_list(tx, user.arn) or None
    return out


def caller_user_name(call, request: dict) -> str:
    """The UserName asked for, or the calling user's own (AWS: only a user may leave it out)."""
    name = request.get("UserName")
    if name is not None:
        return name
    kind, _, rest = call.principal_arn.split(":", 5)[5].partition("/")
    if kind != "user" or call.session is not None and call.session.is_role:
        raise AWSError("ValidationError", NON_USER)
    return rest.rsplit("/", 1)[-1]


def create_user(svc, call, request: dict) -> dict:
    name, path = request["UserName"], common.checked_path(request.get("Path"))
    arn = common.entity_arn(call.account, "user", name, path)
    common.authorize_creation(svc, call, arn, "iam:TagUser")
    with common.writing(svc, call) as tx:
        if tx.find_iam_entity(call.account, "user", name) is not None:
            raise common.entity_exists(f"User with name {name} already exists.")
        user = IamEntity(arn, call.account, name, "user", svc.clock.now(), common.new_unique_id("user"), path)
        tx.insert_iam_entity(user)
        common.put_tags(tx, arn, request.get("Tags", []), "user", name)
        return {"User": user_out(tx, user, tags=bool(request.get("Tags")))}


def get_user(svc, call, request: dict) -> dict:
    user = common.authorized_entity(svc, call, "user", caller_user_name(call, request))
    with svc.store.read() as tx:
        return {"User": user_out(tx, user, tags=True)}


def list_users(svc, call, request: dict) -> dict:
    common.authorize(svc, call, common.entity_arn(call.account, "user", "*"))
    with svc.store.read() as tx:
        users = [user_out(tx, u) for u in tx.list_iam_entities(call.account, "user", request.get("PathPrefix", "/"))]
    return common.page(users, request, "Users")


def update_user(svc, call, request: dict) -> dict:
    return rename(svc, call, request, "user", request["UserName"], request.get("NewUserName"))


def rename(svc, call, request: dict, kind: str, name: str, new_name: str | None) -> dict:
    """UpdateUser and UpdateGroup: a new name and/or path; every row naming the old ARN moves."""
    entity = common.authorized_entity(svc, call, kind, name)
    new_name = new_name or entity.name
    new_path = common.checked_path(request.get("NewPath") or entity.path)
    new_arn = common.entity_arn(call.account, kind, new_name, new_path)
    if new_arn != entity.arn:
        common.authorize(svc, call, new_arn)  # AWS: the action must be allowed on both names
    with common.writing(svc, call) as tx:
        entity = common.existing(tx, call, kind, name)
        other = tx.find_iam_entity(call.account, kind, new_name)
        if other is not None and other.arn != entity.arn:
            raise common.entity_exists(f"{common.kind_title(kind)} with name {new_name} already exists.")
        tx.rename_iam_entity(entity.arn, new_arn, new_name, new_path, common.shown_id(entity))
    return {}


def delete_user(svc, call, request: dict) -> dict:
    name = request["UserName"]
    common.authorized_entity(svc, call, "user", name)
    with common.writing(svc, call) as tx:
        user = common.existing(tx, call, "user", name)
        if tx.iam_access_keys(user.arn):
            raise common.delete_conflict("Cannot delete entity, must delete access keys first.")
        if tx.inline_policies(user.arn):
            raise common.delete_conflict("Cannot delete entity, must delete policies first.")
        if tx.attached_policies(user.arn):
            raise common.delete_conflict("Cannot delete entity, must detach all policies first.")
        if tx.user_groups(user.arn):
            raise common.delete_conflict("Cannot delete entity, must remove users from group first.")
        tx.delete_principal(user.arn)
    return {}


# --- tags of users and roles -------------------------------------------------------------------
def tagger(kind: str, name_member: str):
    """Tag<Kind>, Untag<Kind> and List<Kind>Tags for users and roles."""

    def tag(svc, call, request: dict) -> dict:
        name = request[name_member]
        common.authorized_entity(svc, call, kind, name)
        with common.writing(svc, call) as tx:
            entity = common.existing(tx, call, kind, name)
            common.put_tags(tx, entity.arn, request["Tags"], kind, name)
        return {}

    def untag(svc, call, request: dict) -> dict:
        name = request[name_member]
        common.authorized_entity(svc, call, kind, name)
        with common.writing(svc, call) as tx:
            common.untag(tx, common.existing(tx, call, kind, name).arn, request["TagKeys"])
        return {}

    def list_tags(svc, call, request: dict) -> dict:
        entity = common.authorized_entity(svc, call, kind, request[name_member])
        with svc.store.read() as tx:
            return common.page(common.tag_list(tx, entity.arn), request, "Tags")

    return tag, untag, list_tags


tag_user, untag_user, list_user_tags = tagger("user", "UserName")

HANDLERS = {
    "CreateUser": create_user, "GetUser": get_user, "ListUsers": list_users, "UpdateUser": update_user,
    "DeleteUser": delete_user, "TagUser": tag_user, "UntagUser": untag_user, "ListUserTags": list_user_tags,
}
