"""External keys of the XKS proxy (``trentd xks keys``): AES-256 material generated here and
wrapped under the root key (file or PKCS#11, whichever holds it), never shown; key usages from
the spec's list and a status (ENABLED or DISABLED) that AWS KMS reads through GetKeyMetadata.
Deleting a key is crypto-shredding: every ciphertext under it is lost, so it is refused while the
key is enabled."""

from __future__ import annotations

import os
import re
import uuid

from ..store.records import XksProxyKey
from ..store.xksproxy import material_aad
from .keystores import KeystoreError, existing

KEY_SPEC = "AES_256"
# The spec: ENCRYPT and DECRYPT, and "additional values supported by that external key, e.g.
# PKCS11-based HSMs additionally support DERIVE, SIGN, VERIFY, WRAP, UNWRAP"; at most ten.
USAGES = ("ENCRYPT", "DECRYPT", "SIGN", "VERIFY", "WRAP", "UNWRAP", "DERIVE")
DEFAULT_USAGES = ("ENCRYPT", "DECRYPT")
STATUSES = ("ENABLED", "DISABLED")
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")  # the spec's externalKeyId


def parse_usages(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_USAGES
    usages = tuple(dict.fromkeys(u.strip().upper() for u in text.split(",") if u.strip()))
    unknown = [u for u in usages if u not in USAGES]
    if not usages or unknown:
        raise KeystoreError(f"--usage: a comma-separated list of {', '.join(USAGES)}")
    return usages


def describe(key: XksProxyKey) -> dict:
    return {"KeyId": key.key_id, "KeySpec": KEY_SPEC, "KeyUsage": list(key.usages), "KeyStatus": key.status,
            "CreationDate": key.created}


def create(tx, ring, keystore: str, usages: tuple[str, ...], now: float, key_id: str | None = None) -> dict:
    """A new key; its id a UUID, or ``key_id`` (an inventory name: the spec's externalKeyId characters)."""
    existing(tx, keystore)
    if key_id is None:
        key_id = str(uuid.uuid4())
    elif not KEY_ID.fullmatch(key_id):
        raise KeystoreError("--key-id: 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
    elif tx.get_xks_proxy_key(keystore, key_id) is not None:
        raise KeystoreError(f"the XKS key store {keystore!r} has a key {key_id!r} already")
    material = os.urandom(32)
    wrapped = ring.wrap(material, material_aad(keystore, key_id))
    tx.insert_xks_proxy_key(XksProxyKey(keystore, key_id, wrapped, usages, "ENABLED", now))
    return {"KeyId": key_id, "KeyStore": keystore, "KeyUsage": list(usages)}


def _key(tx, keystore: str, key_id: str) -> XksProxyKey:
    existing(tx, keystore)
    key = tx.get_xks_proxy_key(keystore, key_id)
    if key is None:
        raise KeystoreError(f"the XKS key store {keystore!r} has no key {key_id!r}")
    return key


def set_status(tx, keystore: str, key_id: str, status: str) -> dict:
    key = _key(tx, keystore, key_id)
    tx.set_xks_proxy_key_status(keystore, key.key_id, status)
    return {"KeyId": key.key_id, "KeyStatus": status}


def delete(tx, keystore: str, key_id: str) -> dict:
    key = _key(tx, keystore, key_id)
    if key.status == "ENABLED":
        raise KeystoreError(f"the key {key_id} is enabled: disable it first (deleting it destroys its material, "
                            "and every ciphertext under it becomes undecryptable)")
    tx.delete_xks_proxy_key(keystore, key_id)
    return {"Deleted": key_id, "KeyStore": keystore}
