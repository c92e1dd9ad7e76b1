"""Root-key providers: everything secret in the store is wrapped under the root key.

A wrapped value is ``version (1 B) || nonce (12 B) || AES-256-GCM(ciphertext || tag)``; the AAD
names what the value is (for key material: account, key id and material id), so a wrapped blob
copied onto another row does not unwrap. The ``file`` provider keeps 32 random bytes in a 0600
file; the store keeps a canary wrapped under the root key so a node given the wrong root key
refuses to start instead of failing later on every request.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

WRAP_VERSION = b"\x01"
CANARY_AAD = b"trentd root-key canary"


class RootKeyError(Exception):
    """The root key is missing, unreadable or not the one the store was written with."""


def aad_for(*parts: str) -> bytes:
    """Length-prefixed so that no two different tuples give the same AAD."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


class FileRootKey:
    name = "file"

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise RootKeyError("the root key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, path: Path, create: bool) -> "FileRootKey":
        if path.exists():
            return cls.load(path)
        if not create:
            raise RootKeyError(f"root key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        # O_EXCL: two processes racing at first start must not write two different keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> "FileRootKey":
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise RootKeyError(f"cannot read root key file {path}: {exc.strerror}") from None

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return WRAP_VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        if wrapped[:1] != WRAP_VERSION:
            raise RootKeyError("unknown wrapping format")
        try:
            return self._aead.decrypt(wrapped[1:13], wrapped[13:], aad)
        except InvalidTag:
            raise RootKeyError("wrapped value does not unwrap under this root key") from None


def make_canary(root_key) -> bytes:
    return root_key.wrap(secrets.token_bytes(16), CANARY_AAD)


def check_canary(root_key, canary: bytes) -> None:
    root_key.unwrap(canary, CANARY_AAD)
