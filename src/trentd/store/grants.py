"""Grant rows: the store half of kms/grants.py (mixed into Tx)."""

from __future__ import annotations

import json

from .records import GrantRecord
from .sql import SQLTransaction

__all__ = ["GrantQueries", "GrantRecord"]

_COLUMNS = ("account, region, key_id, grant_id, name, grantee, retiring, grantee_service, retiring_service, "
            "operations, grant_constraints, issuing_account, created")


def _grant(row) -> GrantRecord:
    values = list(row)
    values[9] = json.loads(values[9])
    values[10] = json.loads(values[10]) if values[10] else None
    return GrantRecord(*values)


class GrantQueries(SQLTransaction):
    def insert_grant(self, g: GrantRecord) -> None:
        self.q(
            f"INSERT INTO grants ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (g.account, g.region, g.key_id, g.grant_id, g.name, g.grantee, g.retiring, g.grantee_service,
             g.retiring_service, json.dumps(g.operations), json.dumps(g.constraints) if g.constraints else None,
             g.issuing_account, g.created),
        )

    def get_grant(self, grant_id: str) -> GrantRecord | None:
        row = self.one(f"SELECT {_COLUMNS} FROM grants WHERE grant_id = ?", (grant_id,))
        return _grant(row) if row else None

    def key_grants(self, account: str, region: str, key_id: str, after: str = "", limit: int = 1_000_000,
                   grantee: str | None = None) -> list[GrantRecord]:
        sql = f"SELECT {_COLUMNS} FROM grants WHERE account = ? AND region = ? AND key_id = ? AND grant_id > ?"
        params: list = [account, region, key_id, after]
        if grantee is not None:
            sql += " AND grantee = ?"
            params.append(grantee)
        rows = self.q(sql + " ORDER BY grant_id LIMIT ?", (*params, limit)).fetchall()
        return [_grant(r) for r in rows]

    def count_grants(self, account: str, region: str, key_id: str) -> int:
        return self.one("SELECT count(*) FROM grants WHERE account = ? AND region = ? AND key_id = ?",
                        (account, region, key_id))[0]

    def retirable_grants(self, account: str | None, region: str, retiring: str, after: str,
                         limit: int) -> list[GrantRecord]:
        """Grants whose retiring principal is ``retiring``, on keys of ``account`` (None: any account)."""
        owner = "" if account is None else "account = ? AND "
        rows = self.q(
            f"SELECT {_COLUMNS} FROM grants WHERE {owner}region = ? AND retiring = ? AND grant_id > ? "
            "ORDER BY grant_id LIMIT ?",
            (*(() if account is None else (account,)), region, retiring, after, limit),
        ).fetchall()
        return [_grant(r) for r in rows]

    def delete_grant(self, grant_id: str) -> None:
        self.q("DELETE FROM grants WHERE grant_id = ?", (grant_id,))
