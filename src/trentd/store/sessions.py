"""STS rows: temporary credentials, role trust policies and managed policies (mixed into Tx)."""

from __future__ import annotations

from .records import SessionRecord
from .sql import SQLTransaction

__all__ = ["SessionQueries", "SessionRecord"]

_COLUMNS = ("access_key_id, token_hash, wrapped_secret, account, principal_arn, session_arn, kind, session_name, "
            "policies, tags, created, expires")


def _session(row) -> SessionRecord:
    values = list(row)
    values[2] = bytes(values[2])
    return SessionRecord(*values)


class SessionQueries(SQLTransaction):
    # --- temporary credentials -------------------------------------------------------------
    def insert_session(self, s: SessionRecord) -> None:
        self.q(
            f"INSERT INTO sts_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.access_key_id, s.token_hash, s.wrapped_secret, s.account, s.principal_arn, s.session_arn, s.kind,
             s.session_name, s.policies, s.tags, s.created, s.expires),
        )

    def get_session(self, access_key_id: str) -> SessionRecord | None:
        row = self.one(f"SELECT {_COLUMNS} FROM sts_sessions WHERE access_key_id = ?", (access_key_id,))
        return _session(row) if row else None

    def delete_sessions_expired_before(self, moment: float) -> int:
        return self.q("DELETE FROM sts_sessions WHERE expires < ?", (moment,)).rowcount

    # --- role trust policies -----------------------------------------------------------------
    def get_trust_policy(self, role_arn: str) -> str | None:
        row = self.one("SELECT document FROM role_trust_policies WHERE role_arn = ?", (role_arn,))
        return row[0] if row else None

    def put_trust_policy(self, role_arn: str, document: str) -> None:
        self.q(
            "INSERT INTO role_trust_policies (role_arn, document) VALUES (?, ?) "
            "ON CONFLICT (role_arn) DO UPDATE SET document = excluded.document",
            (role_arn, document),
        )

    # --- managed policies ----------------------------------------------------------------------
    def insert_managed_policy(self, arn: str, account: str, name: str, document: str, created: float, *,
                              policy_id: str | None = None, path: str = "/", description: str | None = None) -> None:
        """A customer managed policy and its first version, v1 (the default)."""
        self.q("INSERT INTO managed_policies (arn, account, name, document, created, policy_id, path, description, "
               "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (arn, account, name, document, created, policy_id, path, description, created))
        self.q("INSERT INTO iam_policy_versions (policy_arn, version_id, document, created) VALUES (?, 'v1', ?, ?)",
               (arn, document, created))

    def get_managed_policy(self, arn: str) -> str | None:
        row = self.one("SELECT document FROM managed_policies WHERE arn = ?", (arn,))
        return row[0] if row else None

    def list_managed_policies(self) -> list[tuple[str, str]]:
        return self.q("SELECT arn, account FROM managed_policies ORDER BY arn").fetchall()

    def delete_managed_policy(self, arn: str) -> int:
        """The policy with its versions, tags and attachments."""
        for table, column in (("iam_policy_versions", "policy_arn"), ("iam_tags", "arn"),
                              ("iam_policy_attachments", "policy_arn")):
            self.q(f"DELETE FROM {table} WHERE {column} = ?", (arn,))
        return self.q("DELETE FROM managed_policies WHERE arn = ?", (arn,)).rowcount
