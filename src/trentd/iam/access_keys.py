"""Access keys of IAM users: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey,
GetAccessKeyLastUsed (the uses the authenticator notes, auth/key_usage.py).

The secret is answered once, by CreateAccessKey, and stored wrapped under the root key
(auth/principals.py); audit events never show it (protocol/redaction.py). An Inactive key
authenticates nothing on any service (store: ``get_access_key`` reads active keys only); the
change reaches every node's credential cache within a second (auth/credential_cache.py).
"""

from __future__ import annotations

from ..auth import principals
from . import common
from .users import caller_user_name

MAX_KEYS_PER_USER = 2


def _key_missing(access_key_id: str):
    return common.no_such_entity(f"The Access Key with id {access_key_id} cannot be found.")


def create_access_key(svc, call, request: dict) -> dict:
    name = caller_user_name(call, request)
    common.authorized_entity(svc, call, "user", name)
    with common.writing(svc, call) as tx:
        user = common.existing(tx, call, "user", name)
        if len(tx.iam_access_keys(user.arn)) >= MAX_KEYS_PER_USER:
            raise common.limit_exceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")
        access_key_id, secret = principals.create_access_key(tx, svc.root_key, user.arn)
        created = next(c for k, _, c in tx.iam_access_keys(user.arn) if k == access_key_id)
    return {"AccessKey": {"UserName": user.name, "AccessKeyId": access_key_id, "Status": "Active",
                          "SecretAccessKey": secret, "CreateDate": created}}


def list_access_keys(svc, call, request: dict) -> dict:
    user = common.authorized_entity(svc, call, "user", caller_user_name(call, request))
    with svc.store.read() as tx:
        keys = [{"UserName": user.name, "AccessKeyId": key, "Status": status, "CreateDate": created}
                for key, status, created in tx.iam_access_keys(user.arn)]
    return common.page(keys, request, "AccessKeyMetadata")


def _owned_key(tx, call, user_name: str, access_key_id: str) -> str:
    user = common.existing(tx, call, "user", user_name)
    if tx.access_key_owner(access_key_id) != user.arn:
        raise _key_missing(access_key_id)
    return user.arn


def update_access_key(svc, call, request: dict) -> dict:
    name = caller_user_name(call, request)
    common.authorized_entity(svc, call, "user", name)
    with common.writing(svc, call) as tx:
        _owned_key(tx, call, name, request["AccessKeyId"])
        tx.set_access_key_status(request["AccessKeyId"], request["Status"])
    return {}


def delete_access_key(svc, call, request: dict) -> dict:
    name = caller_user_name(call, request)
    common.authorized_entity(svc, call, "user", name)
    with common.writing(svc, call) as tx:
        _owned_key(tx, call, name, request["AccessKeyId"])
        tx.delete_access_key(request["AccessKeyId"])
    return {}


def get_access_key_last_used(svc, call, request: dict) -> dict:
    """When, on which service and in which Region the key last signed a request (auth/key_usage.py:
    accurate to about a second); a key never used: "N/A", as AWS answers."""
    access_key_id = request["AccessKeyId"]
    with svc.store.read() as tx:
        owner = tx.access_key_owner(access_key_id)
        used = tx.access_key_last_used(access_key_id)
    if owner is None or owner.split(":")[4] != call.account:
        common.authorize(svc, call, common.entity_arn(call.account, "user", "*"))
        raise _key_missing(access_key_id)
    common.authorize(svc, call, owner)
    last_used = {"ServiceName": "N/A", "Region": "N/A"}
    if used is not None:
        last_used = {"LastUsedDate": used[0], "ServiceName": used[1], "Region": used[2]}
    return {"UserName": owner.rsplit("/", 1)[1], "AccessKeyLastUsed": last_used}


HANDLERS = {
    "CreateAccessKey": create_access_key, "ListAccessKeys": list_access_keys, "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key, "GetAccessKeyLastUsed": get_access_key_last_used,
}
