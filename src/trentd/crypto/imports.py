"""Imported key material (BYOK): RSA wrapping key pairs, unwrapping, and checking the material.

Wrapping algorithms (GetParametersForImport / ImportKeyMaterial):

- ``RSAES_OAEP_SHA_1`` / ``RSAES_OAEP_SHA_256``: the material itself is RSA-OAEP encrypted under
  the wrapping public key (MGF1 with the same hash, no label).
- ``RSA_AES_KEY_WRAP_SHA_1`` / ``RSA_AES_KEY_WRAP_SHA_256``: a fresh 256-bit AES key RSA-OAEP
  encrypted under the wrapping key, followed by the material wrapped under that AES key with
  AES Key Wrap with Padding (RFC 5649). The RSA part is exactly the modulus length.

``RSAES_PKCS1_V1_5`` (refused by AWS since 2023-10-10) and ``SM2PKE`` are not offered.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from . import asymmetric
from .specs import KEY_SPECS

WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
WRAPPING_ALGORITHMS = {
    "RSAES_OAEP_SHA_1": (hashes.SHA1, False),
    "RSAES_OAEP_SHA_256": (hashes.SHA256, False),
    "RSA_AES_KEY_WRAP_SHA_1": (hashes.SHA1, True),
    "RSA_AES_KEY_WRAP_SHA_256": (hashes.SHA256, True),
}
_AES_KEY_BYTES = 32


class UnwrapFailed(Exception):
    """The encrypted key material does not decrypt under the wrapping key."""


def generate_wrapping_key(spec: str) -> tuple[bytes, bytes]:
    """(private key PKCS#8 DER, public key SPKI DER). RSA-4096 takes ~0.4 s: no transaction open."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=WRAPPING_KEY_BITS[spec])
    private_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_der, public_der


def unwrap(algorithm: str, private_der: bytes, encrypted: bytes) -> bytes:
    """The key material inside ``encrypted``; UnwrapFailed when it does not decrypt.

    ``private_der`` is a wrapping key this server generated and authenticated (it travels inside
    the import token, sealed under the root key), so OpenSSL's slow RSA key check is skipped."""
    hash_type, with_aes = WRAPPING_ALGORITHMS[algorithm]
    key = serialization.load_der_private_key(private_der, password=None, unsafe_skip_rsa_key_validation=True)
    assert isinstance(key, rsa.RSAPrivateKey)  # generate_wrapping_key made it
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hash_type()), algorithm=hash_type(), label=None)
    size = key.key_size // 8
    try:
        if not with_aes:
            return key.decrypt(encrypted, oaep)
        if len(encrypted) <= size:
            raise UnwrapFailed()
        aes_key = key.decrypt(encrypted[:size], oaep)
        if len(aes_key) != _AES_KEY_BYTES:
            raise UnwrapFailed()
        return aes_key_unwrap_with_padding(aes_key, encrypted[size:])
    except (ValueError, InvalidUnwrap):
        raise UnwrapFailed() from None


def check_material(spec: str, material: bytes) -> str | None:
    """None when ``material`` fits the key spec, else what is wrong with it: 32 bytes for
    SYMMETRIC_DEFAULT, the spec's range for HMAC, a PKCS#8 private key of the spec otherwise."""
    ks = KEY_SPECS[spec]
    if ks.symmetric:
        size = ks.details["key_bytes"]
        return None if len(material) == size else f"{spec} key material must be {size} bytes."
    if ks.family == "hmac":
        low, high = ks.details["import_bytes"]
        return None if low <= len(material) <= high else f"{spec} key material must be {low} to {high} bytes."
    try:
        asymmetric.public_key_der(spec, material)  # parses, and checks algorithm, curve and size
    except (ValueError, TypeError):
        return f"The key material is not a PKCS#8 DER private key for key spec {spec}."
    return None
