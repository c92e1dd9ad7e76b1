"""IAM API rows (issue #25), mixed into Tx: users, roles and groups (rows of ``principals``),
their tags, group membership, inline policies (``identity_policies``, keyed by the user's,
role's or group's ARN), managed policy versions and attachments, access key status.

The admin commands write the same tables (store/tx.py, store/sessions.py), so what one door
makes the other sees. ``identity_policies`` (store/tx.py) is what authorization reads: a
principal's own inline policies, its groups' inline policies, and every managed policy attached
to it or to its groups.
"""

from __future__ import annotations

from .records import IamEntity, ManagedPolicyRecord
from .sql import SQLTransaction

__all__ = ["IamEntity", "IamQueries", "ManagedPolicyRecord"]

_ENTITY = "arn, account, name, kind, created, entity_id, path, description, max_session_duration"
_POLICY = ("arn, account, name, document, created, policy_id, path, description, default_version, next_version, "
           "updated")
# Every table that names a user, role or group by ARN, and its column: a rename moves them all.
_NAMED_BY_ARN = (("principals", "arn"), ("access_keys", "principal_arn"), ("identity_policies", "principal_arn"),
                 ("role_trust_policies", "role_arn"), ("iam_tags", "arn"), ("iam_group_members", "user_arn"),
                 ("iam_group_members", "group_arn"), ("iam_policy_attachments", "entity_arn"),
                 ("sts_sessions", "principal_arn"), ("console_sessions", "principal_arn"))


class IamQueries(SQLTransaction):
    # --- users, roles and groups -------------------------------------------------------------
    def find_iam_entity(self, account: str, kind: str, name: str) -> IamEntity | None:
        """By name, regardless of case (IAM's names are unique that way)."""
        row = self.one(f"SELECT {_ENTITY} FROM principals WHERE account = ? AND kind = ? AND lower(name) = lower(?)",
                       (account, kind, name))
        return IamEntity(*row) if row else None

    def iam_entity(self, arn: str) -> IamEntity | None:
        row = self.one(f"SELECT {_ENTITY} FROM principals WHERE arn = ?", (arn,))
        return IamEntity(*row) if row else None

    def insert_iam_entity(self, e: IamEntity) -> None:
        self.q(f"INSERT INTO principals ({_ENTITY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (e.arn, e.account, e.name, e.kind, e.created, e.entity_id, e.path, e.description,
                e.max_session_duration))

    def list_iam_entities(self, account: str, kind: str, path_prefix: str = "/") -> list[IamEntity]:
        rows = self.q(f"SELECT {_ENTITY} FROM principals WHERE account = ? AND kind = ? ORDER BY lower(name)",
                      (account, kind)).fetchall()
        return [e for e in (IamEntity(*r) for r in rows) if e.path.startswith(path_prefix)]

    def update_iam_entity(self, arn: str, *, description: str | None = None,
                          max_session_duration: int | None = None) -> None:
        if description is not None:
            self.q("UPDATE principals SET description = ? WHERE arn = ?", (description, arn))
        if max_session_duration is not None:
            self.q("UPDATE principals SET max_session_duration = ? WHERE arn = ?", (max_session_duration, arn))

    def principal_unique_id(self, arn: str) -> str | None:
        """The stored AIDA…/AROA… id; None for a row made before schema 12 (or no such row)."""
        row = self.one("SELECT entity_id FROM principals WHERE arn = ?", (arn,))
        return row[0] if row else None

    def rename_iam_entity(self, old_arn: str, new_arn: str, name: str, path: str, entity_id: str) -> None:
        """A user's or group's new name or path: every row that names the old ARN moves. A row
        without a stored id (made before schema 12) keeps the one it was shown, ``entity_id``:
        an id never changes."""
        for table, column in _NAMED_BY_ARN:
            self.q(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new_arn, old_arn))
        self.q("UPDATE principals SET name = ?, path = ?, entity_id = COALESCE(entity_id, ?) WHERE arn = ?",
               (name, path, entity_id, new_arn))

    # --- tags --------------------------------------------------------------------------------
    def iam_tags(self, arn: str) -> dict[str, str]:
        return dict(self.q("SELECT tag_key, tag_value FROM iam_tags WHERE arn = ? ORDER BY tag_key",
                           (arn,)).fetchall())

    def put_iam_tag(self, arn: str, key: str, value: str) -> None:
        self.q("INSERT INTO iam_tags (arn, tag_key, tag_value) VALUES (?, ?, ?) "
               "ON CONFLICT (arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value", (arn, key, value))

    def delete_iam_tag(self, arn: str, key: str) -> None:
        self.q("DELETE FROM iam_tags WHERE arn = ? AND tag_key = ?", (arn, key))

    # --- groups ------------------------------------------------------------------------------
    def add_group_member(self, group_arn: str, user_arn: str) -> None:
        self.q("INSERT INTO iam_group_members (group_arn, user_arn) VALUES (?, ?) ON CONFLICT DO NOTHING",
               (group_arn, user_arn))

    def remove_group_member(self, group_arn: str, user_arn: str) -> int:
        return self.q("DELETE FROM iam_group_members WHERE group_arn = ? AND user_arn = ?",
                      (group_arn, user_arn)).rowcount

    def group_members(self, group_arn: str) -> list[str]:
        return [r[0] for r in self.q("SELECT user_arn FROM iam_group_members WHERE group_arn = ? ORDER BY user_arn",
                                     (group_arn,)).fetchall()]

    def user_groups(self, user_arn: str) -> list[str]:
        return [r[0] for r in self.q("SELECT group_arn FROM iam_group_members WHERE user_arn = ? ORDER BY group_arn",
                                     (user_arn,)).fetchall()]

    # --- inline policies ---------------------------------------------------------------------
    def inline_policies(self, arn: str) -> dict[str, str]:
        """The inline policies of one user, role or group, by name."""
        return dict(self.q("SELECT name, document FROM identity_policies WHERE principal_arn = ? ORDER BY name",
                           (arn,)).fetchall())

    def delete_inline_policy(self, arn: str, name: str) -> int:
        return self.q("DELETE FROM identity_policies WHERE principal_arn = ? AND name = ?", (arn, name)).rowcount

    # --- access keys -------------------------------------------------------------------------
    def iam_access_keys(self, principal_arn: str) -> list[tuple[str, str, float]]:
        """(access key id, status, created) of a user's keys, whatever their status."""
        return self.q("SELECT access_key_id, status, created FROM access_keys WHERE principal_arn = ? "
                      "ORDER BY created, access_key_id", (principal_arn,)).fetchall()

    def access_key_owner(self, access_key_id: str) -> str | None:
        row = self.one("SELECT principal_arn FROM access_keys WHERE access_key_id = ?", (access_key_id,))
        return row[0] if row else None

    def set_access_key_status(self, access_key_id: str, status: str) -> None:
        self.q("UPDATE access_keys SET status = ? WHERE access_key_id = ?", (status, access_key_id))

    def record_access_key_uses(self, uses: dict[str, tuple[float, str, str]]) -> None:
        """(used at, service, Region) by access key id; a later use than the stored one wins, so
        nodes flushing in any order leave the latest."""
        for access_key_id, (used_at, service, region) in sorted(uses.items()):
            self.q("INSERT INTO access_key_last_used (access_key_id, used_at, service, region) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (access_key_id) DO UPDATE SET used_at = excluded.used_at, "
                   "service = excluded.service, region = excluded.region "
                   "WHERE access_key_last_used.used_at < excluded.used_at", (access_key_id, used_at, service, region))

    def access_key_last_used(self, access_key_id: str) -> tuple[float, str, str] | None:
        return self.one("SELECT used_at, service, region FROM access_key_last_used WHERE access_key_id = ?",
                        (access_key_id,))

    # --- managed policies: records, versions, attachments --------------------------------------
    def managed_policy_record(self, arn: str) -> ManagedPolicyRecord | None:
        row = self.one(f"SELECT {_POLICY} FROM managed_policies WHERE arn = ?", (arn,))
        return ManagedPolicyRecord(*row) if row else None

    def find_managed_policy(self, account: str, name: str) -> ManagedPolicyRecord | None:
        row = self.one(f"SELECT {_POLICY} FROM managed_policies WHERE account = ? AND lower(name) = lower(?)",
                       (account, name))
        return ManagedPolicyRecord(*row) if row else None

    def managed_policy_records(self, accounts: tuple[str, ...]) -> list[ManagedPolicyRecord]:
        marks = ", ".join("?" for _ in accounts)
        rows = self.q(f"SELECT {_POLICY} FROM managed_policies WHERE account IN ({marks}) ORDER BY lower(name), arn",
                      accounts).fetchall()
        return [ManagedPolicyRecord(*r) for r in rows]

    def policy_versions(self, arn: str) -> list[tuple[str, str, float]]:
        """(version id, document, created), newest first."""
        rows = self.q("SELECT version_id, document, created FROM iam_policy_versions WHERE policy_arn = ?",
                      (arn,)).fetchall()
        return sorted(rows, key=lambda r: int(r[0][1:]), reverse=True)

    def insert_policy_version(self, arn: str, version_id: str, document: str, created: float) -> None:
        self.q("INSERT INTO iam_policy_versions (policy_arn, version_id, document, created) VALUES (?, ?, ?, ?)",
               (arn, version_id, document, created))
        self.q("UPDATE managed_policies SET next_version = next_version + 1, updated = ? WHERE arn = ?",
               (created, arn))

    def delete_policy_version(self, arn: str, version_id: str) -> int:
        return self.q("DELETE FROM iam_policy_versions WHERE policy_arn = ? AND version_id = ?",
                      (arn, version_id)).rowcount

    def set_default_policy_version(self, arn: str, version_id: str, document: str, now: float) -> None:
        """The default version, and its document where authorization and STS read it."""
        self.q("UPDATE managed_policies SET default_version = ?, document = ?, updated = ? WHERE arn = ?",
               (version_id, document, now, arn))

    def attach_policy(self, entity_arn: str, policy_arn: str) -> None:
        self.q("INSERT INTO iam_policy_attachments (entity_arn, policy_arn) VALUES (?, ?) ON CONFLICT DO NOTHING",
               (entity_arn, policy_arn))

    def detach_policy(self, entity_arn: str, policy_arn: str) -> int:
        return self.q("DELETE FROM iam_policy_attachments WHERE entity_arn = ? AND policy_arn = ?",
                      (entity_arn, policy_arn)).rowcount

    def attached_policies(self, entity_arn: str) -> list[str]:
        return [r[0] for r in self.q("SELECT policy_arn FROM iam_policy_attachments WHERE entity_arn = ? "
                                     "ORDER BY policy_arn", (entity_arn,)).fetchall()]

    def policy_attachments(self, policy_arn: str) -> list[str]:
        return [r[0] for r in self.q("SELECT entity_arn FROM iam_policy_attachments WHERE policy_arn = ? "
                                     "ORDER BY entity_arn", (policy_arn,)).fetchall()]

    def attached_documents(self, entity_arns: list[str]) -> list[tuple[str, str]]:
        """(policy ARN, default version's document) of the managed policies attached to any of
        ``entity_arns``."""
        if not entity_arns:
            return []
        marks = ", ".join("?" for _ in entity_arns)
        return self.q(f"SELECT DISTINCT a.policy_arn, m.document FROM iam_policy_attachments a "
                      f"JOIN managed_policies m ON m.arn = a.policy_arn WHERE a.entity_arn IN ({marks}) "
                      f"ORDER BY a.policy_arn", entity_arns).fetchall()
