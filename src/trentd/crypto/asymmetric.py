"""Asymmetric and HMAC primitives per key spec: key material in, bytes out.

The whole surface is the functions below. They know nothing of HTTP, key metadata or storage:
they take a spec name (`specs.KEY_SPECS`), key *material* and request bytes. Material is a private
key in PKCS#8 DER (ML-DSA and ML-KEM-768/1024 in the seed form; ML-KEM-512 in the expandedKey
form, see `pq`), or raw key bytes for HMAC_*. Public keys are SubjectPublicKeyInfo DER.

Errors are AWS's (`trentd.errors.AWSError`) where AWS defines one; material that does not parse
or does not fit its spec raises ValueError (the caller's bug or a corrupt store: a 500, or the
import error of ImportKeyMaterial).

Message types (Sign/Verify):
- RSA and ECDSA take RAW or DIGEST; a DIGEST must be exactly the algorithm's hash length and is
  signed as that hash (PKCS#1 DigestInfo / PSS / ECDSA over it), so it verifies against RAW.
- ED25519_SHA_512 takes RAW only (pure Ed25519); ED25519_PH_SHA_512 takes DIGEST only, 64 bytes.
- ML_DSA_SHAKE_256 takes RAW (pure ML-DSA, empty context) or EXTERNAL_MU (a 64-byte μ).

Ed25519ph, as AWS does it. The Sign API reference says that with ED25519_PH_SHA_512 and
MessageType DIGEST "KMS still performs the SHA-512 prehash described in Step 1 of Section 7.8.1
in FIPS 186-5. This means the input is hashed twice: once by you and once by KMS." So the 64-byte
Message D is the *message* of HashEdDSA, not PH(M): the signature is RFC 8032 Ed25519ph (phflag 1,
empty context) with PH(D) = SHA-512(D). For D = SHA-512(M) a standard Ed25519ph verifier checks it
against the message D (PH input SHA-512(SHA-512(M))), not against M. The emulator floci, whose
Ed25519 rules were checked against real KMS, does the same (Bouncy Castle's Ed25519phSigner over D).

Speed: parsed private keys are kept in a bounded LRU keyed by (spec, material). OpenSSL validates
an RSA key when it loads it (35 ms for RSA-2048, 250 ms for RSA-4096: far more than a signature),
and keys generated here enter the cache already parsed. The heavy work (RSA, ECDSA, ML-*) runs in
Rust/C; `cryptography` releases the GIL for RSA. Run RSA generation and cold RSA loads on the
thread pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from trentd.errors import AWSError, invalid_ciphertext, validation

from . import hmac as _hmac
from . import pq, rsa_ecc
from .specs import (
    ENCAPSULATE_DECAPSULATE,
    ENCRYPT_DECRYPT,
    GENERATE_VERIFY_MAC,
    KEY_AGREEMENT,
    KEY_SPECS,
    SIGN_VERIFY,
    KeySpec,
)

RAW, DIGEST, EXTERNAL_MU = "RAW", "DIGEST", "EXTERNAL_MU"
EXTERNAL_MU_BYTES = 64


@dataclass(frozen=True)
class _Signing:
    scheme: str  # pss | pkcs1 | ecdsa | ed25519 | ed25519ph | ml_dsa
    hash: str | None = None  # rsa_ecc.HASHES name; a DIGEST message has its length
    message_types: frozenset[str] | None = None  # set when the algorithm itself restricts them


_SIGNING: dict[str, _Signing] = {
    **{f"RSASSA_PSS_SHA_{n}": _Signing("pss", f"SHA{n}") for n in (256, 384, 512)},
    **{f"RSASSA_PKCS1_V1_5_SHA_{n}": _Signing("pkcs1", f"SHA{n}") for n in (256, 384, 512)},
    **{f"ECDSA_SHA_{n}": _Signing("ecdsa", f"SHA{n}") for n in (256, 384, 512)},
    "ED25519_SHA_512": _Signing("ed25519", None, frozenset({RAW})),
    "ED25519_PH_SHA_512": _Signing("ed25519ph", "SHA512", frozenset({DIGEST})),
    "ML_DSA_SHAKE_256": _Signing("ml_dsa"),
}
# Message types a family accepts when the algorithm sets none of its own.
_FAMILY_MESSAGE_TYPES = {
    "rsa": frozenset({RAW, DIGEST}),
    "ecc": frozenset({RAW, DIGEST}),
    "ml_dsa": frozenset({RAW, EXTERNAL_MU}),
}
_OAEP_HASH = {"RSAES_OAEP_SHA_1": "SHA1", "RSAES_OAEP_SHA_256": "SHA256"}
_FAMILY_MODULE = {"rsa": rsa_ecc, "ecc": rsa_ecc, "ed25519": rsa_ecc, "ml_dsa": pq, "ml_kem": pq}


# --- key cache --------------------------------------------------------------------------------

class _LRU:
    """A small thread-safe LRU (functools.lru_cache cannot be primed with a generated key)."""

    def __init__(self, maxsize: int):
        self._maxsize = maxsize
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_private_keys = _LRU(1024)
_public_keys = _LRU(256)


def clear_key_cache() -> None:
    """Forget every parsed key (e.g. after key material is deleted)."""
    _private_keys.clear()
    _public_keys.clear()


def _private_key(ks: KeySpec, material: bytes):
    cache_key = (ks.name, material)
    key = _private_keys.get(cache_key)
    if key is None:
        key = _module(ks).load(ks, material)  # outside the lock: an RSA load takes milliseconds
        _private_keys.put(cache_key, key)
    return key


# --- checks -----------------------------------------------------------------------------------

def _spec(name: str) -> KeySpec:
    ks = KEY_SPECS.get(name)
    if ks is None:
        raise ValueError(f"unknown key spec {name!r}")
    if not ks.supported:
        raise AWSError("UnsupportedOperationException", f"Key spec {name} is not supported.")
    return ks


def _module(ks: KeySpec):
    module = _FAMILY_MODULE.get(ks.family)
    if module is None:
        raise AWSError("UnsupportedOperationException", f"Key spec {ks.name} has no key pair.")
    return module


def _require_algorithm(ks: KeySpec, usage: str, algorithm: str) -> None:
    if algorithm not in ks.algorithms.get(usage, ()):
        raise AWSError("InvalidKeyUsageException",
                       f"Algorithm {algorithm} is incompatible with key spec {ks.name}.")


def _signing(spec: str, algorithm: str, message_type: str, message: bytes) -> tuple[KeySpec, _Signing]:
    ks = _spec(spec)
    _require_algorithm(ks, SIGN_VERIFY, algorithm)
    sig = _SIGNING[algorithm]
    if sig.message_types is not None:
        if message_type not in sig.message_types:
            raise validation(f"Message type {message_type} is incompatible with algorithm {algorithm}.")
    elif message_type not in _FAMILY_MESSAGE_TYPES[ks.family]:
        raise validation(f"Message type {message_type} is incompatible with key spec {spec}.")
    if message_type == DIGEST:
        assert sig.hash is not None  # every algorithm that takes a DIGEST names its hash
        if len(message) != rsa_ecc.HASHES[sig.hash].digest_size:
            raise validation(f"Digest is invalid length for algorithm {algorithm}.")
    if message_type == EXTERNAL_MU and len(message) != EXTERNAL_MU_BYTES:
        raise validation(f"Message of type EXTERNAL_MU must be exactly {EXTERNAL_MU_BYTES} bytes "
                         f"for algorithm {algorithm}.")
    return ks, sig


# --- the facade -------------------------------------------------------------------------------

def generate_material(spec: str) -> bytes:
    """New key material: PKCS#8 DER, or raw bytes for HMAC_* (28/32/48/64 bytes)."""
    ks = _spec(spec)
    if ks.family == "hmac":
        return _hmac.generate(ks)
    return generate_key_pair(spec)[0]


def generate_key_pair(key_pair_spec: str) -> tuple[bytes, bytes]:
    """(private key PKCS#8 DER, public key SPKI DER) for any asymmetric spec (every KeyPairSpec but
    SM2). RSA generation is slow (RSA-4096 ~0.4 s): call it from the thread pool."""
    ks = _spec(key_pair_spec)
    module = _module(ks)
    key = module.generate(ks)
    material = module.private_der(key)
    _private_keys.put((ks.name, material), key)
    return material, module.public_der(key)


def public_key_der(spec: str, material: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER of a private key (loading it validates the material)."""
    ks = _spec(spec)
    return _module(ks).public_der(_private_key(ks, material))


def sign(spec: str, material: bytes, algorithm: str, message_type: str, message: bytes) -> bytes:
    ks, sig = _signing(spec, algorithm, message_type, message)
    key = _private_key(ks, material)
    if sig.scheme == "ml_dsa":
        return pq.ml_dsa_sign(key, message, message_type == EXTERNAL_MU)
    return rsa_ecc.sign(key, sig.scheme, sig.hash, message, message_type == DIGEST)


def verify(spec: str, material: bytes, algorithm: str, message_type: str, message: bytes,
           signature: bytes) -> bool:
    """False for any signature that does not verify; raises only for an invalid request."""
    ks, sig = _signing(spec, algorithm, message_type, message)
    key = _private_key(ks, material)
    if sig.scheme == "ml_dsa":
        return pq.ml_dsa_verify(key, message, message_type == EXTERNAL_MU, signature)
    return rsa_ecc.verify(key, sig.scheme, sig.hash, message, message_type == DIGEST, signature)


def encrypt(spec: str, material: bytes, algorithm: str, plaintext: bytes) -> bytes:
    """RSAES-OAEP with SHA-1 or SHA-256 (MGF1 with the same hash, no label)."""
    ks = _spec(spec)
    _require_algorithm(ks, ENCRYPT_DECRYPT, algorithm)
    limit = ks.details["max_plaintext"][algorithm]
    if len(plaintext) > limit:
        raise validation(f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger "
                         f"than {limit} bytes.")
    return rsa_ecc.rsa_encrypt(_private_key(ks, material), _OAEP_HASH[algorithm], plaintext)


def decrypt(spec: str, material: bytes, algorithm: str, ciphertext: bytes) -> bytes:
    ks = _spec(spec)
    _require_algorithm(ks, ENCRYPT_DECRYPT, algorithm)
    plaintext = rsa_ecc.rsa_decrypt(_private_key(ks, material), _OAEP_HASH[algorithm], ciphertext)
    if plaintext is None:
        raise invalid_ciphertext()
    return plaintext


def mac(spec: str, material: bytes, algorithm: str, message: bytes) -> bytes:
    ks = _spec(spec)
    _require_algorithm(ks, GENERATE_VERIFY_MAC, algorithm)
    return _hmac.mac(ks, material, message)


def verify_mac(spec: str, material: bytes, algorithm: str, message: bytes, tag: bytes) -> bool:
    """Constant-time comparison of `tag` with the MAC of `message`."""
    ks = _spec(spec)
    _require_algorithm(ks, GENERATE_VERIFY_MAC, algorithm)
    return _hmac.verify(ks, material, message, tag)


def derive_shared_secret(spec: str, material: bytes, peer_public_der: bytes) -> bytes:
    """Raw ECDH secret with the peer's SPKI public key (same curve as the key)."""
    ks = _spec(spec)
    _require_algorithm(ks, KEY_AGREEMENT, "ECDH")
    return rsa_ecc.ecdh(ks, _private_key(ks, material), peer_public_der)


def encapsulate(spec: str, public_der: bytes) -> tuple[bytes, bytes]:
    """(32-byte shared secret, ciphertext) for an ML-KEM public key in SPKI DER."""
    ks = _spec(spec)
    _require_algorithm(ks, ENCAPSULATE_DECAPSULATE, "ML_KEM")
    cache_key = (ks.name, public_der)
    public = _public_keys.get(cache_key)
    if public is None:
        public = pq.load_public(ks, public_der)
        _public_keys.put(cache_key, public)
    return pq.encapsulate(public)


def decapsulate(spec: str, material: bytes, ciphertext: bytes) -> bytes:
    """The 32-byte shared secret; InvalidCiphertextException only for a wrong length (a wrong
    ciphertext of the right length yields a pseudo-random secret: implicit rejection)."""
    ks = _spec(spec)
    _require_algorithm(ks, ENCAPSULATE_DECAPSULATE, "ML_KEM")
    if len(ciphertext) != ks.details["ciphertext_bytes"]:
        raise invalid_ciphertext()
    return pq.decapsulate(_private_key(ks, material), ciphertext)
