"""Symmetric ciphertext blobs (format v1, documented in docs/ciphertext.md).

    version(1)=0x01 | account(12, ASCII digits) | key-id length(1) | key id(ASCII)
    | key-material id(32) | salt(16) | nonce(12) | AES-256-GCM ciphertext and tag(16)

Each message is encrypted under a fresh key, HKDF-SHA256(backing key, salt), so one backing key
can safely encrypt far more than 2^32 messages. The AAD is the whole header followed by a
length-prefixed canonical encoding of the encryption context, so neither the header nor the
context can be changed, and {"a": "bc"} never collides with {"ab": "c"}. No region is bound:
a multi-Region key's replicas decrypt each other's ciphertext.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .entropy import random_bytes

VERSION = 1
_HKDF_INFO = b"trentd ciphertext v1"
_SHA256 = hashes.SHA256()  # an immutable descriptor: shared, not made per message
_FIXED = 1 + 12 + 1  # version, account, key-id length
_TAIL = 32 + 16 + 12  # material id, salt, nonce
_TAG = 16


class MalformedCiphertext(Exception):
    """The blob is not a trentd v1 ciphertext (or does not authenticate)."""


@dataclass(frozen=True)
class Header:
    account: str
    key_id: str
    material_id: bytes  # 32 raw bytes; the API shows it as 64 hex characters


_NO_CONTEXT = bytes(4)  # zero pairs: what canonical_context gives for None or {}


def canonical_context(context: dict[str, str] | None) -> bytes:
    """Sorted, length-prefixed pairs: unambiguous for any keys and values."""
    if not context:
        return _NO_CONTEXT
    items = sorted((k.encode(), v.encode()) for k, v in context.items())
    out = bytearray(len(items).to_bytes(4, "big"))
    for key, value in items:
        out += len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value
    return bytes(out)


def _derive(backing_key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=_SHA256, length=32, salt=salt, info=_HKDF_INFO)
    return AESGCM(hkdf.derive(backing_key))


def _header_bytes(header: Header) -> bytes:
    key_id = header.key_id.encode("ascii")
    return bytes([VERSION]) + header.account.encode("ascii") + bytes([len(key_id)]) + key_id + header.material_id


@functools.lru_cache(maxsize=4096)
def header_for(account: str, key_id: str, material_id: str) -> bytes:
    """The clear header of every blob under one key material (``material_id`` in hex, as stored):
    the same bytes for each message, so made once per material rather than per request."""
    return _header_bytes(Header(account, key_id, bytes.fromhex(material_id)))


def encrypt(header: bytes, backing_key: bytes, plaintext: bytes, context: dict[str, str] | None) -> bytes:
    """A v1 blob; ``header``: the key material's clear header, from header_for."""
    fresh = random_bytes(28)
    salt, nonce = fresh[:16], fresh[16:]
    prefix = header + fresh
    return prefix + _derive(backing_key, salt).encrypt(nonce, plaintext, prefix + canonical_context(context))


def read_header(blob: bytes) -> Header:
    """Parse the clear header; any malformation raises MalformedCiphertext."""
    if len(blob) < _FIXED + _TAIL + _TAG or blob[0] != VERSION:
        raise MalformedCiphertext
    account = blob[1:13]
    id_len = blob[13]
    end = _FIXED + id_len
    if not account.isdigit() or not 1 <= id_len <= 64 or len(blob) < end + _TAIL + _TAG:
        raise MalformedCiphertext
    try:
        key_id = blob[_FIXED:end].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedCiphertext from None
    return Header(account.decode("ascii"), key_id, blob[end : end + 32])


def decrypt(blob: bytes, backing_key: bytes, context: dict[str, str] | None, header: Header | None = None) -> bytes:
    """The plaintext; ``header``: what read_header(blob) gave, when the caller already has it."""
    header = header or read_header(blob)
    body_start = _FIXED + len(header.key_id) + _TAIL
    prefix = blob[:body_start]
    salt, nonce = prefix[-28:-12], prefix[-12:]
    try:
        return _derive(backing_key, salt).decrypt(nonce, blob[body_start:], prefix + canonical_context(context))
    except InvalidTag:
        raise MalformedCiphertext from None
