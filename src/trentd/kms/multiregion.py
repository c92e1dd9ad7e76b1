"""Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, the MultiRegionConfiguration of
KeyMetadata, and the rules other families share (PendingReplicaDeletion, rotation on the
primary only).

A multi-Region key (id ``mrk-`` + 32 hex) is one ``keys`` row per Region with the same key id;
the rows share key material (key_materials is per account and key id), key spec, usage, origin
and rotation, and have their own policy, description, tags, aliases, grants and key state.
Ciphertext names no Region (docs/ciphertext.md), so a replica decrypts what its primary or
another replica encrypted: Decrypt finds (request Region, header account, key id).

Decisions (docs/design.md, "Multi-Region keys"):
- ReplicateKey and UpdatePrimaryRegion finish before they answer: a replica is Enabled (or
  PendingImport) at once, never Creating, and no key is ever left Updating.
- A primary scheduled for deletion while replicas remain is PendingReplicaDeletion with no
  deletion date; when the last replica is deleted, its waiting period starts then
  (PendingDeletion, DeletionDate = that moment + PendingWindowInDays).
"""

from __future__ import annotations

import uuid

from ..errors import AWSError, not_found, validation
from ..store.records import KeyRecord, key_arn
from .policies import check_lockout, check_policy, default_policy
from .service import KEY_LOADERS, operation
from .tags import check_new_tags

DAY = 86_400.0
PRIMARY, REPLICA = "PRIMARY", "REPLICA"
MAX_KEYS_PER_REGION = 100_000


def new_key_id() -> str:
    return "mrk-" + uuid.uuid4().hex


def not_primary(key: KeyRecord) -> AWSError:
    """What AWS answers for ReplicateKey on a replica (recorded); used for every operation that
    only a primary may do."""
    return AWSError("UnsupportedOperationException", f"{key.arn} is not a multi-region primary key.")


# --- MultiRegionConfiguration ----------------------------------------------------------------
def load_configuration(svc, tx, key: KeyRecord) -> None:
    """KEY_LOADERS entry: attach the key's MultiRegionConfiguration (live Regions only)."""
    if not key.multi_region:
        return
    now = svc.clock.now()
    primary = tx.get_primary_region(key.account, key.key_id) or key.region
    regions = [r for r, deletion in tx.key_regions(key.account, key.key_id) if deletion is None or deletion > now]
    if key.region not in regions:
        regions.append(key.region)
    key.multi_region_config = {
        "primary_region": primary,
        "pending_window": tx.get_replica_wait(key.account, key.key_id) if key.key_state == "PendingReplicaDeletion"
        else None,
        "configuration": {
            "MultiRegionKeyType": PRIMARY if key.region == primary else REPLICA,
            "PrimaryKey": {"Arn": key_arn(key.account, primary, key.key_id), "Region": primary},
            "ReplicaKeys": [{"Arn": key_arn(key.account, r, key.key_id), "Region": r}
                            for r in sorted(regions) if r != primary],
        },
    }


KEY_LOADERS.append(load_configuration)


def metadata_fields(key: KeyRecord) -> dict:
    """The KeyMetadata members of a multi-Region key (keys.key_metadata adds them)."""
    config = key.multi_region_config
    if not config:
        return {}
    out = {"MultiRegionConfiguration": config["configuration"]}
    if key.key_state == "PendingReplicaDeletion" and config["pending_window"] is not None:
        out["PendingDeletionWindowInDays"] = config["pending_window"]
    return out


def is_replica(key: KeyRecord) -> bool:
    return bool(key.multi_region and key.multi_region_config
                and key.multi_region_config["primary_region"] != key.region)


def rotation_region(key: KeyRecord) -> str:
    """Rotation is a shared property kept on the primary: where to read a key's rotation status."""
    return key.multi_region_config["primary_region"] if key.multi_region and key.multi_region_config else key.region


def require_primary(key: KeyRecord) -> None:
    """Automatic and on-demand rotation are set on the primary key only."""
    if is_replica(key):
        raise not_primary(key)


def created(tx, key: KeyRecord) -> None:
    """CreateKey with MultiRegion=true: the new key is its own primary."""
    tx.set_primary_region(key.account, key.key_id, key.region)
    key.multi_region_config = {
        "primary_region": key.region, "pending_window": None,
        "configuration": {"MultiRegionKeyType": PRIMARY,
                          "PrimaryKey": {"Arn": key.arn, "Region": key.region}, "ReplicaKeys": []},
    }


def shared_material(tx, key: KeyRecord, material_id: str) -> bool:
    """ImportKeyMaterial into one Region of a multi-Region key with imported material: every
    Region must import the same material (key_materials is shared). True when another Region
    already stored this material; IncorrectKeyMaterialException when they hold other material."""
    if not key.multi_region:
        return False
    held = tx.material_ids(key.account, key.key_id)
    if material_id in held:
        return True
    if held:
        raise AWSError("IncorrectKeyMaterialException",
                       f"The key material is not the key material imported into the other Regions of multi-Region "
                       f"key {key.key_id}. Import the same key material into every Region.")
    return False


# --- deletion --------------------------------------------------------------------------------
def live_replicas(svc, tx, key: KeyRecord) -> list[str]:
    now = svc.clock.now()
    return [r for r, deletion in tx.key_regions(key.account, key.key_id)
            if r != key.region and (deletion is None or deletion > now)]


def waits_for_replicas(svc, tx, key: KeyRecord, window: int) -> bool:
    """ScheduleKeyDeletion of a primary that still has replicas: PendingReplicaDeletion, no
    deletion date yet (it starts when the last replica is gone). False for every other key."""
    if not key.multi_region or is_replica(key) or not live_replicas(svc, tx, key):
        return False
    tx.update_key(key, key_state="PendingReplicaDeletion", deletion_date=None)
    tx.set_replica_wait(key.account, key.key_id, window)
    return True


def cancelled(tx, key: KeyRecord) -> None:
    """CancelKeyDeletion: a primary no longer waits for its replicas."""
    if key.multi_region:
        tx.set_replica_wait(key.account, key.key_id, None)


def release_waiting_primaries(svc, batch: int = 100) -> int:
    """Background job: a primary in PendingReplicaDeletion whose last replica is gone starts its
    own waiting period (PendingDeletion). Returns how many did."""
    with svc.store.read() as tx:
        if not tx.primaries_waiting_for_replicas(1):
            return 0
    released = 0
    with svc.store.write() as tx:
        now = svc.clock.now()
        for account, key_id, primary, window in tx.primaries_waiting_for_replicas(batch):
            if any(r != primary and (deletion is None or deletion > now)
                   for r, deletion in tx.key_regions(account, key_id)):
                continue
            key = tx.get_key(account, primary, key_id)
            if key is not None and key.key_state == "PendingReplicaDeletion":
                tx.update_key(key, key_state="PendingDeletion", deletion_date=now + window * DAY)
                released += 1
            tx.set_replica_wait(account, key_id, None)
    return released


# --- operations ------------------------------------------------------------------------------
def _primary(svc, tx, caller, key_id: str) -> KeyRecord:
    key = svc.resolve(tx, caller, key_id)
    if not key.multi_region or is_replica(key):
        raise not_primary(key)
    return key


@operation("ReplicateKey")
def replicate_key(svc, caller, req):
    from .keys import key_metadata  # keys imports this module
    from .rotation import record_first_material

    target = req["ReplicaRegion"]
    tags = check_new_tags(req.get("Tags", []))
    with svc.store.write() as tx:
        tx.lock_regions(caller.account, (caller.region, target))
        key = _primary(svc, tx, caller, req["KeyId"])
        if target == key.region:
            raise validation(f"The replica Region {target} must differ from the Region of the primary key {key.arn}.")
        svc.require_not_pending_deletion(key)
        if tx.get_key(key.account, target, key.key_id) is not None:
            raise AWSError("AlreadyExistsException",
                           f"{key_arn(key.account, target, key.key_id)} already exists.")
        # kms:ReplicateKey on the primary (checked by resolve); kms:CreateKey in the replica Region.
        replica_caller = caller.acting("CreateKey", region=target)
        svc.authorize_account(replica_caller)
        if tx.count_keys(key.account, target) >= MAX_KEYS_PER_REGION:
            raise AWSError("LimitExceededException",
                           f"The request was rejected because the maximum number of keys ({MAX_KEYS_PER_REGION}) "
                           "in this account and Region has been reached.")
        now = svc.clock.now()
        replica = KeyRecord(
            account=key.account, region=target, key_id=key.key_id, created=now,
            description=req.get("Description", ""), key_spec=key.key_spec, key_usage=key.key_usage,
            origin=key.origin, key_state="Enabled" if key.current_material else "PendingImport", deletion_date=None,
            multi_region=True, policy=default_policy(key.account), current_material=key.current_material)
        if "Policy" in req:
            replica.policy = check_policy(svc, tx, replica_caller, req["Policy"])
            check_lockout(svc, tx, replica_caller, replica, replica.policy)
        tx.insert_key(replica)
        if replica.current_material and key.origin == "AWS_KMS":
            record_first_material(tx, replica, now)
        for tag_key, tag_value in tags.items():
            tx.put_tag(replica, tag_key, tag_value)
        load_configuration(svc, tx, replica)
    out = {"ReplicaKeyMetadata": key_metadata(replica), "ReplicaPolicy": replica.policy}
    if tags:  # AWS's answer has no ReplicaTags member when the replica has no tags
        out["ReplicaTags"] = [{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    return out


@operation("UpdatePrimaryRegion")
def update_primary_region(svc, caller, req):
    target = req["PrimaryRegion"]
    with svc.store.write() as tx:
        tx.lock_regions(caller.account, (caller.region, target))
        key = _primary(svc, tx, caller, req["KeyId"])
        if target == key.region:
            raise validation(f"{key.arn} is already the primary key; PrimaryRegion must name a Region of one of "
                             "its replicas.")
        replica = svc.live_key(tx, key.account, target, key.key_id)
        if replica is None:
            raise not_found(f"Key '{key_arn(key.account, target, key.key_id)}' does not exist")
        # kms:UpdatePrimaryRegion on the primary (resolve) and on the replica that becomes primary.
        svc.authorize(tx, caller, replica, caller.action)
        svc.require_not_pending_deletion(key)
        svc.require_not_pending_deletion(replica)
        tx.set_primary_region(key.account, key.key_id, target)
        tx.move_rotation(key.account, key.key_id, key.region, target)  # rotation lives with the primary
