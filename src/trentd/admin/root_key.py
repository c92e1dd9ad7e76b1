"""``trentd root-key rotate``: a new root key, and every wrapped value in the store rewrapped
under it in one transaction, while nodes keep serving (docs/operations.md, "Root-key rotation").

1. **Stage.** The provider makes a new key next to the old one: the file provider appends it to
   the key file (atomically replaced, 0600), the PKCS#11 provider generates ``<label>-v<N+1>``
   in the token. Both keys are now available to every node that reads the same file or token.
2. **Announce.** The store's ``root_key_id`` names the new key. A running node re-reads it at most
   ``REFRESH_SECONDS`` later and from then on wraps new values under the new key, fetching it
   from its provider on first use. Values name the key that wrapped them, so a node unwraps
   old and new values alike (it holds both keys until it is restarted).
3. **Grace.** Wait until no node can still be writing a value under the old key: the refresh
   interval plus the longest store transaction (``--grace``, default 7 s; 0 when no node runs).
4. **Rewrap.** One write transaction rewraps every value not under the new key (key material,
   access-key secrets, the canary, the audit HMAC key: ``WRAPPED_COLUMNS`` and ``WRAPPED_META``)
   and checks none is left. On PostgreSQL the transaction also locks those tables against writes
   (reads go on), so no value can slip in under the old key while it runs.
5. **Retire.** Only then is the old key removed: the key file rewritten with the new key only,
   the old token objects destroyed (``--keep-old`` skips this step).

A crash at any step leaves a store that the keys at hand still open; running the command again
finishes the job (it stages yet another key and rewraps everything under it).

Every place that stores a value wrapped under the root key must be listed below; a unit test
(tests/unit/test_rootkey.py) fails when a new ``root_key.wrap`` call appears elsewhere.
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..audit import _HMAC_AAD, HMAC_META
from ..auth.principals import _secret_aad
from ..kms.grant_rules import GRANT_TOKEN_AAD, GRANT_TOKEN_META
from ..runtime import (
    CANARY_META,
    INITIALIZED_META,
    Settings,
    check_root_key,
    load_root_key,
    migrated,
    no_store,
    store_state,
    uninitialised,
)
from ..store import rootkey
from ..store.keystores import secret_aad as xks_secret_aad
from ..store.rootkey import CANARY_AAD, ROOT_KEY_META, RootKeyError, aad_for, describe
from ..store.xksproxy import credential_aad, material_aad
from .common import print_json, root_key_settings, store_refusals
from .transfer import _TRANSFER_AAD, TRANSFER_PRIVATE_META

if TYPE_CHECKING:
    from ..store.postgres import PostgresStore
    from ..store.sqlite import SQLiteStore

DEFAULT_GRACE_SECONDS = rootkey.REFRESH_SECONDS + 5.0 + 1.0  # refresh + longest store transaction + margin
ROTATION_DEADLINE_SECONDS = 600.0  # the rewrap transaction may take this long (large stores, slow HSMs)


@dataclass(frozen=True)
class WrappedColumn:
    """A table column of wrapped values: ``select`` yields (identity columns…, wrapped)."""

    table: str
    column: str
    identity: tuple[str, ...]
    aad: Callable[..., bytes]  # (*identity) -> the AAD


WRAPPED_COLUMNS = (
    WrappedColumn("key_materials", "wrapped", ("account", "key_id", "material_id"), aad_for),
    WrappedColumn("access_keys", "wrapped_secret", ("access_key_id",), _secret_aad),
    WrappedColumn("sts_sessions", "wrapped_secret", ("access_key_id",), _secret_aad),  # temporary credentials
    WrappedColumn("custom_key_stores", "wrapped_secret", ("account", "region", "store_id", "access_key_id"),
                  xks_secret_aad),
    # trentd as an XKS proxy (xksproxy/): the key stores' SigV4 secrets and the external keys
    WrappedColumn("xks_proxy_credentials", "wrapped_secret", ("keystore", "access_key_id"), credential_aad),
    WrappedColumn("xks_proxy_keys", "wrapped", ("keystore", "key_id"), material_aad),
)
# meta rows whose value is base64 of a wrapped value, with the AAD each was wrapped with
WRAPPED_META = {CANARY_META: CANARY_AAD, HMAC_META: _HMAC_AAD, TRANSFER_PRIVATE_META: _TRANSFER_AAD,
                GRANT_TOKEN_META: GRANT_TOKEN_AAD}


def _open_store(settings: Settings):
    store: PostgresStore | SQLiteStore
    if settings.database:
        from ..store.postgres import PostgresStore

        store = PostgresStore(settings.database, deadline_seconds=ROTATION_DEADLINE_SECONDS)
    else:
        from ..store.sqlite import SQLiteStore

        data_dir = Path(settings.data_dir)
        if not (data_dir / "trentd.db").is_file():
            raise no_store(data_dir, None, "trentd.db does not exist")
        store = SQLiteStore(data_dir / "trentd.db", deadline_seconds=ROTATION_DEADLINE_SECONDS)
    try:
        store.check()
        if store_state(store)[INITIALIZED_META] is None:  # never migrate (make) a store that is not one
            raise uninitialised(settings)
    except BaseException:
        store.close()
        raise
    return migrated(store)


def rewrap_all(tx, ring: rootkey.RootKeyRing, target) -> dict[str, int]:
    """Rewrap, inside ``tx``, every wrapped value that ``target`` did not wrap. Returns how many
    values of each kind were rewrapped."""
    counts: dict[str, int] = {}
    tx.block_writers(sorted({c.table for c in WRAPPED_COLUMNS} | {"meta"}))  # readers do not wait
    for col in WRAPPED_COLUMNS:
        ident = ", ".join(col.identity)
        where = " AND ".join(f"{name} = ?" for name in col.identity)
        rows = tx.q(f"SELECT {ident}, {col.column} FROM {col.table}").fetchall()
        done = 0
        for row in rows:
            *identity, wrapped = row
            wrapped = bytes(wrapped)
            if ring.wrapped_under(wrapped) == target.key_id:
                continue
            aad = col.aad(*identity)
            fresh = ring.wrap(ring.unwrap(wrapped, aad), aad, key=target)
            tx.q(f"UPDATE {col.table} SET {col.column} = ? WHERE {where}", (fresh, *identity))
            done += 1
        counts[col.table] = done
    done = 0
    for name, aad in WRAPPED_META.items():
        value = tx.get_meta(name)
        if value is None:
            continue
        wrapped = base64.b64decode(value)
        if ring.wrapped_under(wrapped) == target.key_id:
            continue
        fresh = ring.wrap(ring.unwrap(wrapped, aad), aad, key=target)
        tx.set_meta(name, base64.b64encode(fresh).decode())
        done += 1
    counts["meta"] = done
    tx.set_meta(ROOT_KEY_META, describe(ring.name, target.key_id))
    return counts


def count_not_under(tx, ring: rootkey.RootKeyRing, key_id: bytes) -> int:
    left = 0
    for col in WRAPPED_COLUMNS:
        for (wrapped,) in tx.q(f"SELECT {col.column} FROM {col.table}").fetchall():
            left += ring.wrapped_under(bytes(wrapped)) != key_id
    for name in WRAPPED_META:
        value = tx.get_meta(name)
        if value is not None:
            left += ring.wrapped_under(base64.b64decode(value)) != key_id
    return left


def rotate(settings: Settings, *, grace: float = DEFAULT_GRACE_SECONDS, keep_old: bool = False,
           progress=lambda text: None) -> dict:
    store = _open_store(settings)
    ring = None
    try:
        ring = load_root_key(settings, first_start=False, store=store)
        with store.read() as tx:
            canary = tx.get_meta(CANARY_META)
        if canary is None:
            raise RootKeyError("the store is not initialised: start trentd on it once first")
        check_root_key(ring, canary, store.where)
        old_ids = [k for k in ring.key_ids()]
        # 1. stage
        new_key = ring.provider.create_key()
        ring.set_current(new_key.key_id)
        new_name = describe(ring.name, new_key.key_id)
        progress(f"staged root key {new_name}")
        # 2. announce
        with store.write() as tx:
            tx.set_meta(ROOT_KEY_META, new_name)
        # 3. grace
        if grace > 0:
            progress(f"waiting {grace:g}s for running nodes to wrap new values under {new_name}")
            time.sleep(grace)
        # 4. rewrap (a straggler written under an old key meanwhile is caught by the next pass)
        totals: dict[str, int] = {}
        for _ in range(3):
            with store.write() as tx:
                counts = rewrap_all(tx, ring, new_key)
                left = count_not_under(tx, ring, new_key.key_id)
                if left:
                    raise RootKeyError(f"{left} wrapped values are still not under {new_name}")
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + n
            with store.read() as tx:
                if count_not_under(tx, ring, new_key.key_id) == 0:
                    break
        else:
            raise RootKeyError("values keep appearing under the old root key; the old key was kept")
        progress(f"rewrapped {sum(totals.values())} values under {new_name}")
        # 5. retire
        removed: list[bytes] = []
        if not keep_old:
            removed = ring.provider.retire({new_key.key_id})
        return {
            "Provider": ring.name,
            "NewRootKey": new_name,
            "PreviousRootKeys": [describe(ring.name, k) for k in old_ids],
            "Rewrapped": totals,
            "Retired": [describe(ring.name, k) for k in removed],
        }
    finally:
        if ring is not None:
            ring.close()
        store.close()


# --- command line ----------------------------------------------------------------------------------

def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("root-key", help="the root key that wraps everything stored")
    actions = parser.add_subparsers(dest="action", required=True)
    rotating = actions.add_parser(
        "rotate", help="make a new root key and rewrap every stored secret under it (nodes keep serving)")
    rotating.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS,
                          help=f"seconds to let running nodes switch to the new key before rewrapping "
                               f"(default {DEFAULT_GRACE_SECONDS:g}; 0 when no node is running)")
    rotating.add_argument("--keep-old", action="store_true", help="keep the previous root key in the file or token")
    data_dir_arg(rotating)


def run(args) -> int:
    """``trentd root-key rotate``: progress on stderr, the result as JSON."""
    settings = Settings(data_dir=args.data_dir, database=args.database, **root_key_settings(args))

    def progress(text: str) -> None:
        print(f"trentd: {text}", file=sys.stderr, flush=True)

    with store_refusals():
        return print_json(rotate(settings, grace=args.grace, keep_old=args.keep_old, progress=progress))
