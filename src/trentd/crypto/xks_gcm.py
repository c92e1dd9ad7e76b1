"""AES-256-GCM as the XKS Proxy API specifies it (aws/aws-kms-xksproxy-api-spec v1), for trentd
serving as an XKS proxy (xksproxy/): the proxy's side of Encrypt and Decrypt.

- The AES-GCM AAD is the spec's unambiguous encoding: 2-byte big-endian length of the AAD | AAD |
  1-byte length of ciphertextMetadata | ciphertextMetadata (both lengths zero when absent), so a
  caller cannot move bytes between the AAD and the metadata.
- IVs are 12 random bytes; Decrypt also accepts the 16-byte IVs the spec allows.
- The ciphertext data integrity value (CDIV) is SHA-256(AAD | metadata | IV | ciphertext | tag),
  without lengths (the spec's Appendix C).
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

IV_BYTES = 12
IV_SIZES = (12, 16)
TAG_BYTES = 16
MAX_METADATA = 20

__all__ = ["InvalidTag", "IV_SIZES", "TAG_BYTES", "MAX_METADATA", "gcm_aad", "seal", "unseal", "integrity_value"]


def gcm_aad(aad: bytes, metadata: bytes) -> bytes:
    return len(aad).to_bytes(2, "big") + aad + len(metadata).to_bytes(1, "big") + metadata


def seal(material: bytes, plaintext: bytes, aad: bytes, metadata: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(iv, ciphertext, tag) of ``plaintext`` under the 32-byte ``material``."""
    iv = os.urandom(IV_BYTES)
    sealed = AESGCM(material).encrypt(iv, plaintext, gcm_aad(aad, metadata))
    return iv, sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]


def unseal(material: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes, metadata: bytes = b"") -> bytes:
    """The plaintext; raises InvalidTag when anything does not authenticate."""
    if len(iv) == IV_BYTES:
        return AESGCM(material).decrypt(iv, ciphertext + tag, gcm_aad(aad, metadata))
    # 16-byte IVs (allowed by the spec): AESGCM takes them too, but only through the streaming API
    decryptor = Cipher(algorithms.AES(material), modes.GCM(iv, tag)).decryptor()
    decryptor.authenticate_additional_data(gcm_aad(aad, metadata))
    return decryptor.update(ciphertext) + decryptor.finalize()


def integrity_value(aad: bytes, metadata: bytes, iv: bytes, ciphertext: bytes, tag: bytes) -> bytes:
    return hashlib.sha256(aad + metadata + iv + ciphertext + tag).digest()
