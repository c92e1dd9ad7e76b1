"""RSA, ECDSA/ECDH (NIST curves, secp256k1) and Ed25519 primitives for `asymmetric`.

Everything runs on `cryptography` except Ed25519ph, which `cryptography` cannot do: that one
uses pycryptodome's RFC 8032 implementation (`Crypto.Signature.eddsa`), loaded from the same
32-byte seed, so pure Ed25519 signatures of both libraries are identical.

Callers pass validated input: the facade has already checked algorithm, message type and digest
length. Key objects here are what `load` returns and are safe to share between threads.
"""

from __future__ import annotations

from typing import NamedTuple

from Crypto.Hash import SHA512 as _PH_SHA512
from Crypto.PublicKey import ECC as _PyEcc
from Crypto.Signature import eddsa as _eddsa
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from trentd.errors import validation

from .specs import KeySpec

HASHES: dict[str, hashes.HashAlgorithm] = {
    "SHA1": hashes.SHA1(),
    "SHA256": hashes.SHA256(),
    "SHA384": hashes.SHA384(),
    "SHA512": hashes.SHA512(),
}

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
}

_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_NO_ENCRYPTION = serialization.NoEncryption()


class Ed25519Key(NamedTuple):
    """One Ed25519 private key in both libraries: `cryptography` for pure Ed25519, pycryptodome
    for Ed25519ph."""

    key: ed25519.Ed25519PrivateKey
    ph_key: _PyEcc.EccKey


# --- keys -------------------------------------------------------------------------------------

def generate(ks: KeySpec):
    if ks.family == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=ks.details["bits"])
    if ks.family == "ecc":
        return ec.generate_private_key(_CURVES[ks.details["curve"]]())
    return _ed25519_pair(ed25519.Ed25519PrivateKey.generate())


def load(ks: KeySpec, material: bytes):
    """Parse PKCS#8 DER (RSA keys are fully validated by OpenSSL) and check it fits the spec."""
    try:
        key = serialization.load_der_private_key(material, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"key material is not a PKCS#8 private key for {ks.name}") from exc
    if ks.family == "rsa":
        fits = isinstance(key, rsa.RSAPrivateKey) and key.key_size == ks.details["bits"]
    elif ks.family == "ecc":
        fits = isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == ks.details["curve"]
    else:
        fits = isinstance(key, ed25519.Ed25519PrivateKey)
    if not fits:
        raise ValueError(f"key material is not a {ks.name} private key")
    return _ed25519_pair(key) if isinstance(key, ed25519.Ed25519PrivateKey) else key


def _ed25519_pair(key: ed25519.Ed25519PrivateKey) -> Ed25519Key:
    return Ed25519Key(key, _eddsa.import_private_key(key.private_bytes_raw()))


def private_der(key) -> bytes:
    return _plain(key).private_bytes(_DER, _PKCS8, _NO_ENCRYPTION)


def public_der(key) -> bytes:
    return _plain(key).public_key().public_bytes(_DER, _SPKI)


def _plain(key):
    return key.key if isinstance(key, Ed25519Key) else key


# --- signatures -------------------------------------------------------------------------------

def _rsa_padding(scheme: str, hash_: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if scheme == "pss":
        # AWS: salt length = digest length, MGF1 with the message hash.
        return padding.PSS(mgf=padding.MGF1(hash_), salt_length=hash_.digest_size)
    return padding.PKCS1v15()


def sign(key, scheme: str, hash_name: str | None, message: bytes, prehashed: bool) -> bytes:
    """scheme: pss | pkcs1 | ecdsa | ed25519 | ed25519ph. With `prehashed` (MessageType DIGEST)
    RSA and ECDSA sign `message` as the finished digest."""
    if scheme == "ed25519":
        return key.key.sign(message)
    if scheme == "ed25519ph":
        return _eddsa.new(key.ph_key, "rfc8032").sign(_PH_SHA512.new(message))
    assert hash_name is not None  # every RSA and ECDSA algorithm names its hash
    hash_ = HASHES[hash_name]
    algorithm = Prehashed(hash_) if prehashed else hash_
    if scheme == "ecdsa":
        return key.sign(message, ec.ECDSA(algorithm))
    return key.sign(message, _rsa_padding(scheme, hash_), algorithm)


def verify(key, scheme: str, hash_name: str | None, message: bytes, prehashed: bool,
           signature: bytes) -> bool:
    try:
        if scheme == "ed25519":
            key.key.public_key().verify(signature, message)
        elif scheme == "ed25519ph":
            _eddsa.new(key.ph_key.public_key(), "rfc8032").verify(_PH_SHA512.new(message), signature)
        else:
            assert hash_name is not None  # every RSA and ECDSA algorithm names its hash
            hash_ = HASHES[hash_name]
            algorithm = Prehashed(hash_) if prehashed else hash_
            public = key.public_key()
            if scheme == "ecdsa":
                public.verify(signature, message, ec.ECDSA(algorithm))
            else:
                public.verify(signature, message, _rsa_padding(scheme, hash_), algorithm)
    except (InvalidSignature, ValueError):  # pycryptodome says ValueError for a bad signature
        return False
    return True


def ed25519ph_sign(key: Ed25519Key, message: bytes) -> bytes:
    """RFC 8032 Ed25519ph (empty context) of `message`: PH(message) = SHA-512(message)."""
    return sign(key, "ed25519ph", None, message, False)


# --- RSA encryption ---------------------------------------------------------------------------

def _oaep(hash_name: str) -> padding.OAEP:
    hash_ = HASHES[hash_name]
    return padding.OAEP(mgf=padding.MGF1(hash_), algorithm=hash_, label=None)


def rsa_encrypt(key: rsa.RSAPrivateKey, hash_name: str, plaintext: bytes) -> bytes:
    return key.public_key().encrypt(plaintext, _oaep(hash_name))


def rsa_decrypt(key: rsa.RSAPrivateKey, hash_name: str, ciphertext: bytes) -> bytes | None:
    """None when the ciphertext does not decrypt (wrong length, padding or key)."""
    try:
        return key.decrypt(ciphertext, _oaep(hash_name))
    except ValueError:
        return None


# --- ECDH ---------------------------------------------------------------------------------------

def ecdh(ks: KeySpec, key: ec.EllipticCurvePrivateKey, peer_public_der: bytes) -> bytes:
    """Raw ECDH shared secret (the x coordinate, 32/48/66 bytes) with a peer's SPKI public key."""
    try:
        peer = serialization.load_der_public_key(peer_public_der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Also a point that is not on its curve: OpenSSL refuses to load it. AWS answers a
        # PublicKey that is no valid SPKI with a ValidationException without a message.
        raise validation("") from None
    curve = ks.details["curve"]
    if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != curve:
        raise validation(f"PublicKey must be an elliptic curve public key on curve {curve}, "
                         f"the curve of key spec {ks.name}.")
    return key.exchange(ec.ECDH(), peer)
