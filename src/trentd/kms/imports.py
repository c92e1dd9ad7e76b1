"""Imported key material (BYOK): GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial, and the job that removes material whose ValidTo has passed.

A key created with Origin EXTERNAL starts PendingImport, without material. GetParametersForImport
makes a fresh RSA wrapping key pair per call and answers its public key with an import token;
ImportKeyMaterial unwraps the material with the private half, checks it fits the key spec and
stores it wrapped under the root key exactly like generated material.

The import token is self-contained: the wrapping private key sealed under the root key
(AES-256-GCM), with the AAD binding account, Region, key id, wrapping algorithm and spec, and the
expiry (24 h by the service clock). Nothing is stored, every node can redeem it, a token for
another key does not open (InvalidImportTokenException), and a token past its time is
ExpiredImportTokenException.

Material ids of imported material are derived from the key and the material
(SHA-256 over a domain tag, the account, the key id and the material), so re-importing the same
material gives the same id and different material is recognised (IncorrectKeyMaterialException).
Symmetric keys may hold several materials (ImportType NEW_KEY_MATERIAL → PENDING_ROTATION, then
RotateKeyOnDemand); HMAC and asymmetric keys keep the material of their first import.
"""

from __future__ import annotations

import logging
import struct

from ..crypto import asymmetric, imports
from ..errors import AWSError, invalid_ciphertext, invalid_state, not_found, validation
from ..keydomain.materials import EXPIRES, complete, forget, is_symmetric, material_id_for, record_import, remove
from ..keydomain.multiregion import shared_material
from ..store.rootkey import RootKeyError, aad_for
from .service import operation

log = logging.getLogger("trentd.kms")

DAY = 86_400.0
TOKEN_LIFETIME = DAY
MAX_VALID_TO_DAYS = 365
NEW, EXISTING = "NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"

_TOKEN_MAGIC = b"tIT\x01"
_TOKEN_HEAD = struct.Struct(">4sQBB")  # magic, expiry (ms, service clock), algorithm, wrapping key spec
_ALGORITHMS = tuple(imports.WRAPPING_ALGORITHMS)
_WRAPPING_SPECS = tuple(imports.WRAPPING_KEY_BITS)


# --- shared rules --------------------------------------------------------------------------
def _external_key(svc, tx, caller, key_id: str):
    key = svc.resolve(tx, caller, key_id, check_state=False)
    if key.origin != "EXTERNAL":
        raise AWSError("UnsupportedOperationException",
                       f"{key.arn} origin is {key.origin} which is not valid for this operation.")
    svc.check_key_state(caller, key)  # after the origin, as AWS does
    return key


# --- GetParametersForImport ----------------------------------------------------------------
def _seal_token(svc, key, algorithm: str, spec: str, private_der: bytes, expiry_ms: int) -> bytes:
    head = _TOKEN_HEAD.pack(_TOKEN_MAGIC, expiry_ms, _ALGORITHMS.index(algorithm), _WRAPPING_SPECS.index(spec))
    return head + svc.root_key.wrap(private_der, _token_aad(key, algorithm, spec, expiry_ms))


def _token_aad(key, algorithm: str, spec: str, expiry_ms: int) -> bytes:
    return aad_for("trentd import token v1", key.account, key.region, key.key_id, algorithm, spec, str(expiry_ms))


def _open_token(svc, key, token: bytes, now: float) -> tuple[str, bytes]:
    """(wrapping algorithm, wrapping private key) of a token issued for ``key``."""
    invalid = AWSError("InvalidImportTokenException",
                       "The import token is invalid or is associated with a different KMS key.")
    if len(token) <= _TOKEN_HEAD.size:
        raise invalid
    magic, expiry_ms, algorithm, spec = _TOKEN_HEAD.unpack_from(token)
    if magic != _TOKEN_MAGIC or algorithm >= len(_ALGORITHMS) or spec >= len(_WRAPPING_SPECS):
        raise invalid
    algorithm_name = _ALGORITHMS[algorithm]
    try:
        private_der = svc.root_key.unwrap(token[_TOKEN_HEAD.size:],
                                          _token_aad(key, algorithm_name, _WRAPPING_SPECS[spec], expiry_ms))
    except RootKeyError:
        raise invalid from None
    if now * 1000 > expiry_ms:
        raise AWSError("ExpiredImportTokenException",
                       "The import token has expired. Use GetParametersForImport to get a new import token and "
                       "public key, and encrypt the key material again.")
    return algorithm_name, private_der


@operation("GetParametersForImport")
def get_parameters_for_import(svc, caller, req):
    algorithm, spec = req["WrappingAlgorithm"], req["WrappingKeySpec"]
    with svc.store.read() as tx:
        key = _external_key(svc, tx, caller, req["KeyId"])
    if algorithm not in imports.WRAPPING_ALGORITHMS:
        # RSAES_PKCS1_V1_5: refused by AWS since 2023-10-10; SM2PKE: China Regions only.
        raise AWSError("UnsupportedOperationException",
                       f"WrappingAlgorithm {algorithm} is not supported. Use RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, "
                       "RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.")
    if spec not in imports.WRAPPING_KEY_BITS:
        raise AWSError("UnsupportedOperationException",
                       f"WrappingKeySpec {spec} is not supported. Use RSA_2048, RSA_3072 or RSA_4096.")
    private_der, public_der = imports.generate_wrapping_key(spec)  # slow: outside any transaction
    valid_to = svc.clock.now() + TOKEN_LIFETIME
    expiry_ms = int(valid_to * 1000)
    token = _seal_token(svc, key, algorithm, spec, private_der, expiry_ms)
    return {"KeyId": key.arn, "ImportToken": token, "PublicKey": public_der, "ParametersValidTo": expiry_ms / 1000}


# --- ImportKeyMaterial ---------------------------------------------------------------------
def _expiration(svc, req) -> tuple[str, float | None]:
    model = req.get("ExpirationModel", EXPIRES)
    valid_to = req.get("ValidTo")
    if model == EXPIRES:
        if valid_to is None:
            raise validation("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
        now = svc.clock.now()
        if valid_to <= now or valid_to > now + MAX_VALID_TO_DAYS * DAY:
            raise validation(f"ValidTo must be in the future and no more than {MAX_VALID_TO_DAYS} days from now.")
    elif valid_to is not None:
        raise validation("A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
    return model, valid_to


def _incorrect(message: str) -> AWSError:
    return AWSError("IncorrectKeyMaterialException", message)


@operation("ImportKeyMaterial")
def import_key_material(svc, caller, req):
    with svc.store.read() as tx:
        key = _external_key(svc, tx, caller, req["KeyId"])
    symmetric = is_symmetric(key)
    if not symmetric and ("KeyMaterialId" in req or "KeyMaterialDescription" in req):
        raise validation("KeyMaterialId and KeyMaterialDescription are only supported for symmetric encryption keys.")
    if req.get("ImportType") == NEW and "KeyMaterialId" in req:
        raise validation("You cannot specify a KeyMaterialId when the ImportType is NEW_KEY_MATERIAL.")
    model, valid_to = _expiration(svc, req)

    # The RSA work happens before the write transaction.
    algorithm, private_der = _open_token(svc, key, req["ImportToken"], svc.clock.now())
    try:
        material = imports.unwrap(algorithm, private_der, req["EncryptedKeyMaterial"])
    except imports.UnwrapFailed:
        raise invalid_ciphertext() from None
    problem = imports.check_material(key.key_spec, material)
    if problem:
        raise _incorrect(problem)
    material_id = material_id_for(key.account, key.key_id, material)
    if "KeyMaterialId" in req and req["KeyMaterialId"] != material_id:
        raise _incorrect(f"The key material does not match the key material id {req['KeyMaterialId']}.")

    arn = key.arn
    with svc.store.write() as tx:
        key = svc.live_key(tx, key.account, key.region, key.key_id)
        fresh = key and tx.lock_key_row(key.account, key.region, key.key_id)
        if not fresh:  # deleted while the material was being unwrapped
            raise not_found(f"Key '{arn}' does not exist")
        key.key_state, key.current_material = fresh
        svc.check_key_state(caller, key)  # again: its deletion may have been scheduled meanwhile
        _apply_import(svc, tx, key, material, material_id, model, valid_to, req)
    out = {"KeyId": key.arn}
    if symmetric:
        out["KeyMaterialId"] = material_id
    return out


def _apply_import(svc, tx, key, material: bytes, material_id: str, model: str, valid_to, req) -> None:
    now = svc.clock.now()
    versions = tx.material_versions(key.account, key.region, key.key_id)
    known = {v.material_id: v for v in versions}
    import_type = req.get("ImportType") or (EXISTING if versions else NEW)
    description = req.get("KeyMaterialDescription")
    if import_type == EXISTING:
        version = known.get(material_id)
        if version is None:
            raise _incorrect(f"The key material is not the key material previously imported into {key.arn}.")
        if tx.get_material(key.account, key.key_id, material_id) is None:
            svc.new_material(tx, key.account, key.key_id, material, material_id)
        changes = {"present": True, "expiration_model": model, "valid_to": valid_to}
        if description is not None:
            changes["description"] = description
        tx.update_material_version(version, **changes)
    else:
        if material_id in known:
            raise _incorrect(f"The key material is already associated with {key.arn}; "
                             "use ImportType EXISTING_KEY_MATERIAL to reimport it.")
        if versions and not is_symmetric(key):
            raise _incorrect(f"The key material of {key.arn} cannot be changed: only symmetric encryption keys "
                             "can hold several key materials.")
        pending = [v for v in versions if v.pending]
        if pending:
            raise invalid_state(f"New key material (id: {material_id}) cannot be imported into KMS key {key.key_id}, "
                                f"because another key material (id: {pending[0].material_id}) is pending rotation.")
        if not shared_material(tx, key, material_id):  # a multi-Region key's other Regions may hold it
            svc.new_material(tx, key.account, key.key_id, material, material_id)
        record_import(tx, key, material_id, pending=bool(versions), model=model, valid_to=valid_to,
                      description=description, now=now)
        if not versions:
            tx.update_key(key, current_material=material_id)
    if key.key_state == "PendingImport" and complete(tx, key):
        tx.update_key(key, key_state="Enabled")


# --- DeleteImportedKeyMaterial and expiry --------------------------------------------------
@operation("DeleteImportedKeyMaterial")
def delete_imported_key_material(svc, caller, req):
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        if key.origin != "EXTERNAL":
            raise AWSError("UnsupportedOperationException",
                           f"{key.arn} origin is {key.origin} which is not valid for this operation.")
        fresh = tx.lock_key_row(key.account, key.region, key.key_id)
        if fresh is None:  # the deletion sweep removed it just now
            raise not_found(f"Key '{key.arn}' does not exist")
        key.key_state, key.current_material = fresh
        material_id = req.get("KeyMaterialId") or key.current_material
        if material_id is None:
            raise invalid_state(f"{key.arn} is pending import.")
        version = tx.get_material_version(key.account, key.region, key.key_id, material_id)
        if version is None:
            raise not_found(f"Key material {material_id} is not associated with {key.arn}.")
        state = remove(tx, key.key_state, version)
        if state is not None:
            tx.update_key(key, key_state=state)
    forget(svc, key.account, key.key_id, material_id, is_symmetric(key))
    out = {"KeyId": key.arn}
    if is_symmetric(key):
        out["KeyMaterialId"] = material_id
    return out


def expire_materials(svc, batch: int = 100) -> int:
    """Remove imported material whose ValidTo has passed: the key becomes PendingImport."""
    expired = 0
    with svc.store.read() as tx:
        if not tx.material_expired(svc.clock.now()):
            return 0
    while True:
        with svc.store.write() as tx:
            due = tx.claim_expired_materials(svc.clock.now(), batch)
            for d in due:
                version = tx.get_material_version(d.account, d.region, d.key_id, d.material_id)
                state = remove(tx, d.key_state, version)
                if state is not None:
                    tx.set_key_material_state(d.account, d.region, d.key_id, key_state=state)
                    d.key_state = state
        for d in due:
            svc.materials.discard((d.account, d.key_id, d.material_id))
            log.info("imported key material %s of key arn:aws:kms:%s:%s:key/%s expired", d.material_id, d.region,
                     d.account, d.key_id)
        if due:
            asymmetric.clear_key_cache()
        expired += len(due)
        if len(due) < batch:
            return expired
