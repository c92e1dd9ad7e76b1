"""Domain reads and writes, one short SQL statement each, run inside a transaction.

The SQL is portable (``?`` placeholders; the PostgreSQL engine rewrites them), so both engines
share this class; each engine module derives its transaction class from ``Tx`` and supplies what
differs (row claims, per-scope locks, the catalogue: store/sql.py). ``Tx`` implements the declared
``Transaction`` (store/interface.py).
"""

from __future__ import annotations

from .grants import GrantQueries
from .iam import IamQueries
from .keystores import KeyStoreQueries
from .lifecycle import LifecycleQueries
from .multiregion import MultiRegionQueries
from .records import AliasRecord, KeyRecord, PrincipalRecord
from .sessions import SessionQueries
from .xksproxy import XksProxyQueries

_KEY_COLUMNS = (
    "account, region, key_id, created, description, key_spec, key_usage, origin, key_state, "
    "deletion_date, multi_region, policy, current_material, key_manager"
)
_GLOBAL_SCOPE = "*"


def _key(row) -> KeyRecord:
    rec = KeyRecord(*row)
    rec.multi_region = bool(rec.multi_region)
    return rec


class Tx(GrantQueries, LifecycleQueries, MultiRegionQueries, KeyStoreQueries, SessionQueries, IamQueries,
         XksProxyQueries):
    # --- cache generations (store/changes.py) ---------------------------------------------
    def bump_cache_generation(self) -> None:
        """Called by the store just before committing a transaction that changed cached state:
        one row per (account, Region) scope this write locked (``lock_scope``; sorted, so two
        writers never take the rows in opposite orders), or the global row where the engine
        serialises all writers and locks no scope. Runs in the same transaction, so
        other processes see the bump exactly when they can see the change."""
        scopes = sorted(f"{account}:{region}" for account, region in self._scopes) or [_GLOBAL_SCOPE]
        for scope in scopes:
            self._execute(
                "INSERT INTO cache_generations (scope, generation) VALUES (?, 1) ON CONFLICT (scope) "
                "DO UPDATE SET generation = cache_generations.generation + 1", (scope,))

    def cache_generation(self) -> int:
        """The sum of every scope's generation: it grows whenever any of them is bumped."""
        return int(self.one("SELECT coalesce(sum(generation), 0) FROM cache_generations")[0])

    # --- meta -----------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE name = ?", (name,))
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        self.q(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # --- keys -----------------------------------------------------------------------------
    def get_key(self, account: str, region: str, key_id: str) -> KeyRecord | None:
        self.lock_scope(account, region)
        row = self.one(
            f"SELECT {_KEY_COLUMNS} FROM keys WHERE account = ? AND region = ? AND key_id = ?",
            (account, region, key_id),
        )
        return _key(row) if row else None

    def insert_key(self, key: KeyRecord) -> None:
        self.count_key_change(key.account, key.region, +1)
        self.q(
            f"INSERT INTO keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.account, key.region, key.key_id, key.created, key.description, key.key_spec,
                key.key_usage, key.origin, key.key_state, key.deletion_date, int(key.multi_region),
                key.policy, key.current_material, key.key_manager,
            ),
        )

    def update_key(self, key: KeyRecord, **changes) -> None:
        """Write the named fields and apply them to ``key`` so the caller's copy stays current."""
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self.q(
            f"UPDATE keys SET {assignments} WHERE account = ? AND region = ? AND key_id = ?",
            (*changes.values(), key.account, key.region, key.key_id),
        )
        for name, value in changes.items():
            setattr(key, name, value)

    def list_keys(self, account: str, region: str, after: str, limit: int) -> list[KeyRecord]:
        rows = self.q(
            f"SELECT {_KEY_COLUMNS} FROM keys WHERE account = ? AND region = ? AND key_id > ? "
            "ORDER BY key_id LIMIT ?",
            (account, region, after, limit),
        ).fetchall()
        return [_key(r) for r in rows]

    def count_keys(self, account: str, region: str) -> int:
        self.lock_scope(account, region)
        row = self.one("SELECT n FROM key_counts WHERE account = ? AND region = ?", (account, region))
        return int(row[0]) if row else 0

    def count_key_change(self, account: str, region: str, delta: int) -> None:
        """Keep key_counts in step with the keys table, in the same transaction, so the quota
        check reads one row (migration 0008). Whatever inserts or deletes a key row calls it."""
        self.q("INSERT INTO key_counts (account, region, n) VALUES (?, ?, ?) ON CONFLICT (account, region) "
               "DO UPDATE SET n = key_counts.n + excluded.n", (account, region, delta))

    def keys_due_for_deletion(self, now: float, limit: int = 100) -> list[KeyRecord]:
        """Keys whose deletion date has passed, claimed for this transaction (``claim_clause``): on
        PostgreSQL the rows are locked and rows another node holds are skipped, so every node can
        sweep at once and each key is deleted by exactly one of them (SQLite's ``BEGIN IMMEDIATE``
        serialises)."""
        rows = self.q(
            f"SELECT {_KEY_COLUMNS} FROM keys WHERE deletion_date IS NOT NULL AND deletion_date <= ? "
            "ORDER BY deletion_date LIMIT ?" + self.claim_clause,
            (now, limit),
        ).fetchall()
        return [_key(r) for r in rows]

    def delete_key(self, key: KeyRecord) -> None:
        """Remove a key with its aliases and tags; its material goes when no Region holds the key."""
        where = "account = ? AND region = ? AND key_id = ?"
        params = (key.account, key.region, key.key_id)
        for table in ("aliases", "tags", "grants", "key_rotation", "material_versions", "key_last_usage", "xks_keys"):
            self.q(f"DELETE FROM {table} WHERE {where}", params)
        if self.q(f"DELETE FROM keys WHERE {where}", params).rowcount:
            self.count_key_change(key.account, key.region, -1)
        if not self.one("SELECT 1 FROM keys WHERE account = ? AND key_id = ?", (key.account, key.key_id)):
            self.q("DELETE FROM key_materials WHERE account = ? AND key_id = ?", (key.account, key.key_id))
            self.q("DELETE FROM multi_region_keys WHERE account = ? AND key_id = ?", (key.account, key.key_id))

    # --- key material ---------------------------------------------------------------------
    def insert_material(self, account: str, key_id: str, material_id: str, wrapped: bytes, created: float) -> None:
        self.q(
            "INSERT INTO key_materials (account, key_id, material_id, wrapped, created) VALUES (?, ?, ?, ?, ?)",
            (account, key_id, material_id, wrapped, created),
        )

    def get_material(self, account: str, key_id: str, material_id: str) -> bytes | None:
        row = self.one(
            "SELECT wrapped FROM key_materials WHERE account = ? AND key_id = ? AND material_id = ?",
            (account, key_id, material_id),
        )
        return bytes(row[0]) if row else None

    # --- aliases --------------------------------------------------------------------------
    def get_alias(self, account: str, region: str, name: str) -> AliasRecord | None:
        self.lock_scope(account, region)
        row = self.one(
            "SELECT account, region, name, key_id, created, updated FROM aliases "
            "WHERE account = ? AND region = ? AND name = ?",
            (account, region, name),
        )
        return AliasRecord(*row) if row else None

    def insert_alias(self, alias: AliasRecord) -> None:
        self.q(
            "INSERT INTO aliases (account, region, name, key_id, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
            (alias.account, alias.region, alias.name, alias.key_id, alias.created, alias.updated),
        )

    def retarget_alias(self, alias: AliasRecord, key_id: str, now: float) -> None:
        self.q(
            "UPDATE aliases SET key_id = ?, updated = ? WHERE account = ? AND region = ? AND name = ?",
            (key_id, now, alias.account, alias.region, alias.name),
        )

    def delete_alias(self, alias: AliasRecord) -> None:
        self.q(
            "DELETE FROM aliases WHERE account = ? AND region = ? AND name = ?",
            (alias.account, alias.region, alias.name),
        )

    def list_aliases(self, account: str, region: str, after: str, limit: int,
                     key_id: str | None = None) -> list[AliasRecord]:
        sql = ("SELECT account, region, name, key_id, created, updated FROM aliases "
               "WHERE account = ? AND region = ? AND name > ?")
        params: list = [account, region, after]
        if key_id is not None:
            sql += " AND key_id = ?"
            params.append(key_id)
        rows = self.q(sql + " ORDER BY name LIMIT ?", (*params, limit)).fetchall()
        return [AliasRecord(*r) for r in rows]

    def count_aliases(self, account: str, region: str, key_id: str) -> int:
        return self.one(
            "SELECT count(*) FROM aliases WHERE account = ? AND region = ? AND key_id = ?", (account, region, key_id)
        )[0]

    # --- tags -----------------------------------------------------------------------------
    def get_tags(self, key: KeyRecord) -> dict[str, str]:
        rows = self.q(
            "SELECT tag_key, tag_value FROM tags WHERE account = ? AND region = ? AND key_id = ? ORDER BY tag_key",
            (key.account, key.region, key.key_id),
        ).fetchall()
        return dict(rows)

    def put_tag(self, key: KeyRecord, tag_key: str, tag_value: str) -> None:
        self.q(
            "INSERT INTO tags (account, region, key_id, tag_key, tag_value) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (account, region, key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            (key.account, key.region, key.key_id, tag_key, tag_value),
        )

    def delete_tag(self, key: KeyRecord, tag_key: str) -> None:
        self.q(
            "DELETE FROM tags WHERE account = ? AND region = ? AND key_id = ? AND tag_key = ?",
            (key.account, key.region, key.key_id, tag_key),
        )

    # --- principals and access keys -------------------------------------------------------
    def get_principal(self, arn: str) -> PrincipalRecord | None:
        row = self.one("SELECT arn, account, name, kind, created FROM principals WHERE arn = ?", (arn,))
        return PrincipalRecord(*row) if row else None

    def insert_principal(self, p: PrincipalRecord, entity_id: str | None = None) -> None:
        self.q(
            "INSERT INTO principals (arn, account, name, kind, created, entity_id) VALUES (?, ?, ?, ?, ?, ?)",
            (p.arn, p.account, p.name, p.kind, p.created, entity_id),
        )

    def list_principals(self) -> list[PrincipalRecord]:
        rows = self.q("SELECT arn, account, name, kind, created FROM principals ORDER BY arn").fetchall()
        return [PrincipalRecord(*r) for r in rows]

    def delete_principal(self, arn: str) -> None:
        """The principal and everything that authenticates as it, in one transaction: access keys,
        STS sessions (GetSessionToken of a user, AssumeRole sessions of a role) and console
        sessions. AWS: once a user or role is gone, none of its credentials works; a principal made
        again under the same name starts with none of them."""
        for table, column in (("access_keys", "principal_arn"), ("sts_sessions", "principal_arn"),
                              ("console_sessions", "principal_arn"), ("identity_policies", "principal_arn"),
                              ("role_trust_policies", "role_arn"), ("iam_tags", "arn"),
                              ("iam_group_members", "user_arn"), ("iam_group_members", "group_arn"),
                              ("iam_policy_attachments", "entity_arn"), ("principals", "arn")):
            self.q(f"DELETE FROM {table} WHERE {column} = ?", (arn,))

    def put_identity_policy(self, arn: str, name: str, document: str) -> None:
        self.q(
            "INSERT INTO identity_policies (principal_arn, name, document) VALUES (?, ?, ?) "
            "ON CONFLICT (principal_arn, name) DO UPDATE SET document = excluded.document",
            (arn, name, document),
        )

    def identity_policies(self, arn: str) -> dict[str, str]:
        """Every identity policy that applies to a principal, as authorization reads them: its
        inline policies, its groups' inline policies (IAM: group policies apply to members), and
        the managed policies attached to it or to its groups, keyed so that none hides another."""
        documents = dict(self.q("SELECT name, document FROM identity_policies WHERE principal_arn = ?",
                                (arn,)).fetchall())
        groups = self.user_groups(arn)
        for group in groups:
            documents.update({f"{group}#{name}": text for name, text in self.inline_policies(group).items()})
        documents.update(dict(self.attached_documents([arn, *groups])))
        return documents

    def insert_access_key(self, access_key_id: str, principal_arn: str, wrapped_secret: bytes, created: float) -> None:
        self.q(
            "INSERT INTO access_keys (access_key_id, principal_arn, wrapped_secret, created) VALUES (?, ?, ?, ?)",
            (access_key_id, principal_arn, wrapped_secret, created),
        )

    def get_access_key(self, access_key_id: str) -> tuple[str, bytes] | None:
        # An inactive key authenticates nothing (AWS refuses it on every service).
        row = self.one("SELECT principal_arn, wrapped_secret FROM access_keys WHERE access_key_id = ? "
                       "AND status = 'Active'", (access_key_id,))
        return (row[0], bytes(row[1])) if row else None

    def list_access_keys(self, principal_arn: str | None = None) -> list[tuple[str, str, float]]:
        sql = "SELECT access_key_id, principal_arn, created FROM access_keys"
        if principal_arn is None:
            return self.q(sql + " ORDER BY access_key_id").fetchall()
        return self.q(sql + " WHERE principal_arn = ? ORDER BY access_key_id", (principal_arn,)).fetchall()

    def delete_access_key(self, access_key_id: str) -> int:
        self.q("DELETE FROM access_key_last_used WHERE access_key_id = ?", (access_key_id,))
        return self.q("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,)).rowcount
