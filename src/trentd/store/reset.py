"""Emptying the store's KMS state: ``--dev``'s ``POST /_trentd/reset`` (and moto_server's
``POST /moto-api/reset``), for test suites that want a clean service between tests.

Every account's keys, key material, aliases, grants, tags, rotation and lifecycle rows, last-use
times, multi-Region records, custom key stores and their XKS mappings, and the test clock's
offset go, and so do the central audit trail's events (store/trail.py ``empty``).
Principals, access keys, policies, STS and console sessions, the root key's canary and
the rest of ``meta`` stay: the administrator's and the tests' credentials keep working.

A reset also bumps its own row of ``cache_generations``: every process's change feed
(store/changes.py) drops its caches on the ordinary bump, and on this row's change also forgets
what is not tagged with an epoch (unwrapped key material, last-use times not yet written).
"""

from __future__ import annotations

from ..clock import OFFSET_META
from . import trail
from .interface import Transaction

RESET_SCOPE = "reset"  # a cache_generations scope; real scopes are "*" or "account:region"
# `keys` first: writers lock a key's row before its side tables, so a reset on PostgreSQL takes
# row locks in the same order as they do.
KMS_TABLES = (
    "keys", "key_counts", "key_materials", "material_versions", "key_rotation", "key_last_usage",
    "aliases", "tags", "grants", "multi_region_keys", "xks_keys", "custom_key_stores",
)


def empty_kms_state(tx: Transaction) -> int:
    """Delete every account's KMS state in ``tx`` (a write transaction); returns the number of
    key rows deleted (one per key and Region)."""
    deleted = int(tx.one("SELECT count(*) FROM keys")[0])
    for table in KMS_TABLES:
        tx.q(f"DELETE FROM {table}")
    tx.q("DELETE FROM meta WHERE name = ?", (OFFSET_META,))
    trail.empty(tx)
    tx.q("INSERT INTO cache_generations (scope, generation) VALUES (?, 1) ON CONFLICT (scope) "
         "DO UPDATE SET generation = cache_generations.generation + 1", (RESET_SCOPE,))
    return deleted


def reset_generation(tx: Transaction) -> int:
    """How many resets the store has seen (0: none)."""
    row = tx.one("SELECT generation FROM cache_generations WHERE scope = ?", (RESET_SCOPE,))
    return int(row[0]) if row else 0
