"""Ciphertext blobs of keys in an external key store (format v2, documented in docs/ciphertext.md).

Double encryption, as AWS KMS does for external key stores: the plaintext is first sealed under
the KMS key's own backing key (inner layer, AES-256-GCM under an HKDF-derived per-message key),
then the external key manager encrypts that inner ciphertext through the XKS proxy (outer layer).
Neither trentd alone nor the proxy alone can decrypt.

    header = version(1)=0x02 | account(12) | key-id length(1) | key id | key-material id(32)
             | xks-key-id length(1) | xks key id
    blob   = header | iv length(1) | iv (12 or 16) | metadata length(1) | ciphertextMetadata (0-20)
             | authenticationTag(16) | proxy ciphertext (= len(inner))
    inner  = salt(16) | nonce(12) | AES-256-GCM(HKDF(backing key, salt), nonce, plaintext,
             AAD = header | canonical context) with its tag(16)

The proxy's AAD is SHA-256("trentd xks v2" | 0x00 | header | canonical context): it binds the
external layer to the same header and encryption context, in 32 bytes whatever the context's
size (the proxy must accept 8,192 bytes of AAD; a context can be larger).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .envelope import MalformedCiphertext, canonical_context

VERSION = 2
_HKDF_INFO = b"trentd ciphertext v2 xks inner"
_AAD_DOMAIN = b"trentd xks v2\x00"
_SALT, _NONCE, _TAG = 16, 12, 16
MAX_METADATA = 20  # the spec's limit on ciphertextMetadata
IV_SIZES = (12, 16)

__all__ = ["MalformedCiphertext", "XksHeader", "XksBlob", "is_xks_blob", "header_bytes", "inner_seal",
           "inner_open", "proxy_aad", "assemble", "parse"]


@dataclass(frozen=True)
class XksHeader:
    account: str
    key_id: str
    material_id: bytes  # 32 raw bytes of the KMS-side backing key's id
    xks_key_id: str


@dataclass(frozen=True)
class XksBlob:
    header: XksHeader
    header_bytes: bytes
    iv: bytes
    metadata: bytes
    tag: bytes
    ciphertext: bytes


def is_xks_blob(blob: bytes) -> bool:
    return bool(blob) and blob[0] == VERSION


def header_bytes(h: XksHeader) -> bytes:
    key_id, xks_id = h.key_id.encode("ascii"), h.xks_key_id.encode("ascii")
    return (bytes([VERSION]) + h.account.encode("ascii") + bytes([len(key_id)]) + key_id + h.material_id
            + bytes([len(xks_id)]) + xks_id)


def _derive(backing_key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(backing_key))


def inner_seal(header: bytes, backing_key: bytes, plaintext: bytes, context: dict[str, str] | None) -> bytes:
    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    return salt + nonce + _derive(backing_key, salt).encrypt(nonce, plaintext, header + canonical_context(context))


def inner_open(header: bytes, backing_key: bytes, inner: bytes, context: dict[str, str] | None) -> bytes:
    if len(inner) < _SALT + _NONCE + _TAG:
        raise MalformedCiphertext
    salt, nonce = inner[:_SALT], inner[_SALT:_SALT + _NONCE]
    try:
        return _derive(backing_key, salt).decrypt(nonce, inner[_SALT + _NONCE:], header + canonical_context(context))
    except InvalidTag:
        raise MalformedCiphertext from None


def proxy_aad(header: bytes, context: dict[str, str] | None) -> bytes:
    return hashlib.sha256(_AAD_DOMAIN + header + canonical_context(context)).digest()


def assemble(header: bytes, iv: bytes, metadata: bytes, tag: bytes, ciphertext: bytes) -> bytes:
    if len(iv) not in IV_SIZES or len(metadata) > MAX_METADATA or len(tag) != _TAG:
        raise ValueError("proxy output out of range")
    return header + bytes([len(iv)]) + iv + bytes([len(metadata)]) + metadata + tag + ciphertext


def parse(blob: bytes) -> XksBlob:
    """Split a v2 blob; any malformation raises MalformedCiphertext."""
    try:
        if blob[0] != VERSION:
            raise MalformedCiphertext
        account = blob[1:13]
        pos = 13
        id_len = blob[pos]
        key_id = blob[pos + 1:pos + 1 + id_len]
        pos += 1 + id_len
        material_id = blob[pos:pos + 32]
        pos += 32
        xks_len = blob[pos]
        xks_id = blob[pos + 1:pos + 1 + xks_len]
        pos += 1 + xks_len
        head = blob[:pos]
        iv_len = blob[pos]
        iv = blob[pos + 1:pos + 1 + iv_len]
        pos += 1 + iv_len
        md_len = blob[pos]
        metadata = blob[pos + 1:pos + 1 + md_len]
        pos += 1 + md_len
        tag = blob[pos:pos + _TAG]
        ciphertext = blob[pos + _TAG:]
    except IndexError:
        raise MalformedCiphertext from None
    if (len(account) != 12 or not account.isdigit() or not 1 <= id_len <= 64 or len(key_id) != id_len
            or len(material_id) != 32 or not 1 <= xks_len <= 128 or len(xks_id) != xks_len
            or iv_len not in IV_SIZES or len(iv) != iv_len or md_len > MAX_METADATA or len(metadata) != md_len
            or len(tag) != _TAG or len(ciphertext) < _SALT + _NONCE + _TAG):
        raise MalformedCiphertext
    try:
        header = XksHeader(account.decode("ascii"), key_id.decode("ascii"), material_id, xks_id.decode("ascii"))
    except UnicodeDecodeError:
        raise MalformedCiphertext from None
    return XksBlob(header, head, iv, metadata, tag, ciphertext)
