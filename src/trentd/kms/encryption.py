"""Encryption: Encrypt, Decrypt, ReEncrypt, GenerateRandom (data keys are in datakeys.py).

Symmetric ciphertext names its key and key material in a clear header (crypto/envelope.py), so
Decrypt needs no KeyId; asymmetric ciphertext is raw RSA-OAEP, so Decrypt needs the KeyId and the
algorithm. ``seal`` (keydomain/cipher.py) and ``open_blob`` are the two halves every operation here
shares.
"""

from __future__ import annotations

import re
import secrets

from ..crypto import asymmetric, envelope, specs, xks_envelope
from ..errors import AWSError, invalid_ciphertext, validation
from ..inline import offload_point
from ..keydomain import external
from ..keydomain.cipher import SYMMETRIC, reject_recipient, seal, with_material_id
from ..keydomain.materials import is_symmetric
from ..keydomain.states import require_algorithm, require_usage
from ..store.records import KeyRecord
from .paging import dry_run
from .service import Service, operation

_DECRYPT_ACTION = {"ReEncrypt": "kms:ReEncryptFrom"}  # the half of ReEncrypt that decrypts
UNKNOWN_KEY_MESSAGE = (
    "The ciphertext refers to a customer master key that does not exist, does not exist in this region, "
    "or you are not allowed to access."
)
# Key ids trentd can issue; a header naming anything else is garbage, not a key reference.
_KEY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}")


def _check_encryption_use(key: KeyRecord, algorithm: str, operation_name: str) -> None:
    require_usage(key, specs.ENCRYPT_DECRYPT, operation_name)
    require_algorithm(key, algorithm)


def _check_encrypt_key(svc: Service, caller, key: KeyRecord, algorithm: str, operation_name: str) -> None:
    """For a key resolved with ``check_state=False``: its state (the row's rule), usage and algorithm."""
    svc.check_key_state(caller, key)
    _check_encryption_use(key, algorithm, operation_name)


def open_blob(svc: Service, tx, caller, blob: bytes, context, algorithm: str, named: KeyRecord | None,
              operation_name: str) -> tuple[KeyRecord, bytes, str | None]:
    """Decrypt a blob: (key that decrypted it, plaintext, key material id or None)."""
    # A named key that cannot decrypt (HMAC, signing) still goes through the header: AWS checks the
    # key against the ciphertext (IncorrectKeyException) before the key's usage.
    if named is not None and named.key_usage == specs.ENCRYPT_DECRYPT and not is_symmetric(named):
        _check_encrypt_key(svc, caller, named, algorithm, operation_name)
        if context:
            raise validation("EncryptionContext is not supported with asymmetric KMS keys.")
        material = svc.current_material(tx, named)
        offload_point()  # RSA: CPU-heavy work belongs on the bounded pool (trentd/inline.py)
        return named, asymmetric.decrypt(named.key_spec, material, algorithm, blob), None
    try:
        # Format v2: a key in an external key store (crypto/xks_envelope.py); else v1.
        xks_blob = xks_envelope.parse(blob) if xks_envelope.is_xks_blob(blob) else None
        header = xks_blob.header if xks_blob else envelope.read_header(blob)
    except envelope.MalformedCiphertext:
        raise invalid_ciphertext() from None
    if not _KEY_ID.fullmatch(header.key_id):
        raise invalid_ciphertext()
    key = svc.live_key(tx, header.account, caller.region, header.key_id)
    # One answer for "no such key" and "not allowed": a ciphertext is no existence oracle.
    if key is None:
        raise AWSError("AccessDeniedException", UNKNOWN_KEY_MESSAGE)
    caller.resources.append(key.arn)  # for the audit event
    try:
        svc.authorize(tx, caller, key, _DECRYPT_ACTION.get(operation_name, caller.action))
    except AWSError as err:
        if err.code != "AccessDeniedException":
            raise
        raise AWSError("AccessDeniedException", UNKNOWN_KEY_MESSAGE) from None
    if named is not None and (named.account, named.key_id) != (key.account, key.key_id):
        raise AWSError("IncorrectKeyException",
                       "The key ID in the request does not identify a CMK that can perform this operation.")
    _check_encrypt_key(svc, caller, key, algorithm, operation_name)
    if (xks_blob is not None) != (key.origin == external.ORIGIN):
        # A v1 blob never names a key in an external key store (that would skip the external key).
        raise invalid_ciphertext()
    if xks_blob is not None:
        return key, external.open_sealed(svc, tx, caller, key, xks_blob, context), None
    assert isinstance(header, envelope.Header)  # an external key store's blob was opened above
    material_id = header.material_id.hex()
    backing = svc.material(tx, key.account, key.key_id, material_id)
    if backing is None:
        raise invalid_ciphertext()
    try:
        return key, envelope.decrypt(blob, backing, context, header), material_id
    except envelope.MalformedCiphertext:
        raise invalid_ciphertext() from None


@operation("Encrypt")
def encrypt(svc, caller, req):
    algorithm = req.get("EncryptionAlgorithm", SYMMETRIC)
    with svc.hot_reads() as tx:
        key = svc.resolve(tx, caller, req["KeyId"], aliases=True)
        _check_encryption_use(key, algorithm, "Encrypt")
        blob, _ = seal(svc, tx, key, req["Plaintext"], req.get("EncryptionContext"), algorithm, caller=caller)
        dry_run(req)  # after seal's own checks too (context on an asymmetric key, RSA size limit)
    return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}


def _ignoring_ciphertext(req: dict) -> bool:
    return bool(req.get("DryRun")) and "IGNORE_CIPHERTEXT" in req.get("DryRunModifiers", ())


@operation("Decrypt")
def decrypt(svc, caller, req):
    reject_recipient(req)
    algorithm = req.get("EncryptionAlgorithm", SYMMETRIC)
    with svc.hot_reads() as tx:
        # The key's state is checked where AWS does: on the ciphertext's key (open_blob).
        named = svc.resolve(tx, caller, req["KeyId"], aliases=True, check_state=False) if "KeyId" in req else None
        if _ignoring_ciphertext(req):
            if named is None:
                raise validation("KeyId is required when DryRunModifiers contains IGNORE_CIPHERTEXT.")
            _check_encrypt_key(svc, caller, named, algorithm, "Decrypt")
            dry_run(req)
        if "CiphertextBlob" not in req:
            raise validation("1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
                             "constraint: Member must not be null")
        key, plaintext, material_id = open_blob(
            svc, tx, caller, req["CiphertextBlob"], req.get("EncryptionContext"), algorithm, named, "Decrypt")
        dry_run(req)
    out = {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": algorithm}
    return with_material_id(out, material_id)


@operation("ReEncrypt")
def re_encrypt(svc, caller, req):
    source_algorithm = req.get("SourceEncryptionAlgorithm", SYMMETRIC)
    destination_algorithm = req.get("DestinationEncryptionAlgorithm", SYMMETRIC)
    with svc.hot_reads() as tx:
        named = None
        if "SourceKeyId" in req:
            named = svc.resolve(tx, caller, req["SourceKeyId"], aliases=True, action="kms:ReEncryptFrom",
                                check_state=False)
        # Both keys' states are checked where AWS does: the source's on opening the ciphertext.
        destination = svc.resolve(tx, caller, req["DestinationKeyId"], aliases=True, action="kms:ReEncryptTo",
                                  check_state=False)
        if _ignoring_ciphertext(req):
            if named is None:
                raise validation("SourceKeyId is required when DryRunModifiers contains IGNORE_CIPHERTEXT.")
            _check_encrypt_key(svc, caller, named, source_algorithm, "ReEncrypt")
            _check_encrypt_key(svc, caller, destination, destination_algorithm, "ReEncrypt")
            dry_run(req)
        source, plaintext, source_material = open_blob(
            svc, tx, caller, req["CiphertextBlob"], req.get("SourceEncryptionContext"), source_algorithm, named,
            "ReEncrypt")
        _check_encrypt_key(svc, caller, destination, destination_algorithm, "ReEncrypt")
        blob, destination_material = seal(
            svc, tx, destination, plaintext, req.get("DestinationEncryptionContext"), destination_algorithm,
            caller=caller)
        dry_run(req)  # after seal's own checks too (context on an asymmetric key, RSA size limit)
    out = {
        "CiphertextBlob": blob,
        "SourceKeyId": source.arn,
        "KeyId": destination.arn,
        "SourceEncryptionAlgorithm": source_algorithm,
        "DestinationEncryptionAlgorithm": destination_algorithm,
    }
    with_material_id(out, source_material, "SourceKeyMaterialId")
    return with_material_id(out, destination_material, "DestinationKeyMaterialId")


@operation("GenerateRandom")
def generate_random(svc, caller, req):
    reject_recipient(req)
    if "NumberOfBytes" not in req:
        raise validation("NumberOfBytes is required.")
    svc.authorize_account(caller)
    if "CustomKeyStoreId" in req:
        external.check_generate_random(svc, caller, req["CustomKeyStoreId"])
    return {"Plaintext": secrets.token_bytes(req["NumberOfBytes"])}
