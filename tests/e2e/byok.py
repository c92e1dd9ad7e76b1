"""Helpers for tests of imported key material: wrap material locally, as a customer would, with
the public key GetParametersForImport returned, and read trentd ciphertext with known material."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

ALGORITHMS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256")
DAY = 86_400


def wrap(public_der: bytes, algorithm: str, material: bytes) -> bytes:
    """EncryptedKeyMaterial for ``material`` under the wrapping public key."""
    public = serialization.load_der_public_key(public_der)
    hash_type = hashes.SHA1 if algorithm.endswith("SHA_1") else hashes.SHA256
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hash_type()), algorithm=hash_type(), label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, oaep)
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)


def import_material(kms, key_id: str, material: bytes, algorithm: str = "RSAES_OAEP_SHA_256",
                    params: dict | None = None, **kwargs) -> dict:
    """GetParametersForImport (unless ``params`` are given) + ImportKeyMaterial. Default: material
    that does not expire."""
    params = params or kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm,
                                                     WrappingKeySpec="RSA_2048")
    if "ValidTo" not in kwargs:
        kwargs.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                                   EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material), **kwargs)


def open_ciphertext(blob: bytes, material: bytes, context: dict | None = None) -> tuple[str, str, bytes]:
    """Decrypt a trentd v1 ciphertext (docs/ciphertext.md) with the backing key we imported:
    (key id, key-material id, plaintext)."""
    assert blob[0] == 1
    n = blob[13]
    key_id = blob[14:14 + n].decode()
    header_end = 14 + n + 32 + 16 + 12
    material_id = blob[14 + n:14 + n + 32].hex()
    salt = blob[14 + n + 32:14 + n + 48]
    nonce = blob[14 + n + 48:header_end]
    items = sorted((k.encode(), v.encode()) for k, v in (context or {}).items())
    aad = bytearray(blob[:header_end]) + len(items).to_bytes(4, "big")
    for k, v in items:
        aad += len(k).to_bytes(4, "big") + k + len(v).to_bytes(4, "big") + v
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"trentd ciphertext v1").derive(material)
    return key_id, material_id, AESGCM(derived).decrypt(nonce, blob[header_end:], bytes(aad))
