"""trentd as an External Key Store proxy: the store half of xksproxy/ (mixed into Tx).

Tables (migration 0013): ``xks_proxy_keystores`` (logical key stores by name, each with its URI
path), ``xks_proxy_credentials`` (their SigV4 credentials, secrets wrapped under the root key) and
``xks_proxy_keys`` (external keys: wrapped AES-256 material, usages, status). The KMS side's
tables of the stores trentd calls (store/keystores.py) are others.
"""

from __future__ import annotations

from .records import XksProxyCredential, XksProxyKey, XksProxyKeystore
from .rootkey import aad_for
from .sql import SQLTransaction

__all__ = ["XksProxyQueries", "credential_aad", "material_aad"]

_STORE = "name, uri_path, account, policy, created"
_CREDENTIAL = "access_key_id, keystore, wrapped_secret, created"
_KEY = "keystore, key_id, wrapped, usages, status, created"


def credential_aad(keystore: str, access_key_id: str) -> bytes:
    """AAD of a credential's wrapped secret: it unwraps only on its own row."""
    return aad_for("xks-proxy-credential", keystore, access_key_id)


def material_aad(keystore: str, key_id: str) -> bytes:
    """AAD of an external key's wrapped material: it unwraps only as that key of that store."""
    return aad_for("xks-proxy-key", keystore, key_id)


def _keystore(row) -> XksProxyKeystore:
    return XksProxyKeystore(*row)


def _credential(row) -> XksProxyCredential:
    return XksProxyCredential(row[0], row[1], bytes(row[2]), row[3])


def _key(row) -> XksProxyKey:
    return XksProxyKey(row[0], row[1], bytes(row[2]), tuple(u for u in row[3].split(",") if u), row[4], row[5])


class XksProxyQueries(SQLTransaction):
    # --- key stores ---------------------------------------------------------------------------
    def get_xks_proxy_keystore(self, name: str) -> XksProxyKeystore | None:
        row = self.one(f"SELECT {_STORE} FROM xks_proxy_keystores WHERE name = ?", (name,))
        return _keystore(row) if row else None

    def xks_proxy_keystore_at(self, uri_path: str) -> XksProxyKeystore | None:
        row = self.one(f"SELECT {_STORE} FROM xks_proxy_keystores WHERE uri_path = ?", (uri_path,))
        return _keystore(row) if row else None

    def list_xks_proxy_keystores(self) -> list[XksProxyKeystore]:
        return [_keystore(r) for r in self.q(f"SELECT {_STORE} FROM xks_proxy_keystores ORDER BY name").fetchall()]

    def insert_xks_proxy_keystore(self, k: XksProxyKeystore) -> None:
        self.q(f"INSERT INTO xks_proxy_keystores ({_STORE}) VALUES (?, ?, ?, ?, ?)",
               (k.name, k.uri_path, k.account, k.policy, k.created))

    def set_xks_proxy_policy(self, name: str, policy: str | None) -> None:
        self.q("UPDATE xks_proxy_keystores SET policy = ? WHERE name = ?", (policy, name))

    def delete_xks_proxy_keystore(self, name: str) -> None:
        """The key store, its credentials and its keys (their material is gone with them)."""
        self.q("DELETE FROM xks_proxy_keys WHERE keystore = ?", (name,))
        self.q("DELETE FROM xks_proxy_credentials WHERE keystore = ?", (name,))
        self.q("DELETE FROM xks_proxy_keystores WHERE name = ?", (name,))

    # --- credentials --------------------------------------------------------------------------
    def xks_proxy_credentials(self, keystore: str) -> list[XksProxyCredential]:
        rows = self.q(f"SELECT {_CREDENTIAL} FROM xks_proxy_credentials WHERE keystore = ? ORDER BY created",
                      (keystore,)).fetchall()
        return [_credential(r) for r in rows]

    def get_xks_proxy_credential(self, access_key_id: str) -> XksProxyCredential | None:
        row = self.one(f"SELECT {_CREDENTIAL} FROM xks_proxy_credentials WHERE access_key_id = ?", (access_key_id,))
        return _credential(row) if row else None

    def insert_xks_proxy_credential(self, c: XksProxyCredential) -> None:
        self.q(f"INSERT INTO xks_proxy_credentials ({_CREDENTIAL}) VALUES (?, ?, ?, ?)",
               (c.access_key_id, c.keystore, c.wrapped_secret, c.created))

    def delete_xks_proxy_credential(self, access_key_id: str) -> int:
        return self.q("DELETE FROM xks_proxy_credentials WHERE access_key_id = ?", (access_key_id,)).rowcount

    # --- external keys ------------------------------------------------------------------------
    def get_xks_proxy_key(self, keystore: str, key_id: str) -> XksProxyKey | None:
        row = self.one(f"SELECT {_KEY} FROM xks_proxy_keys WHERE keystore = ? AND key_id = ?", (keystore, key_id))
        return _key(row) if row else None

    def list_xks_proxy_keys(self, keystore: str) -> list[XksProxyKey]:
        rows = self.q(f"SELECT {_KEY} FROM xks_proxy_keys WHERE keystore = ? ORDER BY key_id", (keystore,)).fetchall()
        return [_key(r) for r in rows]

    def insert_xks_proxy_key(self, k: XksProxyKey) -> None:
        self.q(f"INSERT INTO xks_proxy_keys ({_KEY}) VALUES (?, ?, ?, ?, ?, ?)",
               (k.keystore, k.key_id, k.wrapped, ",".join(k.usages), k.status, k.created))

    def set_xks_proxy_key_status(self, keystore: str, key_id: str, status: str) -> None:
        self.q("UPDATE xks_proxy_keys SET status = ? WHERE keystore = ? AND key_id = ?", (status, keystore, key_id))

    def delete_xks_proxy_key(self, keystore: str, key_id: str) -> None:
        self.q("DELETE FROM xks_proxy_keys WHERE keystore = ? AND key_id = ?", (keystore, key_id))
