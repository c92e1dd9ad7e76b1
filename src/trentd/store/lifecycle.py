"""Key lifecycle rows: the store half of kms/rotation.py, kms/imports.py and kms/lastusage.py
(mixed into Tx).

Tables (migration 0003): ``key_rotation`` (automatic schedule, on-demand count),
``material_versions`` (one row per key material: first, rotated, imported) and ``key_last_usage``.

Background jobs claim due work with ``claim_*``: inside a write transaction, the rows are locked
with the engine's ``claim_clause`` (store/sql.py: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; the
key row too, so no request changes the key under the job; rows another node holds are skipped,
never waited for, so a job can never deadlock with a request), and SQLite's ``BEGIN IMMEDIATE``
serialises writers. Each claim re-checks that the work is still due, so every rotation or expiry
runs exactly once.
"""

from __future__ import annotations

from .records import DueKey, MaterialVersion, RotationRecord
from .sql import SQLTransaction

__all__ = ["DueKey", "LifecycleQueries", "MaterialVersion", "RotationRecord"]

_VERSION_COLUMNS = ("account, region, key_id, material_id, seq, pending, present, rotation_date, rotation_type, "
                    "expiration_model, valid_to, description, created")


def _version(row) -> MaterialVersion:
    values = list(row)
    values[5], values[6] = bool(values[5]), bool(values[6])
    return MaterialVersion(*values)


def _rotation(row) -> RotationRecord:
    values = list(row)
    values[3] = bool(values[3])
    return RotationRecord(*values)


_WHERE_KEY = "account = ? AND region = ? AND key_id = ?"


class LifecycleQueries(SQLTransaction):
    # --- the key row ------------------------------------------------------------------------
    def lock_key_row(self, account: str, region: str, key_id: str) -> tuple[str, str | None] | None:
        """Lock the key's row until the transaction ends (the engine's ``lock_clause``: PostgreSQL;
        SQLite writers are already serialised) and return its fresh (key_state, current_material).
        Requests that change a key's material take this lock after the scope lock, in the same
        order everywhere."""
        row = self.one(f"SELECT key_state, current_material FROM keys WHERE {_WHERE_KEY}{self.lock_clause}",
                       (account, region, key_id))
        return (row[0], row[1]) if row else None

    def set_key_material_state(self, account: str, region: str, key_id: str, **changes) -> None:
        """Update key_state and/or current_material of a key (jobs have no KeyRecord)."""
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self.q(f"UPDATE keys SET {assignments} WHERE {_WHERE_KEY}", (*changes.values(), account, region, key_id))

    def delete_material_row(self, account: str, key_id: str, material_id: str) -> None:
        self.q("DELETE FROM key_materials WHERE account = ? AND key_id = ? AND material_id = ?",
               (account, key_id, material_id))

    # --- rotation schedule ------------------------------------------------------------------
    def get_rotation(self, account: str, region: str, key_id: str) -> RotationRecord | None:
        row = self.one(
            "SELECT account, region, key_id, enabled, period_days, next_rotation, on_demand_count "
            f"FROM key_rotation WHERE {_WHERE_KEY}", (account, region, key_id))
        return _rotation(row) if row else None

    def put_rotation(self, r: RotationRecord) -> None:
        self.q(
            "INSERT INTO key_rotation (account, region, key_id, enabled, period_days, next_rotation, on_demand_count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, key_id) DO UPDATE SET "
            "enabled = excluded.enabled, period_days = excluded.period_days, "
            "next_rotation = excluded.next_rotation, on_demand_count = excluded.on_demand_count",
            (r.account, r.region, r.key_id, int(r.enabled), r.period_days, r.next_rotation, r.on_demand_count))

    def set_next_rotation(self, account: str, region: str, key_id: str, next_rotation: float) -> None:
        self.q(f"UPDATE key_rotation SET next_rotation = ? WHERE {_WHERE_KEY}",
               (next_rotation, account, region, key_id))

    def rotation_due(self, now: float) -> bool:
        """Whether any automatic rotation is due: a read, so an idle job takes no write lock."""
        return self.one(
            "SELECT 1 FROM key_rotation r JOIN keys k ON k.account = r.account AND k.region = r.region "
            "AND k.key_id = r.key_id WHERE r.enabled = 1 AND r.next_rotation <= ? AND k.key_state = 'Enabled' LIMIT 1",
            (now,)) is not None

    def claim_due_rotations(self, now: float, limit: int) -> list[DueKey]:
        """Enabled keys whose automatic rotation date has passed (disabled keys wait)."""
        rows = self.q(
            "SELECT k.account, k.region, k.key_id, k.key_state, k.current_material, r.period_days "
            "FROM key_rotation r JOIN keys k ON k.account = r.account AND k.region = r.region AND k.key_id = r.key_id "
            "WHERE r.enabled = 1 AND r.next_rotation <= ? AND k.key_state = 'Enabled' "
            "AND (k.deletion_date IS NULL OR k.deletion_date > ?) "
            "ORDER BY r.next_rotation LIMIT ?" + self.claim_clause,
            (now, now, limit),
        ).fetchall()
        return [DueKey(*row) for row in rows]

    # --- material versions ------------------------------------------------------------------
    def material_versions(self, account: str, region: str, key_id: str, after_seq: int = -1,
                          limit: int = 1_000_000) -> list[MaterialVersion]:
        rows = self.q(
            f"SELECT {_VERSION_COLUMNS} FROM material_versions WHERE {_WHERE_KEY} AND seq > ? ORDER BY seq LIMIT ?",
            (account, region, key_id, after_seq, limit),
        ).fetchall()
        return [_version(r) for r in rows]

    def get_material_version(self, account: str, region: str, key_id: str, material_id: str) -> MaterialVersion | None:
        row = self.one(f"SELECT {_VERSION_COLUMNS} FROM material_versions WHERE {_WHERE_KEY} AND material_id = ?",
                       (account, region, key_id, material_id))
        return _version(row) if row else None

    def next_material_seq(self, account: str, region: str, key_id: str) -> int:
        return self.one(f"SELECT COALESCE(MAX(seq), -1) + 1 FROM material_versions WHERE {_WHERE_KEY}",
                        (account, region, key_id))[0]

    def insert_material_version(self, v: MaterialVersion) -> None:
        self.q(
            f"INSERT INTO material_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (v.account, v.region, v.key_id, v.material_id, v.seq, int(v.pending), int(v.present), v.rotation_date,
             v.rotation_type, v.expiration_model, v.valid_to, v.description, v.created))

    def update_material_version(self, v: MaterialVersion, **changes) -> None:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [int(value) if isinstance(value, bool) else value for value in changes.values()]
        self.q(f"UPDATE material_versions SET {assignments} WHERE {_WHERE_KEY} AND material_id = ?",
               (*values, v.account, v.region, v.key_id, v.material_id))
        for name, value in changes.items():
            setattr(v, name, value)

    def delete_material_version(self, v: MaterialVersion) -> None:
        self.q(f"DELETE FROM material_versions WHERE {_WHERE_KEY} AND material_id = ?",
               (v.account, v.region, v.key_id, v.material_id))

    def material_expired(self, now: float) -> bool:
        """Whether any imported material is past its ValidTo (a read: no write lock when idle)."""
        return self.one("SELECT 1 FROM material_versions WHERE present = 1 AND valid_to IS NOT NULL AND valid_to <= ? "
                        "LIMIT 1", (now,)) is not None

    def claim_expired_materials(self, now: float, limit: int) -> list[DueKey]:
        """Imported material whose ValidTo has passed and that is still present."""
        rows = self.q(
            "SELECT k.account, k.region, k.key_id, k.key_state, k.current_material, 0, v.material_id, v.pending "
            "FROM material_versions v JOIN keys k "
            "ON k.account = v.account AND k.region = v.region AND k.key_id = v.key_id "
            "WHERE v.present = 1 AND v.valid_to IS NOT NULL AND v.valid_to <= ? "
            "ORDER BY v.valid_to LIMIT ?" + self.claim_clause,
            (now, limit),
        ).fetchall()
        return [DueKey(row[0], row[1], row[2], row[3], row[4], period_days=row[5], material_id=row[6],
                       pending=bool(row[7])) for row in rows]

    # --- last use ---------------------------------------------------------------------------
    def record_last_usage(self, account: str, region: str, key_id: str, operation: str, used_at: float,
                          request_id: str) -> None:
        """Keep the latest use (several nodes flush theirs); a key deleted meanwhile gets no row.

        The key row is kept (``keep_clause``) while the use is written: without it, on PostgreSQL a
        flush that read the key before a concurrent deletion (a reset, the deletion job) committed
        would add its row after that deletion had emptied ``key_last_usage``, and outlive the key."""
        self.q(
            "INSERT INTO key_last_usage (account, region, key_id, operation, used_at, request_id) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM keys WHERE account = ? AND region = ? AND key_id = ?"
            f"{self.keep_clause}) "
            "ON CONFLICT (account, region, key_id) DO UPDATE SET operation = excluded.operation, "
            "used_at = excluded.used_at, request_id = excluded.request_id "
            "WHERE excluded.used_at >= key_last_usage.used_at",
            (account, region, key_id, operation, used_at, request_id, account, region, key_id))

    def get_last_usage(self, account: str, region: str, key_id: str) -> tuple[str, float, str] | None:
        row = self.one(f"SELECT operation, used_at, request_id FROM key_last_usage WHERE {_WHERE_KEY}",
                       (account, region, key_id))
        return (row[0], float(row[1]), row[2]) if row else None
