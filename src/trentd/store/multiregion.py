"""Multi-Region key rows: the store half of kms/multiregion.py (mixed into Tx).

A multi-Region key is one ``keys`` row per Region, all with the same key id; ``multi_region_keys``
(migration 0004) says which Region holds the primary and, while a primary scheduled for deletion
waits for its replicas (PendingReplicaDeletion), the waiting period it will then start.
"""

from __future__ import annotations

from collections.abc import Iterable

from .sql import SQLTransaction


class MultiRegionQueries(SQLTransaction):
    def lock_regions(self, account: str, regions: Iterable[str]) -> None:
        """A write that touches several Regions of one multi-Region key (ReplicateKey,
        UpdatePrimaryRegion) takes the per-Region write scopes in a fixed (sorted) order before
        reading anything, so two such writes in opposite directions cannot deadlock."""
        for region in sorted(set(regions)):
            self.lock_scope(account, region)

    def get_primary_region(self, account: str, key_id: str) -> str | None:
        row = self.one("SELECT primary_region FROM multi_region_keys WHERE account = ? AND key_id = ?",
                       (account, key_id))
        return row[0] if row else None

    def set_primary_region(self, account: str, key_id: str, region: str) -> None:
        self.q(
            "INSERT INTO multi_region_keys (account, key_id, primary_region, pending_window) VALUES (?, ?, ?, NULL) "
            "ON CONFLICT (account, key_id) DO UPDATE SET primary_region = excluded.primary_region",
            (account, key_id, region),
        )

    def key_regions(self, account: str, key_id: str) -> list[tuple[str, float | None]]:
        """(Region, deletion date) of every row of one key id, sorted by Region."""
        return [tuple(r) for r in self.q(
            "SELECT region, deletion_date FROM keys WHERE account = ? AND key_id = ? ORDER BY region",
            (account, key_id)).fetchall()]

    def set_replica_wait(self, account: str, key_id: str, window: int | None) -> None:
        """The waiting period of a primary in PendingReplicaDeletion (None: not waiting)."""
        self.q("UPDATE multi_region_keys SET pending_window = ? WHERE account = ? AND key_id = ?",
               (window, account, key_id))

    def get_replica_wait(self, account: str, key_id: str) -> int | None:
        row = self.one("SELECT pending_window FROM multi_region_keys WHERE account = ? AND key_id = ?",
                       (account, key_id))
        return row[0] if row else None

    def primaries_waiting_for_replicas(self, limit: int = 100) -> list[tuple[str, str, str, int]]:
        """(account, key id, primary Region, window) of every primary in PendingReplicaDeletion."""
        claim = self.claim_clause if self.writing else ""  # a read claims nothing
        return [tuple(r) for r in self.q(
            "SELECT account, key_id, primary_region, pending_window FROM multi_region_keys "
            "WHERE pending_window IS NOT NULL ORDER BY account, key_id LIMIT ?" + claim, (limit,)).fetchall()]

    def share_current_material(self, account: str, key_id: str, material_id: str) -> None:
        """Rotation is a shared property: every Region's row of a multi-Region key encrypts under
        the same current material."""
        self.q("UPDATE keys SET current_material = ? WHERE account = ? AND key_id = ? AND multi_region = 1",
               (material_id, account, key_id))

    def material_ids(self, account: str, key_id: str) -> list[str]:
        return [r[0] for r in self.q("SELECT material_id FROM key_materials WHERE account = ? AND key_id = ?",
                                     (account, key_id)).fetchall()]

    def move_rotation(self, account: str, key_id: str, old_region: str, new_region: str) -> None:
        """UpdatePrimaryRegion: the automatic-rotation schedule moves to the new primary's row."""
        self.q("DELETE FROM key_rotation WHERE account = ? AND region = ? AND key_id = ?",
               (account, new_region, key_id))
        self.q("UPDATE key_rotation SET region = ? WHERE account = ? AND region = ? AND key_id = ?",
               (new_region, account, old_region, key_id))
