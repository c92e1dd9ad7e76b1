"""Logical key stores of the XKS proxy and their SigV4 credentials (``trentd xks keystores`` and
``trentd xks credentials``). Every change is one store transaction; the change feed
(store/changes.py) brings it to every worker and node within a second.

Credentials have the form AWS KMS accepts for ``XksProxyAuthenticationCredential``: an access key
id of 20–30 characters from A–Z and 2–7 (base32 of random bytes: it reveals nothing of the secret)
and a secret that is the standard base64 of 32 random bytes. A key store has one or two live
credentials, so AWS KMS's can be rotated without an outage (the spec's "SigV4 credentials rotation").
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid

from ..auth.policy import parse_policy
from ..errors import AWSError
from ..store.records import XksProxyCredential, XksProxyKeystore
from ..store.xksproxy import credential_aad

MAX_CREDENTIALS = 2
MAX_URI_PATH = 128
URI_PATH = re.compile(r"(/[a-zA-Z0-9/_-]+/kms/xks/v\d{1,2})|(/kms/xks/v\d{1,2})")
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
ACCOUNT = re.compile(r"\d{12}")
API_VERSION_PATH = "/kms/xks/v1"


class KeystoreError(ValueError):
    """An admin request that cannot be done; the message says why."""


def new_access_key_id() -> str:
    return base64.b32encode(secrets.token_bytes(15)).decode("ascii")  # 24 characters of A-Z, 2-7


def new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def uri_path_for(prefix: str | None) -> str:
    """``PREFIX/kms/xks/v1``; without a prefix ``/keystores/<uuid>/kms/xks/v1``."""
    if prefix is None:
        path = f"/keystores/{uuid.uuid4()}{API_VERSION_PATH}"
    else:
        stripped = prefix.rstrip("/")
        if stripped and not stripped.startswith("/"):
            stripped = "/" + stripped
        path = stripped + API_VERSION_PATH
    if len(path) > MAX_URI_PATH or not URI_PATH.fullmatch(path):
        raise KeystoreError(f"--uri-prefix {prefix!r} gives the URI path {path!r}, which AWS KMS refuses: at most "
                            f"{MAX_URI_PATH} characters of a-z, A-Z, 0-9, '/', '-' and '_', ending in /kms/xks/v1")
    return path


def _issue(tx, ring, keystore: str, now: float) -> dict:
    access_key_id, secret = new_access_key_id(), new_secret()
    wrapped = ring.wrap(secret.encode("ascii"), credential_aad(keystore, access_key_id))
    tx.insert_xks_proxy_credential(XksProxyCredential(access_key_id, keystore, wrapped, now))
    return {"AccessKeyId": access_key_id, "SecretAccessKey": secret}


def existing(tx, name: str) -> XksProxyKeystore:
    keystore = tx.get_xks_proxy_keystore(name)
    if keystore is None:
        raise KeystoreError(f"no XKS key store named {name!r}")
    return keystore


def create(tx, ring, name: str, prefix: str | None, account: str, now: float) -> dict:
    """The new key store's URI path and its first credential (shown once: only its wrapped form is kept)."""
    if not NAME.fullmatch(name):
        raise KeystoreError("--name: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
    if not ACCOUNT.fullmatch(account):
        raise KeystoreError("--account: 12 digits")
    if tx.get_xks_proxy_keystore(name) is not None:
        raise KeystoreError(f"an XKS key store named {name!r} exists already")
    path = uri_path_for(prefix)
    if tx.xks_proxy_keystore_at(path) is not None:
        raise KeystoreError(f"another XKS key store has the URI path {path}")
    tx.insert_xks_proxy_keystore(XksProxyKeystore(name, path, account, None, now))
    return {"Name": name, "UriPath": path, "Account": account, **_issue(tx, ring, name, now)}


def describe(tx, keystore: XksProxyKeystore) -> dict:
    return {"Name": keystore.name, "UriPath": keystore.uri_path, "Account": keystore.account,
            "AccessKeyIds": [c.access_key_id for c in tx.xks_proxy_credentials(keystore.name)],
            "Keys": len(tx.list_xks_proxy_keys(keystore.name)), "HasPolicy": keystore.policy is not None,
            "CreationDate": keystore.created}


def delete(tx, name: str) -> dict:
    """Refused while the store holds keys: deleting them is a decision of its own (crypto-shredding)."""
    existing(tx, name)
    keys = tx.list_xks_proxy_keys(name)
    if keys:
        raise KeystoreError(f"the XKS key store {name!r} still holds {len(keys)} key(s): disable and delete them first")
    tx.delete_xks_proxy_keystore(name)
    return {"Deleted": name}


def put_policy(tx, name: str, document: str | None) -> dict:
    """The secondary-authorization policy (a resource policy: statements name a Principal), checked
    as trentd checks a key policy; ``None`` removes it (every authenticated request is then allowed)."""
    existing(tx, name)
    if document is not None:
        try:
            parse_policy(document, resource_policy=True)
        except AWSError as err:
            raise KeystoreError(f"the policy is refused: {err.message}") from None
    tx.set_xks_proxy_policy(name, document)
    return {"Name": name, "HasPolicy": document is not None}


def rotate(tx, ring, name: str, now: float) -> dict:
    """A second live credential; a third is refused (retire one first)."""
    existing(tx, name)
    live = tx.xks_proxy_credentials(name)
    if len(live) >= MAX_CREDENTIALS:
        raise KeystoreError(f"the XKS key store {name!r} has {len(live)} live credentials already: retire one "
                            "(trentd xks credentials retire) before adding another")
    return {"Name": name, **_issue(tx, ring, name, now)}


def retire(tx, name: str, access_key_id: str) -> dict:
    """Remove a credential; the last one stays (a key store without one could not be reached)."""
    existing(tx, name)
    live = [c.access_key_id for c in tx.xks_proxy_credentials(name)]
    if access_key_id not in live:
        raise KeystoreError(f"the XKS key store {name!r} has no credential {access_key_id!r}")
    if len(live) == 1:
        raise KeystoreError(f"{access_key_id} is the only credential of {name!r}: rotate first, then retire it")
    tx.delete_xks_proxy_credential(access_key_id)
    return {"Name": name, "Retired": access_key_id}
