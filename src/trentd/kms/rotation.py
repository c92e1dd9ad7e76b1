"""Key rotation: Enable/DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
ListKeyRotations, and the job that rotates keys when their NextRotationDate passes.

A rotation adds key material and makes it current; the old material stays, so every older
ciphertext still decrypts (its header names the material it was sealed under). Only symmetric
encryption keys rotate: AWS_KMS keys get fresh material, EXTERNAL keys promote material imported
beforehand with ImportType NEW_KEY_MATERIAL (kms/imports.py). Automatic rotation is for AWS_KMS
keys only.

Decisions (docs/design.md, "Rotation and imported material"):
- RotateKeyOnDemand is synchronous: the new material is current when the call returns, so
  GetKeyRotationStatus never shows OnDemandRotationStartDate. ConflictException is answered when
  automatic rotation is due within 20 minutes (the model's documented case).
- The automatic schedule runs from the date rotation was enabled (or last rotated automatically):
  NextRotationDate = that date + RotationPeriodInDays. Disabled and pending-deletion keys do not
  rotate; an overdue key rotates at the first job run after it is enabled again, once, and its
  next date is then a full period later.
- At most 10 on-demand rotations per key (what AWS enforced when LocalStack recorded it; the
  current docs say 25).
"""

from __future__ import annotations

import logging
import secrets

from ..crypto import specs
from ..errors import AWSError, invalid_state
from ..keydomain.materials import AUTOMATIC, ON_DEMAND, ensure_first_version, record_rotation
from ..keydomain.multiregion import require_primary, rotation_region
from ..keydomain.states import PENDING_DELETION
from ..store.lifecycle import MaterialVersion, RotationRecord
from .paging import decode_marker, page
from .service import operation

log = logging.getLogger("trentd.kms")

DAY = 86_400.0
DEFAULT_PERIOD_DAYS = 365
MAX_ON_DEMAND_ROTATIONS = 10
CONFLICT_WINDOW = 20 * 60.0  # seconds before an automatic rotation in which on-demand ones are refused


# --- which keys rotate --------------------------------------------------------------------
def require_rotatable(key) -> None:
    """Only symmetric encryption keys have rotations; AWS answers other key types with an
    UnsupportedOperationException that has no message (recorded for RotateKeyOnDemand on RSA)."""
    if not specs.KEY_SPECS[key.key_spec].symmetric:
        raise AWSError("UnsupportedOperationException")


ROTATING_ORIGINS = ("AWS_KMS", "EXTERNAL")  # keys in custom key stores never rotate


def origin_not_valid(key) -> AWSError:
    return AWSError("UnsupportedOperationException",
                    f"{key.arn} origin is {key.origin} which is not valid for this operation.")


def _locked_key(svc, tx, caller, req):
    """Resolve, then lock the key row and take its fresh state and material (a background
    rotation may have committed between the read and the lock). The caller checks the fresh
    state (Service.check_key_state) where AWS does."""
    key = svc.resolve(tx, caller, req["KeyId"], check_state=False)
    fresh = tx.lock_key_row(key.account, key.region, key.key_id)
    if fresh is not None:
        key.key_state, key.current_material = fresh
    return key


def _rotation(tx, key) -> RotationRecord:
    return tx.get_rotation(key.account, key.region, key.key_id) or RotationRecord(
        key.account, key.region, key.key_id, enabled=False, period_days=DEFAULT_PERIOD_DAYS, next_rotation=None,
        on_demand_count=0)


def _automatic_rotation_key(svc, tx, caller, req):
    key = _locked_key(svc, tx, caller, req)
    require_rotatable(key)
    require_primary(key)  # multi-Region keys: rotation is set on the primary only
    if key.origin != "AWS_KMS":
        raise origin_not_valid(key)
    svc.check_key_state(caller, key)  # after the key type and origin checks, as AWS does
    return key


# --- automatic rotation --------------------------------------------------------------------
@operation("EnableKeyRotation")
def enable_key_rotation(svc, caller, req):
    with svc.store.write() as tx:
        key = _automatic_rotation_key(svc, tx, caller, req)
        rotation = _rotation(tx, key)
        period = req.get("RotationPeriodInDays")
        if not rotation.enabled:
            rotation.enabled = True
            rotation.period_days = period or DEFAULT_PERIOD_DAYS
            rotation.next_rotation = svc.clock.now() + rotation.period_days * DAY
        elif period is not None and period != rotation.period_days:
            # A new period keeps the schedule's start (the enable date or the last automatic rotation).
            start = rotation.next_rotation - rotation.period_days * DAY
            rotation.period_days = period
            rotation.next_rotation = start + period * DAY
        tx.put_rotation(rotation)


@operation("DisableKeyRotation")
def disable_key_rotation(svc, caller, req):
    with svc.store.write() as tx:
        key = _automatic_rotation_key(svc, tx, caller, req)
        rotation = _rotation(tx, key)
        rotation.enabled = False
        rotation.next_rotation = None
        tx.put_rotation(rotation)


@operation("GetKeyRotationStatus")
def get_key_rotation_status(svc, caller, req):
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"], check_state=False)
        require_rotatable(key)
        if key.origin not in ROTATING_ORIGINS:
            raise origin_not_valid(key)
        svc.check_key_state(caller, key)  # an EXTERNAL key waiting for its material: as an origin that cannot rotate
        # A multi-Region replica shares its primary's rotation (kept on the primary's row).
        rotation = tx.get_rotation(key.account, rotation_region(key), key.key_id)
    out = {"KeyId": key.arn, "KeyRotationEnabled": False}
    # While a key is pending deletion its status reads false; cancelling restores it.
    if rotation and rotation.enabled and key.key_state not in PENDING_DELETION:
        out.update(KeyRotationEnabled=True, RotationPeriodInDays=rotation.period_days,
                   NextRotationDate=rotation.next_rotation)
    return out


def rotate_due_keys(svc, batch: int = 100) -> int:
    """Rotate every Enabled key whose NextRotationDate has passed; returns how many rotated."""
    rotated = 0
    with svc.store.read() as tx:
        if not tx.rotation_due(svc.clock.now()):
            return 0
    while True:
        now = svc.clock.now()
        with svc.store.write() as tx:
            due = tx.claim_due_rotations(now, batch)
            for d in due:
                ensure_first_version(tx, d.account, d.region, d.key_id, d.current_material, now)
                material_id = svc.new_material(tx, d.account, d.key_id, secrets.token_bytes(32))
                record_rotation(tx, d.account, d.region, d.key_id, material_id, now, AUTOMATIC)
                tx.set_key_material_state(d.account, d.region, d.key_id, current_material=material_id)
                tx.share_current_material(d.account, d.key_id, material_id)  # multi-Region replicas follow
                tx.set_next_rotation(d.account, d.region, d.key_id, now + d.period_days * DAY)
        for d in due:  # after the commit: one line per rotation, from the node that did it
            log.info("rotated key arn:aws:kms:%s:%s:key/%s automatically", d.region, d.account, d.key_id)
        rotated += len(due)
        if len(due) < batch:
            return rotated


# --- on demand -----------------------------------------------------------------------------
@operation("RotateKeyOnDemand")
def rotate_key_on_demand(svc, caller, req):
    with svc.store.write() as tx:
        key = _locked_key(svc, tx, caller, req)
        svc.check_key_state(caller, key)  # AWS checks the key's state first, even for a spec that cannot rotate
        require_rotatable(key)
        require_primary(key)
        if key.origin not in ROTATING_ORIGINS:
            raise origin_not_valid(key)
        now = svc.clock.now()
        rotation = _rotation(tx, key)
        if rotation.on_demand_count >= MAX_ON_DEMAND_ROTATIONS:
            raise AWSError("LimitExceededException",
                           "The on-demand rotations limit has been reached for the given keyId. "
                           f"No more on-demand rotations can be performed for this key: {key.arn}")
        if rotation.enabled and rotation.next_rotation is not None and rotation.next_rotation - now < CONFLICT_WINDOW:
            raise AWSError("ConflictException",
                           f"An automatic rotation of {key.arn} is in progress or scheduled to begin within the "
                           "next 20 minutes. Try again later.")
        if key.origin == "EXTERNAL":
            pending = [v for v in tx.material_versions(key.account, key.region, key.key_id) if v.pending]
            if not pending:
                raise invalid_state(f"No available key material pending rotation for the key: {key.arn}.")
            material_id = pending[0].material_id
            tx.update_material_version(pending[0], pending=False, rotation_date=now, rotation_type=ON_DEMAND)
        else:
            ensure_first_version(tx, key.account, key.region, key.key_id, key.current_material, now)
            material_id = svc.new_material(tx, key.account, key.key_id, secrets.token_bytes(32))
            record_rotation(tx, key.account, key.region, key.key_id, material_id, now, ON_DEMAND)
        tx.update_key(key, current_material=material_id)
        tx.share_current_material(key.account, key.key_id, material_id)  # multi-Region replicas follow
        rotation.on_demand_count += 1
        tx.put_rotation(rotation)
    return {"KeyId": key.arn}


# --- history -------------------------------------------------------------------------------
def _marker_seq(marker: str | None) -> int | None:
    """The seq of the last entry of the previous page (None for the first page)."""
    if marker is None:
        return None
    try:
        return int(decode_marker(marker))
    except ValueError:
        raise AWSError("InvalidMarkerException", "Invalid marker") from None


def rotation_entry(key, v: MaterialVersion) -> dict:
    entry = {"KeyId": key.key_id, "KeyMaterialId": v.material_id}
    if v.description is not None:
        entry["KeyMaterialDescription"] = v.description
    if key.origin == "EXTERNAL":
        entry["ImportState"] = "IMPORTED" if v.present else "PENDING_IMPORT"
    if v.pending:
        entry["KeyMaterialState"] = "PENDING_ROTATION"
    else:
        entry["KeyMaterialState"] = "CURRENT" if v.material_id == key.current_material else "NON_CURRENT"
    if key.origin == "EXTERNAL" and v.expiration_model:
        entry["ExpirationModel"] = v.expiration_model
        if v.valid_to is not None:
            entry["ValidTo"] = v.valid_to
    if v.rotation_type is not None:
        entry["RotationDate"] = v.rotation_date
        entry["RotationType"] = v.rotation_type
    return entry


@operation("ListKeyRotations")
def list_key_rotations(svc, caller, req):
    limit = req.get("Limit", 100)
    after = _marker_seq(req.get("Marker"))
    everything = req.get("IncludeKeyMaterial", "ROTATIONS_ONLY") == "ALL_KEY_MATERIAL"
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        require_rotatable(key)
        if key.origin not in ROTATING_ORIGINS:
            raise origin_not_valid(key)
        versions = tx.material_versions(key.account, key.region, key.key_id)
    if key.current_material and not any(v.material_id == key.current_material for v in versions):
        versions.insert(0, MaterialVersion(key.account, key.region, key.key_id, key.current_material, -1, False, True,
                                           None, None, None, None, None, key.created))
    rows = [v for v in versions if (after is None or v.seq > after) and (everything or v.rotation_type is not None)]
    rows, more = page(rows[:limit + 1], limit, lambda v: str(v.seq))
    return {"Rotations": [rotation_entry(key, v) for v in rows], **more}
