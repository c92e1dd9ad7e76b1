"""Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, and the job that starts the waiting
period of a primary whose last replica is gone. The rules about multi-Region keys that other
families share (MultiRegionConfiguration, PendingReplicaDeletion, rotation on the primary only)
are keydomain/multiregion.py.

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


from ..errors import AWSError, not_found, validation
from ..keydomain.materials import record_first_material
from ..keydomain.metadata import key_metadata
from ..keydomain.multiregion import is_replica, load_configuration, not_primary
from ..keydomain.policy import default_policy
from ..keydomain.tags import check_new_tags
from ..store.records import KeyRecord, key_arn
from .policy_rules import check_lockout, check_policy
from .service import KEY_LOADERS, operation

DAY = 86_400.0
MAX_KEYS_PER_REGION = 100_000

# A key read from the store shows its MultiRegionConfiguration.
KEY_LOADERS.append(load_configuration)


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
    """The primary key a request names; the caller checks its state (Service.check_key_state)
    after the request's own checks, as AWS does."""
    key = svc.resolve(tx, caller, key_id, check_state=False)
    if not key.multi_region or is_replica(key):
        raise not_primary(key)
    return key


@operation("ReplicateKey")
def replicate_key(svc, caller, req):
    target = req["ReplicaRegion"]
    tags = check_new_tags(req.get("Tags", []))
    with svc.store.write() as tx:
        tx.lock_regions(caller.account, (caller.region, target))
        key = _primary(svc, tx, caller, req["KeyId"])
        if target == key.region:
            raise validation(f"The replica Region {target} must differ from the Region of the primary key {key.arn}.")
        svc.check_key_state(caller, key)
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
        svc.check_key_state(caller, key)
        svc.check_key_state(caller, replica)
        tx.set_primary_region(key.account, key.key_id, target)
        tx.move_rotation(key.account, key.key_id, key.region, target)  # rotation lives with the primary
