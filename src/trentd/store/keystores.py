"""Custom key store rows: the store half of kms/keystores.py (mixed into Tx).

Tables (migration 0004): ``custom_key_stores`` (one row per external key store, its proxy
credential wrapped under the root key) and ``xks_keys`` (the external key behind each KMS key in
such a store).
"""

from __future__ import annotations

from .records import KeyStoreRecord, XksBinding
from .rootkey import aad_for
from .sql import SQLTransaction

__all__ = ["KeyStoreQueries", "KeyStoreRecord", "XksBinding", "secret_aad"]

_STORE_COLUMNS = ("account, region, store_id, name, store_type, uri_endpoint, uri_path, connectivity, "
                  "access_key_id, wrapped_secret, connection_state, connection_error, created")


def secret_aad(account: str, region: str, store_id: str, access_key_id: str) -> bytes:
    """AAD of a store's wrapped proxy secret: it unwraps only on its own row and credential."""
    return aad_for("xks-proxy-secret", account, region, store_id, access_key_id)


def _store(row) -> KeyStoreRecord:
    values = list(row)
    values[9] = bytes(values[9])
    return KeyStoreRecord(*values)


class KeyStoreQueries(SQLTransaction):
    # --- stores -----------------------------------------------------------------------------
    def get_key_store(self, account: str, region: str, store_id: str) -> KeyStoreRecord | None:
        self.lock_scope(account, region)
        row = self.one(f"SELECT {_STORE_COLUMNS} FROM custom_key_stores WHERE account = ? AND region = ? "
                       "AND store_id = ?", (account, region, store_id))
        return _store(row) if row else None

    def get_key_store_by_name(self, account: str, region: str, name: str) -> KeyStoreRecord | None:
        self.lock_scope(account, region)
        row = self.one(f"SELECT {_STORE_COLUMNS} FROM custom_key_stores WHERE account = ? AND region = ? "
                       "AND name = ?", (account, region, name))
        return _store(row) if row else None

    def list_key_stores(self, account: str, region: str, after: str = "", limit: int = 1000) -> list[KeyStoreRecord]:
        self.lock_scope(account, region)
        rows = self.q(f"SELECT {_STORE_COLUMNS} FROM custom_key_stores WHERE account = ? AND region = ? "
                      "AND store_id > ? ORDER BY store_id LIMIT ?", (account, region, after, limit)).fetchall()
        return [_store(r) for r in rows]

    def count_key_stores(self, account: str, region: str) -> int:
        self.lock_scope(account, region)
        return self.one("SELECT count(*) FROM custom_key_stores WHERE account = ? AND region = ?",
                        (account, region))[0]

    def insert_key_store(self, s: KeyStoreRecord) -> None:
        self.q(f"INSERT INTO custom_key_stores ({_STORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (s.account, s.region, s.store_id, s.name, s.store_type, s.uri_endpoint, s.uri_path, s.connectivity,
                s.access_key_id, s.wrapped_secret, s.connection_state, s.connection_error, s.created))

    def update_key_store(self, s: KeyStoreRecord, **changes) -> None:
        """Write the named fields and apply them to ``s``."""
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self.q(f"UPDATE custom_key_stores SET {assignments} WHERE account = ? AND region = ? AND store_id = ?",
               (*changes.values(), s.account, s.region, s.store_id))
        for name, value in changes.items():
            setattr(s, name, value)

    def delete_key_store(self, s: KeyStoreRecord) -> None:
        self.q("DELETE FROM custom_key_stores WHERE account = ? AND region = ? AND store_id = ?",
               (s.account, s.region, s.store_id))

    # --- keys in stores -----------------------------------------------------------------------
    def insert_xks_key(self, account: str, region: str, key_id: str, store_id: str, xks_key_id: str) -> None:
        self.q("INSERT INTO xks_keys (account, region, key_id, store_id, xks_key_id) VALUES (?, ?, ?, ?, ?)",
               (account, region, key_id, store_id, xks_key_id))

    def get_xks_binding(self, account: str, region: str, key_id: str) -> XksBinding | None:
        row = self.one("SELECT store_id, xks_key_id FROM xks_keys WHERE account = ? AND region = ? AND key_id = ?",
                       (account, region, key_id))
        if row is None:
            return None
        store = self.one(f"SELECT {_STORE_COLUMNS} FROM custom_key_stores WHERE account = ? AND region = ? "
                         "AND store_id = ?", (account, region, row[0]))
        return XksBinding(row[0], row[1], _store(store) if store else None)

    def xks_key_in_use(self, account: str, region: str, store_id: str, xks_key_id: str) -> bool:
        return self.one("SELECT 1 FROM xks_keys WHERE account = ? AND region = ? AND store_id = ? AND xks_key_id = ?",
                        (account, region, store_id, xks_key_id)) is not None

    def count_store_keys(self, account: str, region: str, store_id: str) -> int:
        return self.one("SELECT count(*) FROM xks_keys WHERE account = ? AND region = ? AND store_id = ?",
                        (account, region, store_id))[0]
