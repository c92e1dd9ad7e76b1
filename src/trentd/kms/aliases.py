"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

Names are unique per account and Region; the database's primary key decides races between
concurrent CreateAlias calls, so exactly one wins on any number of workers or nodes.
"""

from __future__ import annotations

import re

from ..crypto import specs
from ..errors import AWSError, not_found, validation
from ..store.records import AliasRecord
from ..store.errors import Duplicate
from ..keydomain import managed
from .paging import decode_marker, page
from .service import operation

MAX_ALIASES_PER_KEY = 50
_ALIAS_CHARACTERS = re.compile(r"alias/[a-zA-Z0-9/_-]+", re.ASCII)


def _check_name(svc, caller, name: str) -> None:
    """Name rules, then the IAM half of alias permissions: AWS checks kms:<op> on the alias
    ARN against identity policies (and on the key against the key policy, in _target)."""
    if not name.startswith("alias/"):
        raise validation('Alias must start with the prefix "alias/". '
                         "Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
    if not _ALIAS_CHARACTERS.fullmatch(name):  # the model's pattern also lets ':' through
        raise validation(f"{name} contains invalid characters for an alias")
    if name.startswith("alias/aws/"):
        # Reserved for AWS managed keys; AWS answers NotAuthorizedException without a message.
        raise AWSError("NotAuthorizedException")
    svc.authorize_account(caller, resource=caller.alias_arn(name))


def _target(svc, tx, caller, target_key_id: str):
    key = svc.resolve(tx, caller, target_key_id)
    if tx.count_aliases(key.account, key.region, key.key_id) >= MAX_ALIASES_PER_KEY:
        raise AWSError("LimitExceededException",
                       f"Cannot exceed the limit of {MAX_ALIASES_PER_KEY} aliases for key {key.arn}.")
    return key


def _existing(svc, tx, caller, name: str) -> AliasRecord:
    alias = tx.get_alias(caller.account, caller.region, name)
    if alias is None or svc.live_key(tx, alias.account, alias.region, alias.key_id) is None:
        raise not_found(f"Alias {caller.alias_arn(name)} is not found.")
    return alias


@operation("CreateAlias")
def create_alias(svc, caller, req):
    name = req["AliasName"]
    _check_name(svc, caller, name)
    exists = AWSError("AlreadyExistsException", f"An alias with the name {caller.alias_arn(name)} already exists")
    try:
        with svc.store.write() as tx:
            key = _target(svc, tx, caller, req["TargetKeyId"])
            stale = tx.get_alias(caller.account, caller.region, name)
            if stale is not None:
                # An alias whose key's deletion date passed is gone, even before the sweeper runs.
                if svc.live_key(tx, stale.account, stale.region, stale.key_id) is not None:
                    raise exists
                tx.delete_alias(stale)
            now = svc.clock.now()
            tx.insert_alias(AliasRecord(caller.account, caller.region, name, key.key_id, now, now))
    except Duplicate:
        raise exists from None


def _kind(key) -> tuple[str, str]:
    family = specs.KEY_SPECS[key.key_spec].family
    kind = "SYMMETRIC" if family == "symmetric" else "HMAC" if family == "hmac" else "ASYMMETRIC"
    return kind, key.key_usage


@operation("UpdateAlias")
def update_alias(svc, caller, req):
    name = req["AliasName"]
    _check_name(svc, caller, name)
    with svc.store.write() as tx:
        alias = _existing(svc, tx, caller, name)
        key = _target(svc, tx, caller, req["TargetKeyId"])
        current = tx.get_key(alias.account, alias.region, alias.key_id)
        svc.authorize(tx, caller, current, caller.action)
        if _kind(current) != _kind(key):
            raise validation(
                f"Alias {name} cannot point to the new key: it must have the same key type and key usage as the "
                f"current one ({' '.join(_kind(current))}), not {' '.join(_kind(key))}.")
        tx.retarget_alias(alias, key.key_id, svc.clock.now())


@operation("DeleteAlias")
def delete_alias(svc, caller, req):
    name = req["AliasName"]
    _check_name(svc, caller, name)
    with svc.store.write() as tx:
        alias = _existing(svc, tx, caller, name)
        svc.authorize(tx, caller, tx.get_key(alias.account, alias.region, alias.key_id), caller.action)
        tx.delete_alias(alias)


@operation("ListAliases")
def list_aliases(svc, caller, req):
    svc.authorize_account(caller)
    limit = req.get("Limit", 50)
    after = decode_marker(req.get("Marker"))
    with svc.store.read() as tx:
        key_id = svc.resolve(tx, caller, req["KeyId"], authorize=False).key_id if "KeyId" in req else None
        stored = tx.list_aliases(caller.account, caller.region, after, limit + 1, key_id)
        rows = [a for a in stored if svc.live_key(tx, a.account, a.region, a.key_id) is not None]
    entries = [
        {"AliasName": a.name, "AliasArn": a.arn, "TargetKeyId": a.key_id,
         "CreationDate": a.created, "LastUpdatedDate": a.updated}
        for a in rows
    ]
    if key_id is None:
        entries = _with_predefined(caller, entries, stored, after, limit)
    entries, more = page(entries, limit, lambda e: e["AliasName"])
    return {"Aliases": entries, **more}


def _with_predefined(caller, entries: list[dict], stored: list, after: str, limit: int) -> list[dict]:
    """Merge into the listing, in name order, the predefined aliases whose AWS managed key does
    not exist yet (keydomain/managed.py): AliasName and AliasArn only, as AWS lists them. ``stored`` is
    what the store gave (``limit + 1`` rows after the marker); when it is full, names past its
    last one belong to later pages."""
    names = {a.name for a in stored}
    bound = stored[-1].name if len(stored) > limit else None
    missing = [{"AliasName": name, "AliasArn": caller.alias_arn(name)} for name in managed.ALIASES
               if name > after and name not in names and (bound is None or name < bound)]
    if not missing:
        return entries
    return sorted(entries + missing, key=lambda e: e["AliasName"])[:limit + 1]
