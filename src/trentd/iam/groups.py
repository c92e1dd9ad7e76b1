"""IAM groups: CreateGroup, GetGroup, ListGroups, UpdateGroup, AddUserToGroup,
RemoveUserFromGroup, ListGroupsForUser, DeleteGroup.

A group is a row of ``principals`` (kind 'group'; it never authenticates). Its inline and
attached policies apply to its members: the store's ``identity_policies`` adds them to each
member's own (store/tx.py).
"""

from __future__ import annotations

from ..store.records import IamEntity
from . import common
from .users import rename, user_out


def group_out(group: IamEntity) -> dict:
    return {"Path": group.path, "GroupName": group.name, "GroupId": common.shown_id(group), "Arn": group.arn,
            "CreateDate": group.created}


def create_group(svc, call, request: dict) -> dict:
    name, path = request["GroupName"], common.checked_path(request.get("Path"))
    arn = common.entity_arn(call.account, "group", name, path)
    common.authorize(svc, call, arn)
    with common.writing(svc, call) as tx:
        if tx.find_iam_entity(call.account, "group", name) is not None:
            raise common.entity_exists(f"Group with name {name} already exists.")
        group = IamEntity(arn, call.account, name, "group", svc.clock.now(), common.new_unique_id("group"), path)
        tx.insert_iam_entity(group)
    return {"Group": group_out(group)}


def get_group(svc, call, request: dict) -> dict:
    group = common.authorized_entity(svc, call, "group", request["GroupName"])
    with svc.store.read() as tx:
        members = [tx.iam_entity(arn) for arn in tx.group_members(group.arn)]
        users = [user_out(tx, u) for u in sorted((m for m in members if m), key=lambda u: u.name.lower())]
    return {"Group": group_out(group), **common.page(users, request, "Users")}


def list_groups(svc, call, request: dict) -> dict:
    common.authorize(svc, call, common.entity_arn(call.account, "group", "*"))
    with svc.store.read() as tx:
        groups = [group_out(g) for g in tx.list_iam_entities(call.account, "group", request.get("PathPrefix", "/"))]
    return common.page(groups, request, "Groups")


def update_group(svc, call, request: dict) -> dict:
    return rename(svc, call, request, "group", request["GroupName"], request.get("NewGroupName"))


def _membership(svc, call, request: dict, add: bool) -> dict:
    group_name, user_name = request["GroupName"], request["UserName"]
    common.authorized_entity(svc, call, "group", group_name)
    with common.writing(svc, call) as tx:
        group = common.existing(tx, call, "group", group_name)
        user = common.existing(tx, call, "user", user_name)
        if add:
            tx.add_group_member(group.arn, user.arn)
        elif not tx.remove_group_member(group.arn, user.arn):
            raise common.no_such_entity(f"User {user_name} does not belong to group {group_name}.")
    return {}


def add_user_to_group(svc, call, request: dict) -> dict:
    return _membership(svc, call, request, add=True)


def remove_user_from_group(svc, call, request: dict) -> dict:
    return _membership(svc, call, request, add=False)


def list_groups_for_user(svc, call, request: dict) -> dict:
    user = common.authorized_entity(svc, call, "user", request["UserName"])
    with svc.store.read() as tx:
        groups = [tx.iam_entity(arn) for arn in tx.user_groups(user.arn)]
    shown = [group_out(g) for g in sorted((g for g in groups if g), key=lambda g: g.name.lower())]
    return common.page(shown, request, "Groups")


def delete_group(svc, call, request: dict) -> dict:
    name = request["GroupName"]
    common.authorized_entity(svc, call, "group", name)
    with common.writing(svc, call) as tx:
        group = common.existing(tx, call, "group", name)
        if tx.group_members(group.arn):
            raise common.delete_conflict("Cannot delete entity, must remove users from group first.")
        if tx.inline_policies(group.arn):
            raise common.delete_conflict("Cannot delete entity, must delete policies first.")
        if tx.attached_policies(group.arn):
            raise common.delete_conflict("Cannot delete entity, must detach all policies first.")
        tx.delete_principal(group.arn)
    return {}


HANDLERS = {
    "CreateGroup": create_group, "GetGroup": get_group, "ListGroups": list_groups, "UpdateGroup": update_group,
    "AddUserToGroup": add_user_to_group, "RemoveUserFromGroup": remove_user_from_group,
    "ListGroupsForUser": list_groups_for_user, "DeleteGroup": delete_group,
}
