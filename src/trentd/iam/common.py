"""What every IAM family shares: AWS's errors, ARNs and ids, authorization, paging, tags, and
policy documents as IAM checks and answers them (URL-encoded JSON)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from ..auth.identity import ID_PREFIX as KIND_PREFIX
from ..auth.identity import base_context, user_id
from ..auth.identity import new_unique_id as new_unique_id  # new entities' ids (users, roles, groups, policies)
from ..errors import AWSError
from ..store.errors import Duplicate
from ..store.records import IamEntity

# The IAM model's statuses for its errors (botocore's iam service-2).
NOT_FOUND, CONFLICT = 404, 409
DEFAULT_MAX_ITEMS = 100
MAX_TAGS = 50
_PATH = re.compile(r"/(?:[\x21-\x7e]*/)?", re.ASCII)


def no_such_entity(message: str) -> AWSError:
    return AWSError("NoSuchEntity", message, NOT_FOUND)


def entity_exists(message: str) -> AWSError:
    return AWSError("EntityAlreadyExists", message, CONFLICT)


def delete_conflict(message: str) -> AWSError:
    return AWSError("DeleteConflict", message, CONFLICT)


def limit_exceeded(message: str) -> AWSError:
    return AWSError("LimitExceeded", message, CONFLICT)


def invalid_input(message: str) -> AWSError:
    return AWSError("InvalidInput", message)


def kind_title(kind: str) -> str:
    return kind.capitalize()


def missing(kind: str, name: str) -> AWSError:
    """AWS: "The user with name X cannot be found." (users, roles, groups)."""
    return no_such_entity(f"The {kind} with name {name} cannot be found.")


# --- ARNs and ids ----------------------------------------------------------------------------
def entity_arn(account: str, kind: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:{kind}/{path[1:]}{name}"


def checked_path(path: str | None) -> str:
    path = path or "/"
    if not _PATH.fullmatch(path):
        raise AWSError("ValidationError", "The specified value for path is invalid. It must begin and end with / "
                                          "and contain only alphanumeric characters and/or / characters.")
    return path


def entity_id(kind: str, arn: str) -> str:
    """The id of a row made before schema 12, which has none stored: derived from its ARN (users
    and roles: as GetCallerIdentity, audit events and ``aws:userid`` have always shown it). New
    entities get ``new_unique_id``; a rename stores the derived one (an id never changes)."""
    if kind in ("user", "role"):
        return user_id(arn)
    digest = hashlib.sha256(arn.encode()).digest()
    return KIND_PREFIX[kind] + base64.b32encode(digest).decode()[:17]


def shown_id(entity: IamEntity) -> str:
    """The stored id, the same the caller's credentials carry (auth/identity.py stored_user_id)."""
    return entity.entity_id or entity_id(entity.kind, entity.arn)


# --- authorization ---------------------------------------------------------------------------
def authorize(svc, call, resource: str, action: str | None = None, resource_tags: dict | None = None) -> None:
    """``iam:<Action>`` (or ``action``) on ``resource`` by the caller's identity policies, with
    the request's IAM condition keys (the bootstrap administrator's allows everything; --dev:
    every caller is its account's administrator)."""
    keys = request_keys(call.request or {})
    keys.update({f"aws:resourcetag/{k.lower()}": v for k, v in (resource_tags or {}).items()})
    svc.authorizer.check_account(call, action or call.action, resource, base_context(call.caller, None, keys))


def request_keys(request: dict) -> dict:
    """Condition keys a request carries (IAM's service authorization reference): the tags it
    sets or removes (aws:RequestTag/…, aws:TagKeys) and the managed policy it names
    (iam:PolicyARN)."""
    values: dict = {}
    tags = request.get("Tags") or []
    values.update({f"aws:requesttag/{t['Key'].lower()}": t["Value"] for t in tags})
    keys = [t["Key"] for t in tags] or request.get("TagKeys")
    if keys:
        values["aws:tagkeys"] = list(keys)
    if request.get("PolicyArn"):
        values["iam:policyarn"] = request["PolicyArn"]
    return values


def authorize_creation(svc, call, resource: str, tag_action: str) -> None:
    """A Create… call; with Tags it also needs the Tag… action (AWS: "To add tags when you create
    a user, you must also have iam:TagUser")."""
    authorize(svc, call, resource)
    if (call.request or {}).get("Tags"):
        authorize(svc, call, resource, tag_action)


def find(svc, call, kind: str, name: str) -> tuple[IamEntity | None, dict]:
    """The entity named and its tags, read for authorization (its path is part of its ARN, its
    tags are the aws:ResourceTag/… condition keys)."""
    with svc.store.read() as tx:
        entity = tx.find_iam_entity(call.account, kind, name)
        return entity, tx.iam_tags(entity.arn) if entity else {}


def authorized_entity(svc, call, kind: str, name: str) -> IamEntity:
    """Authorize the call on the user, role or group named, then require that it exists (AWS
    answers AccessDenied before NoSuchEntity)."""
    entity, tags = find(svc, call, kind, name)
    authorize(svc, call, entity.arn if entity else entity_arn(call.account, kind, name), resource_tags=tags)
    if entity is None:
        raise missing(kind, name)
    return entity


def existing(tx, call, kind: str, name: str) -> IamEntity:
    """The entity, read again in the write transaction that changes it."""
    entity = tx.find_iam_entity(call.account, kind, name)
    if entity is None:
        raise missing(kind, name)
    return entity


@contextmanager
def writing(svc, call) -> Iterator:
    """A write transaction that holds the account's IAM lock: names, quotas and dependants are
    checked and then written by one IAM writer of the account at a time, on every node. A unique
    name taken meanwhile by another door (an admin command) is EntityAlreadyExists, as on AWS."""
    try:
        with svc.store.write() as tx:
            tx.exclusive(f"iam:{call.account}")
            yield tx
    except Duplicate:
        raise entity_exists("An entity with that name already exists.") from None


# --- paging (Marker / MaxItems / IsTruncated) --------------------------------------------------
def page(items: list, request: dict, member: str) -> dict:
    """One page of ``items`` (in their listing order) under ``member``; the Marker is opaque."""
    start = _offset(request.get("Marker"))
    size = request.get("MaxItems") or DEFAULT_MAX_ITEMS
    chunk = items[start:start + size]
    out: dict = {member: chunk, "IsTruncated": start + size < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = base64.urlsafe_b64encode(f"trentd:{start + size}".encode()).decode()
    return out


def _offset(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix == "trentd" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise invalid_input("Invalid Marker.")


# --- tags ------------------------------------------------------------------------------------
def tag_list(tx, arn: str) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tx.iam_tags(arn).items()]


def put_tags(tx, arn: str, tags: list[dict], kind: str, name: str) -> None:
    current = tx.iam_tags(arn)
    new = {t["Key"]: t["Value"] for t in tags}
    if len({k.lower() for k in (*current, *new)}) > MAX_TAGS:
        raise limit_exceeded(f"The number of tags has reached the maximum limit for the {kind} {name}.")
    for key, value in new.items():
        tx.put_iam_tag(arn, key, value)


def untag(tx, arn: str, keys: list[str]) -> None:
    for key in keys:
        tx.delete_iam_tag(arn, key)


# --- policy documents ------------------------------------------------------------------------
def encoded(document: str) -> str:
    """A policy document as IAM answers it: URL-encoded JSON (botocore and Terraform decode it)."""
    return quote(document, safe="")


def policy_size(document: str) -> int:
    """A document's size as IAM counts it against its quotas: whitespace is not counted."""
    return sum(1 for ch in document if not ch.isspace())


MAX_MANAGED_POLICY_SIZE = 6144


def checked_managed_size(document: str) -> None:
    if policy_size(document) > MAX_MANAGED_POLICY_SIZE:
        raise limit_exceeded(f"Cannot exceed quota for PolicySize: {MAX_MANAGED_POLICY_SIZE}")


