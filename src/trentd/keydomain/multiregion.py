"""Multi-Region keys: primary and replicas, the MultiRegionConfiguration of KeyMetadata, and the
rules other families share (PendingReplicaDeletion, rotation on the primary only).

A multi-Region key (id ``mrk-`` + 32 hex) is one ``keys`` row per Region with the same key id;
the rows share key material (key_materials is per account and key id), key spec, usage, origin
and rotation, and have their own policy, description, tags, aliases, grants and key state.
The operations on them (ReplicateKey, UpdatePrimaryRegion) are kms/multiregion.py.

Decision (docs/design.md, "Multi-Region keys"): a primary scheduled for deletion while replicas
remain is PendingReplicaDeletion with no deletion date; when the last replica is deleted, its
waiting period starts then (PendingDeletion, DeletionDate = that moment + PendingWindowInDays).
"""

from __future__ import annotations

import uuid

from ..errors import AWSError
from ..store.records import KeyRecord, key_arn

PRIMARY, REPLICA = "PRIMARY", "REPLICA"


def new_key_id() -> str:
    return "mrk-" + uuid.uuid4().hex


def not_primary(key: KeyRecord) -> AWSError:
    """What AWS answers for ReplicateKey on a replica (recorded); used for every operation that
    only a primary may do."""
    return AWSError("UnsupportedOperationException", f"{key.arn} is not a multi-region primary key.")


# --- MultiRegionConfiguration ----------------------------------------------------------------
def load_configuration(svc, tx, key: KeyRecord) -> None:
    """A key loader (kms/service.py KEY_LOADERS): attach the key's MultiRegionConfiguration
    (live Regions only)."""
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


def metadata_fields(key: KeyRecord) -> dict:
    """The KeyMetadata members of a multi-Region key (metadata.key_metadata adds them)."""
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
