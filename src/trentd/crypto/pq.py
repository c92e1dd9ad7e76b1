"""ML-DSA (FIPS 204) and ML-KEM (FIPS 203) primitives for `asymmetric`.

ML-DSA-44/65/87 and ML-KEM-768/1024 run on `cryptography`; their private keys are PKCS#8 in the
**seed** form `cryptography` writes (54 B for ML-DSA, 86 B for ML-KEM), as AWS returns them.

ML-KEM-512 is missing from `cryptography` 50, so it runs on `pqcrypto` (Rust, one wheel, FIPS 203
final; it checks encapsulation and decapsulation keys as FIPS 203 §7.2/§7.3 require). `pqcrypto`
generates keys only from its own randomness and cannot expand a seed, so an ML-KEM-512 private key
is PKCS#8 in the **expandedKey** form of the ML-KEM private key CHOICE (IETF LAMPS "ML-KEM in
X.509", draft-ietf-lamps-kyber-certificates): an OCTET STRING holding the 1632-byte FIPS 203 key
dk = dk_PKE ‖ ek ‖ H(ek) ‖ z. Algorithm id-alg-ml-kem-512 (2.16.840.1.101.3.4.4.1) without
parameters, in the SPKI too. That differs from AWS, whose GenerateDataKeyPair returns the seed
form for all three sizes; OpenSSL 3.5+ reads both forms.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem
from pqcrypto.kem import ml_kem_512 as _mlkem512

from trentd.errors import validation

from .specs import KeySpec

_MLDSAKey = mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
_MLKEMKey = mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey
_MLKEMPublic = mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey
_MLDSA: dict[int, type[_MLDSAKey]] = {
    44: mldsa.MLDSA44PrivateKey, 65: mldsa.MLDSA65PrivateKey, 87: mldsa.MLDSA87PrivateKey}
_MLKEM: dict[int, tuple[type[_MLKEMKey], type[_MLKEMPublic]]] = {
    768: (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey),
    1024: (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey)}

_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_NO_ENCRYPTION = serialization.NoEncryption()


# --- DER for ML-KEM-512 (fixed sizes, so each encoding is one constant prefix + the key) -------

def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


_EK_LEN = _mlkem512.PUBLIC_KEY_SIZE  # 800
_DK_LEN = _mlkem512.SECRET_KEY_SIZE  # 1632
_EK_AT = 384 * 2  # ek follows dk_PKE (384·k bytes, k = 2) inside dk
_ALG_ID_512 = _tlv(0x30, _tlv(0x06, bytes.fromhex("608648016503040401")))  # id-alg-ml-kem-512


def _spki_512(ek: bytes) -> bytes:
    return _tlv(0x30, _ALG_ID_512 + _tlv(0x03, b"\x00" + ek))


def _pkcs8_512(dk: bytes) -> bytes:
    version = _tlv(0x02, b"\x00")
    return _tlv(0x30, version + _ALG_ID_512 + _tlv(0x04, _tlv(0x04, dk)))


_SPKI_512_PREFIX = _spki_512(bytes(_EK_LEN))[:-_EK_LEN]
_PKCS8_512_PREFIX = _pkcs8_512(bytes(_DK_LEN))[:-_DK_LEN]


class MLKEM512Key(NamedTuple):
    dk: bytes  # FIPS 203 decapsulation key, hash-checked at load

    @property
    def ek(self) -> bytes:
        return self.dk[_EK_AT:_EK_AT + _EK_LEN]


# --- keys -------------------------------------------------------------------------------------

def generate(ks: KeySpec):
    level = ks.details["level"]
    if ks.family == "ml_dsa":
        return _MLDSA[level].generate()
    if level == 512:
        _ek, dk = _mlkem512.keygen()
        return MLKEM512Key(dk)
    return _MLKEM[level][0].generate()


def load(ks: KeySpec, material: bytes):
    level = ks.details["level"]
    if ks.family == "ml_kem" and level == 512:
        dk = material[len(_PKCS8_512_PREFIX):]
        if not material.startswith(_PKCS8_512_PREFIX) or len(dk) != _DK_LEN:
            raise ValueError("key material is not an ML_KEM_512 PKCS#8 private key (expandedKey form)")
        kem512 = MLKEM512Key(dk)
        if hashlib.sha3_256(kem512.ek).digest() != dk[_EK_AT + _EK_LEN:_EK_AT + _EK_LEN + 32]:
            raise ValueError("ML_KEM_512 decapsulation key fails its hash check")
        return kem512
    try:
        key = serialization.load_der_private_key(material, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"key material is not a PKCS#8 private key for {ks.name}") from exc
    expected = _MLDSA[level] if ks.family == "ml_dsa" else _MLKEM[level][0]
    if not isinstance(key, expected):
        raise ValueError(f"key material is not a {ks.name} private key")
    return key


def private_der(key) -> bytes:
    if isinstance(key, MLKEM512Key):
        return _pkcs8_512(key.dk)
    return key.private_bytes(_DER, _PKCS8, _NO_ENCRYPTION)


def public_der(key) -> bytes:
    if isinstance(key, MLKEM512Key):
        return _spki_512(key.ek)
    return key.public_key().public_bytes(_DER, _SPKI)


# --- ML-DSA -----------------------------------------------------------------------------------

def ml_dsa_sign(key, message: bytes, external_mu: bool) -> bytes:
    """Pure ML-DSA with an empty context (RAW), or ML-DSA.Sign_internal over a caller's 64-byte
    μ = SHAKE256(SHAKE256(pk, 64) ‖ 0x00 ‖ 0x00 ‖ M, 64) (EXTERNAL_MU, FIPS 204 §6.2)."""
    return key.sign_mu(message) if external_mu else key.sign(message)


def ml_dsa_verify(key, message: bytes, external_mu: bool, signature: bytes) -> bool:
    public = key.public_key()
    try:
        if external_mu:
            public.verify_mu(signature, message)
        else:
            public.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- ML-KEM -----------------------------------------------------------------------------------

def load_public(ks: KeySpec, public_der: bytes):
    """An ML-KEM encapsulation key from SPKI DER (raw 800-byte ek for ML_KEM_512)."""
    level = ks.details["level"]
    if level == 512:
        ek = public_der[len(_SPKI_512_PREFIX):]
        if public_der.startswith(_SPKI_512_PREFIX) and len(ek) == _EK_LEN:
            return ek
    else:
        try:
            key = serialization.load_der_public_key(public_der)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            key = None
        if isinstance(key, _MLKEM[level][1]):
            return key
    raise validation(f"PublicKey must be a DER-encoded X.509 SubjectPublicKeyInfo (SPKI) "
                     f"{ks.name} public key.")


def encapsulate(public) -> tuple[bytes, bytes]:
    """(shared secret, ciphertext)."""
    if isinstance(public, bytes):
        try:
            ciphertext, secret = _mlkem512.encaps(public)
        except ValueError:  # FIPS 203 §7.2 modulus check failed
            raise validation("PublicKey is not a valid ML_KEM_512 encapsulation key.") from None
        return secret, ciphertext
    return public.encapsulate()


def decapsulate(key, ciphertext: bytes) -> bytes:
    """The caller has checked the ciphertext length; a wrong ciphertext of the right length gives
    a pseudo-random secret (implicit rejection), never an error."""
    if isinstance(key, MLKEM512Key):
        return _mlkem512.decaps(key.dk, ciphertext)
    return key.decapsulate(ciphertext)
