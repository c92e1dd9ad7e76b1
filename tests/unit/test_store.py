"""The store interface on both engines: migrations, placeholders, errors, deadlines."""

from __future__ import annotations

import threading
import time

import pytest

from trentd.store import schema
from trentd.store.errors import Duplicate, StoreUnavailable
from trentd.store.records import AliasRecord
from trentd.store.sqlite import SQLiteStore
from trentd.testing.postgres import ThrowawayDatabase, require_postgres


@pytest.fixture(scope="module")
def postgres_store():
    """One database for the module (creating one costs ~1 s); ``store`` empties it per test."""
    require_postgres()
    from trentd.store.postgres import PostgresStore

    database = ThrowawayDatabase()
    store = PostgresStore(database.dsn, deadline_seconds=1.0)
    try:
        store.migrate()
        yield store
    finally:
        store.close()
        database.drop()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = SQLiteStore(tmp_path / "trentd.db")
        store.migrate()
        yield store
        store.close()
        return
    store = request.getfixturevalue("postgres_store")
    with store.write() as tx:
        tx.q("TRUNCATE meta, keys, aliases, key_counts")
    yield store


def test_statements_split_outside_quotes_and_drop_comments():
    sql = "CREATE TABLE a (x TEXT DEFAULT 'a;--b'); -- c;d\n-- whole line;\nCREATE INDEX i ON a (x);\n"
    assert schema.statements(sql) == ["CREATE TABLE a (x TEXT DEFAULT 'a;--b')", "CREATE INDEX i ON a (x)"]


def test_every_engine_gets_the_portable_migrations():
    sqlite, postgres = schema.migrations("sqlite"), schema.migrations("postgres")
    assert sqlite[0][0] == 1 and postgres[0][0] == 1
    assert [v for v, _ in sqlite] == sorted({v for v, _ in sqlite})
    with pytest.raises(ValueError):
        schema.migrations("mysql")


def test_placeholders_are_translated_once_outside_quotes():
    pytest.importorskip("psycopg")
    from trentd.store.postgres import redact, translate

    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE '?%' AND d = ?") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE '?%%' AND d = %s", True)
    assert translate("UPDATE t SET a = ?")[1] is False
    assert translate("SELECT a FROM t FOR UPDATE SKIP LOCKED")[1] is False
    assert "secret" not in redact("postgresql://u:secret@h:5/db") and "u@h:5/db" in redact("postgresql://u:secret@h:5/db")


def test_migrate_twice_applies_nothing_the_second_time(store):
    assert store.migrate() == []


def test_write_commits_and_read_sees_it(store):
    with store.write() as tx:
        tx.set_meta("k", "v1")
        tx.set_meta("k", "v2")
    with store.read() as tx:
        assert tx.get_meta("k") == "v2"
    assert store.read_meta("k") == "v2"


def test_an_exception_rolls_the_whole_transaction_back(store):
    with pytest.raises(RuntimeError):
        with store.write() as tx:
            tx.set_meta("half", "written")
            raise RuntimeError("boom")
    assert store.read_meta("half") is None


def test_unique_violation_is_duplicate_and_leaves_nothing(store):
    alias = AliasRecord("111122223333", "us-east-1", "alias/x", "k1", 1.0, 1.0)
    with store.write() as tx:
        tx.insert_alias(alias)
    with pytest.raises(Duplicate):
        with store.write() as tx:
            tx.set_meta("with-duplicate", "1")
            tx.insert_alias(alias)
    assert store.read_meta("with-duplicate") is None
    with store.read() as tx:  # the store is still usable
        assert tx.get_alias("111122223333", "us-east-1", "alias/x").key_id == "k1"


def test_read_meta_inside_a_transaction(store):
    with store.write() as tx:
        tx.set_meta("clock", "1")
    with store.write() as tx:
        assert store.read_meta("clock") == "1"
        tx.set_meta("other", "2")


def test_nested_transactions_are_refused(store):
    with store.read():
        with pytest.raises(RuntimeError):
            with store.read():
                pass


def test_postgres_read_refuses_writes(store):
    if store.kind != "postgres":
        pytest.skip("SQLite's read() is a deferred transaction")
    with pytest.raises(RuntimeError, match="write statement inside store.read"):
        with store.read() as tx:
            tx.set_meta("x", "y")
    assert store.read_meta("x") is None


def test_postgres_deadline_discards_the_connection_and_recovers(store):
    if store.kind != "postgres":
        pytest.skip("PostgreSQL only")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        with store.read() as tx:
            tx.q("SELECT pg_sleep(30)")
    assert time.monotonic() - started < 2.5
    with store.read() as tx:  # a fresh connection, no restart
        assert tx.one("SELECT 1")[0] == 1


def test_postgres_client_side_deadline_fires_without_the_server(store):
    """The watchdog, not statement_timeout: a lock wait held by another connection (lock_timeout
    and statement_timeout raised above the deadline for this statement)."""
    if store.kind != "postgres":
        pytest.skip("PostgreSQL only")
    import psycopg

    holder = psycopg.connect(store.dsn, autocommit=False)
    try:
        holder.execute("SELECT pg_advisory_lock(42)")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            with store.write() as tx:
                tx.q("SET LOCAL statement_timeout = 60000")
                tx.q("SET LOCAL lock_timeout = 60000")
                tx.q("SELECT pg_advisory_xact_lock(42)")
        assert time.monotonic() - started < 2.5
    finally:
        holder.close()
    with store.write() as tx:
        tx.set_meta("after", "ok")
    assert store.read_meta("after") == "ok"


def test_concurrent_writers_in_one_scope_do_not_lose_updates(store):
    """Read-check-write in parallel: every increment survives (the per-scope lock on PostgreSQL,
    BEGIN IMMEDIATE on SQLite)."""
    from trentd.store.records import KeyRecord

    key = KeyRecord("111122223333", "us-east-1", "k", 1.0, "0", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT",
                    "AWS_KMS", "Enabled", None, False, "{}", None)
    with store.write() as tx:
        tx.insert_key(key)

    def bump():
        for _ in range(10):
            with store.write() as tx:
                current = tx.get_key(key.account, key.region, key.key_id)
                tx.update_key(current, description=str(int(current.description) + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.read() as tx:
        assert tx.get_key(key.account, key.region, key.key_id).description == "40"


def _key(account: str, region: str, key_id: str):
    from trentd.store.records import KeyRecord

    return KeyRecord(account, region, key_id, 1.0, "", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AWS_KMS", "Enabled",
                     None, False, "{}", None)


def _counted_and_real(tx, account: str, region: str) -> tuple[int, int]:
    real = tx.one("SELECT count(*) FROM keys WHERE account = ? AND region = ?", (account, region))[0]
    return tx.count_keys(account, region), real


def test_key_count_follows_every_insert_and_delete(store):
    """CreateKey's quota check reads key_counts: it must match the keys table exactly."""
    keys = [_key("111122223333", "us-east-1", f"k{i}") for i in range(3)] + [_key("111122223333", "eu-west-1", "k9")]
    with store.write() as tx:
        for key in keys:
            tx.insert_key(key)
    with store.write() as tx:
        tx.delete_key(keys[0])
        tx.delete_key(keys[0])  # already gone: the count does not move twice
    with store.read() as tx:
        assert _counted_and_real(tx, "111122223333", "us-east-1") == (2, 2)
        assert _counted_and_real(tx, "111122223333", "eu-west-1") == (1, 1)
        assert _counted_and_real(tx, "444455556666", "us-east-1") == (0, 0)


def test_key_count_migration_counts_the_keys_already_stored(tmp_path):
    store = SQLiteStore(tmp_path / "trentd.db")
    store.migrate()
    with store.write() as tx:  # a store from before migration 0008, holding keys
        tx.q("DROP TABLE key_counts")
        tx.q("DELETE FROM schema_migrations WHERE version = 8")
        for i in range(5):
            tx.q("INSERT INTO keys (account, region, key_id, created, description, key_spec, key_usage, origin, "
                 "key_state, multi_region, policy) VALUES (?, 'us-east-1', ?, 1.0, '', 'SYMMETRIC_DEFAULT', "
                 "'ENCRYPT_DECRYPT', 'AWS_KMS', 'Enabled', 0, '{}')", ("111122223333", f"k{i}"))
    assert store.migrate() == [8]
    with store.read() as tx:
        assert _counted_and_real(tx, "111122223333", "us-east-1") == (5, 5)
    store.close()


def test_a_last_use_flushed_while_its_key_is_deleted_does_not_outlive_the_key(store):
    """A last-use flush that runs while another transaction deletes the key (a --dev reset, the
    deletion job) waits for that deletion and writes nothing. On PostgreSQL (READ COMMITTED) it
    used to read the key as it was before the deletion committed and add its row after the
    deletion had emptied key_last_usage: the reset test saw such a row."""
    with store.write() as tx:
        tx.insert_key(_key("111122223333", "us-east-1", "deleted-while-used"))
    deleting = threading.Event()
    flushed = threading.Event()

    def flush():
        deleting.wait(5)
        with store.write() as tx:
            tx.record_last_usage("111122223333", "us-east-1", "deleted-while-used", "Encrypt", 1.0, "req")
        flushed.set()

    flusher = threading.Thread(target=flush)
    flusher.start()
    with store.write() as tx:
        tx.q("DELETE FROM key_last_usage WHERE key_id = ?", ("deleted-while-used",))
        tx.q("DELETE FROM keys WHERE key_id = ?", ("deleted-while-used",))
        deleting.set()
        time.sleep(0.3)  # the flush runs meanwhile (PostgreSQL) or waits for the write lock (SQLite)
    flusher.join(5)
    assert flushed.is_set()
    with store.read() as tx:
        assert tx.get_last_usage("111122223333", "us-east-1", "deleted-while-used") is None
