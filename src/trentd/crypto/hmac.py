"""HMAC_224/256/384/512 keys: raw random bytes; MACs with the standard library's HMAC (OpenSSL
underneath). The hash comes from the spec table (`details["hash"]`). ``hmac.new`` rather than the
one-shot ``hmac.digest``: the latter releases the GIL on every call, a hand-over point on the
event loop (crypto/entropy.py), while an HMAC object does so only for messages of 2 KiB or more."""

from __future__ import annotations

import hmac as _std_hmac
import secrets

from .specs import KeySpec


def generate(ks: KeySpec) -> bytes:
    return secrets.token_bytes(ks.details["key_bytes"])


def mac(ks: KeySpec, key: bytes, message: bytes) -> bytes:
    return _std_hmac.new(key, message, ks.details["hash"].lower()).digest()


def verify(ks: KeySpec, key: bytes, message: bytes, tag: bytes) -> bool:
    return _std_hmac.compare_digest(mac(ks, key, message), tag)
