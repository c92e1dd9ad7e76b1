"""Key management: CreateKey, DescribeKey, ListKeys, Enable/DisableKey, UpdateKeyDescription,
Schedule/CancelKeyDeletion, and the sweep that really deletes keys when their window passes."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import uuid

from ..crypto import asymmetric, specs
from ..errors import AWSError, validation
from ..keydomain import external, managed, multiregion
from ..keydomain.materials import cancelled_state, expiration_fields, record_first_material
from ..keydomain.metadata import key_metadata
from ..keydomain.policy import default_policy
from ..keydomain.tags import check_new_tags
from ..store.errors import Duplicate
from ..store.lifecycle import RotationRecord
from ..store.records import AliasRecord, KeyRecord
from .paging import decode_marker, page
from .policy_rules import check_lockout, check_policy
from .service import operation

log = logging.getLogger("trentd.kms")

MAX_KEYS_PER_REGION = 100_000
DAY = 86_400.0
_MOST_KEYS_NAMED = 2  # by one request: ReEncrypt's SourceKeyId and DestinationKeyId


def _spec_and_usage(req: dict) -> tuple[specs.KeySpec, str]:
    name = req.get("KeySpec")
    legacy = req.get("CustomerMasterKeySpec")
    if name and legacy and name != legacy:
        raise validation("You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
                         "CustomerMasterKeySpec is deprecated.")
    spec = specs.KEY_SPECS[name or legacy or "SYMMETRIC_DEFAULT"]
    usage = req.get("KeyUsage") or spec.default_usage
    if usage is None:
        raise validation("You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
    if usage not in spec.algorithms:
        raise validation(f"KeyUsage {usage} is not compatible with KeySpec {spec.name}")
    if not spec.supported:
        raise AWSError("UnsupportedOperationException", f"KeySpec {spec.name} is not supported by trentd.")
    return spec, usage


def _generate_material(spec: specs.KeySpec) -> bytes:
    if spec.symmetric:
        return secrets.token_bytes(spec.details["key_bytes"])
    return asymmetric.generate_material(spec.name)


@operation("CreateKey")
def create_key(svc, caller, req):
    spec, usage = _spec_and_usage(req)
    origin = req.get("Origin", "AWS_KMS")
    if origin not in ("AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", external.ORIGIN):
        raise AWSError("UnsupportedOperationException", f"Origin {origin} is not supported by trentd yet.")
    multi_region = bool(req.get("MultiRegion"))
    svc.authorize_account(caller)
    tags = check_new_tags(req.get("Tags", []))
    # A key in an external key store: validated, and its external key checked through the proxy,
    # before the transaction (AWS_CLOUDHSM answers UnsupportedOperationException there).
    xks_key = external.check_create_key(svc, caller, req, spec.name, usage, origin)
    # EXTERNAL keys wait for ImportKeyMaterial; others get material before the transaction (RSA
    # generation is slow). A key in an external key store has its own material too: the inner
    # layer of its double encryption.
    material = _generate_material(spec) if origin != "EXTERNAL" else None
    key_id = multiregion.new_key_id() if multi_region else str(uuid.uuid4())
    with svc.store.write() as tx:
        if tx.count_keys(caller.account, caller.region) >= MAX_KEYS_PER_REGION:
            raise AWSError("LimitExceededException",
                           f"The request was rejected because the maximum number of keys ({MAX_KEYS_PER_REGION}) "
                           "in this account and Region has been reached.")
        key = KeyRecord(
            account=caller.account, region=caller.region, key_id=key_id, created=svc.clock.now(),
            description=req.get("Description", ""), key_spec=spec.name, key_usage=usage, origin=origin,
            key_state="Enabled" if material is not None else "PendingImport", deletion_date=None,
            multi_region=multi_region,
            policy=default_policy(caller.account),
            current_material=None,
        )
        if "Policy" in req:
            key.policy = check_policy(svc, tx, caller, req["Policy"])
            check_lockout(svc, tx, caller, key, key.policy)
        if material is not None:
            key.current_material = svc.new_material(tx, caller.account, key_id, material)
        if xks_key is not None:
            external.bind_key(tx, caller, key, xks_key)
        tx.insert_key(key)
        if multi_region:
            multiregion.created(tx, key)
        if material is not None:
            record_first_material(tx, key, key.created)
        for tag_key, tag_value in tags.items():
            tx.put_tag(key, tag_key, tag_value)
    return {"KeyMetadata": key_metadata(key)}


@operation("DescribeKey")
def describe_key(svc, caller, req):
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"], aliases=True)
        meta = key_metadata(key)
        if key.origin == "EXTERNAL":  # ExpirationModel and ValidTo of the imported material
            meta.update(expiration_fields(tx, key))
    return {"KeyMetadata": meta}


@operation("ListKeys")
def list_keys(svc, caller, req):
    svc.authorize_account(caller)
    limit = req.get("Limit", 100)
    after = decode_marker(req.get("Marker"))
    with svc.store.read() as tx:
        rows = tx.list_keys(caller.account, caller.region, after, limit + 1)
    now = svc.clock.now()
    rows, more = page(rows, limit, lambda k: k.key_id)
    keys = [{"KeyId": k.key_id, "KeyArn": k.arn} for k in rows if not (k.deletion_date and k.deletion_date <= now)]
    return {"Keys": keys, **more}


def _set_enabled(svc, caller, req, enabled: bool):
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])  # NOT_PENDING: neither pending deletion nor import
        tx.update_key(key, key_state="Enabled" if enabled else "Disabled")


@operation("EnableKey")
def enable_key(svc, caller, req):
    _set_enabled(svc, caller, req, True)


@operation("DisableKey")
def disable_key(svc, caller, req):
    _set_enabled(svc, caller, req, False)


@operation("UpdateKeyDescription")
def update_key_description(svc, caller, req):
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        tx.update_key(key, description=req["Description"])


@operation("ScheduleKeyDeletion")
def schedule_key_deletion(svc, caller, req):
    window = req.get("PendingWindowInDays", 30)
    if not 7 <= window <= 30:  # the model allows 1-365; KMS enforces 7-30 with this text
        raise validation("PendingWindowInDays must be between 7 and 30")
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        if multiregion.waits_for_replicas(svc, tx, key, window):
            # A primary with replicas: its waiting period starts when the last replica is deleted.
            return {"KeyId": key.arn, "KeyState": "PendingReplicaDeletion", "PendingWindowInDays": window}
        deletion_date = svc.clock.now() + window * DAY
        tx.update_key(key, key_state="PendingDeletion", deletion_date=deletion_date)
    return {"KeyId": key.arn, "DeletionDate": deletion_date, "KeyState": "PendingDeletion",
            "PendingWindowInDays": window}


@operation("CancelKeyDeletion")
def cancel_key_deletion(svc, caller, req):
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        multiregion.cancelled(tx, key)
        # AWS leaves a key whose deletion was cancelled Disabled, whatever it was before (an
        # EXTERNAL key without its material: PendingImport).
        tx.update_key(key, key_state=cancelled_state(tx, key), deletion_date=None)
    return {"KeyId": key.arn}


def create_managed_key(svc, account: str, region: str, alias_name: str) -> None:
    """Create the AWS managed key of a predefined alias (keydomain/managed.py), exactly once: key and
    alias are written in one transaction, which on SQLite and PostgreSQL alike is serialised with
    every other write of the account and Region, so a racing worker or node finds the alias the
    first one wrote and creates nothing; the alias's primary key would refuse a second one."""
    service = managed.service_of(alias_name)
    assert service is not None, f"{alias_name} is not a predefined alias"
    key_id = str(uuid.uuid4())
    material = secrets.token_bytes(specs.KEY_SPECS["SYMMETRIC_DEFAULT"].details["key_bytes"])
    try:
        with svc.store.write() as tx:
            if tx.get_alias(account, region, alias_name) is not None:
                return  # another request created it first
            now = svc.clock.now()
            key = KeyRecord(
                account=account, region=region, key_id=key_id, created=now, description=managed.description(service),
                key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", origin="AWS_KMS", key_state="Enabled",
                deletion_date=None, multi_region=False, policy=managed.policy(account, region, service),
                current_material=None, key_manager="AWS")
            key.current_material = svc.new_material(tx, account, key_id, material)
            tx.insert_key(key)
            record_first_material(tx, key, now)
            period = managed.ROTATION_PERIOD_DAYS
            tx.put_rotation(RotationRecord(account, region, key_id, enabled=True, period_days=period,
                                           next_rotation=now + period * DAY, on_demand_count=0))
            tx.insert_alias(AliasRecord(account, region, alias_name, key_id, now, now))
    except Duplicate:
        return  # the alias decided: the other writer's key is the one
    log.info("created AWS managed key %s for %s", key.arn, alias_name)


def _creating_managed_keys(handler):
    def run(svc, caller, req):
        for _ in range(_MOST_KEYS_NAMED):  # one creation per missing key
            try:
                return handler(svc, caller, req)
            except managed.ManagedKeyMissing as missing:
                caller.resources.clear()  # the next attempt records the keys it touches again
                create_managed_key(svc, caller.account, caller.region, missing.alias_name)
        return handler(svc, caller, req)

    run.creates_managed_keys = True
    return run


def create_managed_keys_on_first_use(operations: dict) -> None:
    """Wrap every handler of the operation table so that naming a predefined alias whose AWS
    managed key does not exist yet creates it, then answers as if it had existed (idempotent)."""
    for name, row in operations.items():
        if not getattr(row.handler, "creates_managed_keys", False):
            operations[name] = dataclasses.replace(row, handler=_creating_managed_keys(row.handler))


def sweep_deletions(svc, batch: int = 100) -> int:
    """Delete every key whose deletion date has passed; returns how many went."""
    deleted = 0
    while True:
        with svc.store.write() as tx:
            due = tx.keys_due_for_deletion(svc.clock.now(), batch)
            for key in due:
                tx.delete_key(key)
        for key in due:  # after the commit: one line per key, from the one node that deleted it
            log.info("deleted key %s: its deletion window passed", key.arn)
        deleted += len(due)
        if len(due) < batch:
            return deleted
