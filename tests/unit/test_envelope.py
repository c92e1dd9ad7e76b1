"""The v1 ciphertext format (docs/ciphertext.md), rebuilt here independently of crypto/envelope.py,
so a change made for speed (cached headers, the empty-context constant) cannot change the bytes."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trentd.crypto import envelope

ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
MATERIAL_ID = bytes(range(32))


def _expected_blob(backing_key: bytes, fresh: bytes, plaintext: bytes, context_bytes: bytes) -> bytes:
    header = b"\x01" + ACCOUNT.encode() + bytes([len(KEY_ID)]) + KEY_ID.encode() + MATERIAL_ID
    salt, nonce = fresh[:16], fresh[16:]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"trentd ciphertext v1").derive(backing_key)
    prefix = header + salt + nonce
    return prefix + AESGCM(key).encrypt(nonce, plaintext, prefix + context_bytes)


@pytest.mark.parametrize("context, context_bytes", [
    (None, b"\0\0\0\0"),
    ({}, b"\0\0\0\0"),
    ({"b": "2", "a": "1"}, b"\0\0\0\2" + b"\0\0\0\1a\0\0\0\0011" + b"\0\0\0\1b\0\0\0\0012"),
], ids=["none", "empty", "two-pairs"])
def test_blob_bytes_are_format_v1(monkeypatch, context, context_bytes):
    backing_key, fresh = os.urandom(32), os.urandom(28)
    monkeypatch.setattr(envelope, "random_bytes", lambda n: fresh[:n])
    blob = envelope.encrypt(envelope.header_for(ACCOUNT, KEY_ID, MATERIAL_ID.hex()), backing_key, b"secret", context)
    assert blob == _expected_blob(backing_key, fresh, b"secret", context_bytes)


def test_a_parsed_header_decrypts_like_parsing_again():
    backing_key = os.urandom(32)
    blob = envelope.encrypt(envelope.header_for(ACCOUNT, KEY_ID, MATERIAL_ID.hex()), backing_key, b"x", {"k": "v"})
    header = envelope.read_header(blob)
    assert (header.account, header.key_id, header.material_id) == (ACCOUNT, KEY_ID, MATERIAL_ID)
    assert envelope.decrypt(blob, backing_key, {"k": "v"}, header) == b"x"
    assert envelope.decrypt(blob, backing_key, {"k": "v"}) == b"x"
    with pytest.raises(envelope.MalformedCiphertext):
        envelope.decrypt(blob, backing_key, {"k": "w"}, header)


def test_no_context_and_empty_context_are_the_same_context():
    backing_key = os.urandom(32)
    header = envelope.header_for(ACCOUNT, KEY_ID, MATERIAL_ID.hex())
    assert envelope.decrypt(envelope.encrypt(header, backing_key, b"x", None), backing_key, {}) == b"x"
    assert envelope.decrypt(envelope.encrypt(header, backing_key, b"x", {}), backing_key, None) == b"x"
