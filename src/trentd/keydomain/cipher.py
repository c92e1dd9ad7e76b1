"""Encryption under a key: the half of Encrypt that GenerateDataKey and ReEncrypt share (its other
half, Decrypt's, is kms/encryption.py ``open_blob``), and the request and answer members those
operations have in common.

Symmetric ciphertext names its key and key material in a clear header (crypto/envelope.py); a key
in an external key store double-encrypts through its proxy (keydomain/external.py); asymmetric
ciphertext is raw RSA-OAEP.
"""

from __future__ import annotations

from ..crypto import asymmetric, envelope
from ..errors import AWSError, validation
from ..inline import offload_point
from ..store.records import KeyRecord
from . import external
from .materials import is_symmetric

SYMMETRIC = "SYMMETRIC_DEFAULT"


def reject_recipient(req: dict) -> None:
    if "Recipient" in req:
        raise AWSError("UnsupportedOperationException",
                       "Recipient (Nitro Enclaves attestation) is not supported by trentd.")


def seal(svc, tx, key: KeyRecord, plaintext: bytes, context, algorithm: str,
         caller=None) -> tuple[bytes, str | None]:
    """Encrypt under ``key``'s current material: (ciphertext blob, key material id or None).
    ``caller`` names who asks, for the requestMetadata of a call to an external key store proxy."""
    if key.origin == external.ORIGIN:  # double encryption through the key's XKS proxy (format v2)
        return external.seal(svc, tx, caller, key, plaintext, context), None
    material = svc.current_material(tx, key)
    if is_symmetric(key):
        header = envelope.header_for(key.account, key.key_id, key.current_material)
        return envelope.encrypt(header, material, plaintext, context), key.current_material
    if context:
        raise validation("EncryptionContext is not supported with asymmetric KMS keys.")
    offload_point()  # RSA: CPU-heavy work belongs on the bounded pool (trentd/inline.py)
    return asymmetric.encrypt(key.key_spec, material, algorithm, plaintext), None


def with_material_id(out: dict, material_id: str | None, name: str = "KeyMaterialId") -> dict:
    if material_id is not None:
        out[name] = material_id
    return out
