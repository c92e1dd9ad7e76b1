"""Key material versions: the first material of a key, rotated material, imported material and
its expiry.

Every material a key ever held is a version (store/lifecycle.py ``MaterialVersion``) numbered in
order (``seq``); the key's current material is one of them. Generated material is version 0 at
CreateKey (or ReplicateKey); a rotation adds a version and makes it current; imported material
(Origin EXTERNAL) may expire (ValidTo) or be deleted, which leaves its version PENDING_IMPORT and
the key PendingImport until the same material is imported again.

The backing keys themselves are rows of ``key_materials``, wrapped under the root key by the
service (``svc.new_material``); a multi-Region key's Regions share them.
"""

from __future__ import annotations

import hashlib

from ..crypto import asymmetric, specs
from ..store.lifecycle import MaterialVersion
from ..store.records import KeyRecord
from ..store.rootkey import aad_for
from .states import PENDING_DELETION

EXPIRES, DOES_NOT_EXPIRE = "KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"
AUTOMATIC, ON_DEMAND = "AUTOMATIC", "ON_DEMAND"


def is_symmetric(key: KeyRecord) -> bool:
    """Only symmetric encryption keys hold several materials (and rotate)."""
    return specs.KEY_SPECS[key.key_spec].symmetric


# --- first and rotated material ------------------------------------------------------------
def record_first_material(tx, key: KeyRecord, now: float) -> None:
    """CreateKey: the key's first (generated) material is version 0."""
    assert key.current_material is not None, "a key's first material is stored before its version is recorded"
    tx.insert_material_version(MaterialVersion(
        key.account, key.region, key.key_id, key.current_material, 0, pending=False, present=True,
        rotation_date=None, rotation_type=None, expiration_model=None, valid_to=None, description=None,
        created=now))


def ensure_first_version(tx, account: str, region: str, key_id: str, material_id: str | None, created: float) -> None:
    """A key made before migration 0003 or by another path may have no row for its first
    material; give it one so the history is complete before anything is added to it."""
    if material_id and tx.get_material_version(account, region, key_id, material_id) is None:
        tx.insert_material_version(MaterialVersion(
            account, region, key_id, material_id, tx.next_material_seq(account, region, key_id), pending=False,
            present=True, rotation_date=None, rotation_type=None, expiration_model=None, valid_to=None,
            description=None, created=created))


def record_rotation(tx, account: str, region: str, key_id: str, material_id: str, now: float,
                    rotation_type: str) -> None:
    """A rotation (AUTOMATIC or ON_DEMAND) to fresh generated material: the next version."""
    tx.insert_material_version(MaterialVersion(
        account, region, key_id, material_id, tx.next_material_seq(account, region, key_id), pending=False,
        present=True, rotation_date=now, rotation_type=rotation_type, expiration_model=None, valid_to=None,
        description=None, created=now))


# --- imported material -----------------------------------------------------------------------
def material_id_for(account: str, key_id: str, material: bytes) -> str:
    """The KeyMaterialId of imported material: derived from the key and the material, so
    re-importing the same material gives the same id."""
    return hashlib.sha256(aad_for("trentd imported key material v1", account, key_id) + material).hexdigest()


def record_import(tx, key: KeyRecord, material_id: str, *, pending: bool, model: str, valid_to: float | None,
                  description: str | None, now: float) -> None:
    """ImportKeyMaterial of new material: the next version (pending rotation unless it is the
    key's first material)."""
    tx.insert_material_version(MaterialVersion(
        key.account, key.region, key.key_id, material_id, tx.next_material_seq(key.account, key.region, key.key_id),
        pending=pending, present=True, rotation_date=None, rotation_type=None, expiration_model=model,
        valid_to=valid_to, description=description, created=now))


def expiration_fields(tx, key: KeyRecord) -> dict:
    """KeyMetadata's ExpirationModel and ValidTo for an EXTERNAL key: from its imported material
    that is present and permanent; ValidTo is the earliest expiry among them."""
    present = [v for v in tx.material_versions(key.account, key.region, key.key_id) if v.present and not v.pending]
    if not present:
        return {}
    expiring = [v.valid_to for v in present if v.expiration_model == EXPIRES and v.valid_to is not None]
    if expiring:
        return {"ExpirationModel": EXPIRES, "ValidTo": min(expiring)}
    return {"ExpirationModel": DOES_NOT_EXPIRE}


def complete(tx, key: KeyRecord) -> bool:
    """Every permanent material of the key is present (so it can leave PendingImport)."""
    versions = [v for v in tx.material_versions(key.account, key.region, key.key_id) if not v.pending]
    return bool(versions) and all(v.present for v in versions)


def cancelled_state(tx, key: KeyRecord) -> str:
    """The state CancelKeyDeletion leaves: Disabled, or PendingImport for an EXTERNAL key whose
    material is missing (never imported, deleted or expired meanwhile)."""
    if key.origin == "EXTERNAL" and not complete(tx, key):
        return "PendingImport"
    return "Disabled"


# --- deleted and expired material ------------------------------------------------------------
def remove(tx, key_state: str, version: MaterialVersion) -> str | None:
    """Remove one material; returns the key's new state, or None when it stays as it is.
    Permanent material becomes PENDING_IMPORT and the key PendingImport (unless it is pending
    deletion); material pending rotation was never part of the key and simply goes."""
    tx.delete_material_row(version.account, version.key_id, version.material_id)
    if version.pending:
        tx.delete_material_version(version)
        return None
    tx.update_material_version(version, present=False)
    if key_state in (*PENDING_DELETION, "PendingImport"):
        return None
    return "PendingImport"


def forget(svc, account: str, key_id: str, material_id: str, symmetric: bool) -> None:
    """Drop deleted material from this process's caches (it is already gone from the store)."""
    svc.materials.discard((account, key_id, material_id))
    if not symmetric:
        asymmetric.clear_key_cache()
