"""Cache invalidation (store/changes.py, kms/cache.py): which writes bump the store's cache
generation, how a process's epoch follows its own and other processes' commits, and what the
epoch-tagged caches serve. Two store objects over one database stand in for two processes."""

from __future__ import annotations

import pytest

from trentd.clock import ServiceClock
from trentd.inline import MustOffload, on_event_loop
from trentd.kms.cache import CachedReads, EpochCache, KeyStateCache
from trentd.store import changes as changes_module
from trentd.store.records import KeyRecord
from trentd.store.reset import empty_kms_state
from trentd.store.sqlite import SQLiteStore
from trentd.testing.postgres import ThrowawayDatabase, require_postgres


@pytest.fixture(scope="module")
def postgres_dsn():
    require_postgres()
    database = ThrowawayDatabase()
    try:
        yield database.dsn
    finally:
        database.drop()


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request, tmp_path):
    """Two stores over one database, as two worker processes or nodes have."""
    if request.param == "sqlite":
        stores = [SQLiteStore(tmp_path / "trentd.db"), SQLiteStore(tmp_path / "trentd.db")]
    else:
        from trentd.store.postgres import PostgresStore

        dsn = request.getfixturevalue("postgres_dsn")
        stores = [PostgresStore(dsn, deadline_seconds=2.0), PostgresStore(dsn, deadline_seconds=2.0)]
    stores[0].migrate()
    with stores[0].write() as tx:  # one PostgreSQL database serves the whole module
        tx.q("DELETE FROM keys")
    yield stores
    for store in stores:
        store.close()


def a_key(key_id: str = "11111111-2222-3333-4444-555555555555", account: str = "111122223333") -> KeyRecord:
    return KeyRecord(account, "us-east-1", key_id, 1.0, "d", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AWS_KMS",
                     "Enabled", None, False, "{}", None)


def generation(store) -> int:
    with store.read() as tx:
        return tx.cache_generation()


# --- which writes bump the generation -----------------------------------------------------

def test_a_write_to_cached_state_bumps_the_generation(two_stores):
    store = two_stores[0]
    before = generation(store)
    with store.write() as tx:
        tx.insert_key(a_key())
    assert generation(store) > before


def test_reads_empty_writes_and_last_use_times_do_not_bump(two_stores):
    store = two_stores[0]
    with store.write() as tx:
        tx.insert_key(a_key())
    before = generation(store)
    with store.read() as tx:
        tx.get_key("111122223333", "us-east-1", a_key().key_id)
    with store.write() as tx:  # matches nothing: nothing changed
        tx.q("DELETE FROM aliases WHERE name = ?", ("alias/none",))
    with store.write() as tx:  # flushed every second under load: must not empty every cache
        tx.record_last_usage("111122223333", "us-east-1", a_key().key_id, "Encrypt", 5.0, "req")
    assert generation(store) == before


def test_a_rolled_back_write_does_not_bump(two_stores):
    store = two_stores[0]
    before = generation(store)
    with pytest.raises(RuntimeError):
        with store.write() as tx:
            tx.insert_key(a_key("99999999-2222-3333-4444-555555555555"))
            raise RuntimeError("abandon")
    assert generation(store) == before


# --- the epoch ------------------------------------------------------------------------------

def test_nothing_is_trusted_before_the_first_poll(two_stores):
    feed = two_stores[0].changes
    assert feed.epoch() is None
    feed.poll()
    assert feed.epoch() is not None


def test_own_commit_moves_the_epoch_before_the_write_returns(two_stores):
    store = two_stores[0]
    store.changes.poll()
    epoch = store.changes.epoch()
    with store.write() as tx:
        tx.insert_key(a_key())
    assert store.changes.epoch() != epoch


def test_another_process_commit_moves_the_epoch_at_the_next_poll(two_stores):
    mine, theirs = two_stores
    mine.changes.poll()
    epoch = mine.changes.epoch()
    with theirs.write() as tx:
        tx.insert_key(a_key())
    assert mine.changes.epoch() == epoch  # not seen yet: no poll since
    mine.changes.poll()
    assert mine.changes.epoch() != epoch


def test_another_process_reset_moves_the_epoch_and_calls_on_reset_once(two_stores):
    mine, theirs = two_stores
    forgotten = []
    mine.changes.on_reset(lambda: forgotten.append(1))
    mine.changes.poll()  # the first poll only learns where the store stands
    epoch = mine.changes.epoch()
    with theirs.write() as tx:
        tx.insert_key(a_key())
    mine.changes.poll()
    assert forgotten == []  # an ordinary write is not a reset
    with theirs.write() as tx:
        assert empty_kms_state(tx) == 1
    mine.changes.poll()
    mine.changes.poll()
    assert forgotten == [1] and mine.changes.epoch() != epoch
    with mine.read() as tx:
        assert tx.get_key("111122223333", "us-east-1", a_key().key_id) is None


def test_trust_lapses_when_polls_stop(two_stores, monkeypatch):
    feed = two_stores[0].changes
    now = [1000.0]
    monkeypatch.setattr(changes_module.time, "monotonic", lambda: now[0])
    feed.poll()
    now[0] += changes_module.TRUST_SECONDS - 0.01
    assert feed.epoch() is not None
    now[0] += 0.02
    assert feed.epoch() is None  # the database may have changed unseen: caches step aside


def test_the_poller_thread_follows_other_processes(two_stores):
    mine, theirs = two_stores
    mine.changes.start()
    try:
        cache = EpochCache(mine.changes)
        reads = []
        load = lambda: reads.append(1) or "value"  # noqa: E731
        _wait_for(lambda: mine.changes.epoch() is not None)
        cache.get(("k",), load)
        with theirs.write() as tx:
            tx.insert_key(a_key())
        # Within a second the entry is dropped and read again (behaviour, polled with a deadline).
        _wait_for(lambda: cache.get(("k",), load) and len(reads) == 2)
    finally:
        mine.changes.stop()


def _wait_for(condition, seconds: float = 2.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# --- the caches -----------------------------------------------------------------------------

class FakeFeed:
    def __init__(self):
        self.current: int | None = 1

    def epoch(self):
        return self.current


def test_entries_live_as_long_as_their_epoch():
    feed = FakeFeed()
    cache = EpochCache(feed)
    values = iter(["first", "second"])
    assert cache.get(("k",), lambda: next(values)) == "first"
    assert cache.get(("k",), lambda: pytest.fail("served from the cache")) == "first"
    feed.current = 2
    assert cache.get(("k",), lambda: next(values)) == "second"


def test_a_value_read_across_an_invalidation_is_never_served():
    feed = FakeFeed()
    cache = EpochCache(feed)

    def stale_read():
        feed.current = 2  # a change committed while this value was being read
        return "stale"

    assert cache.get(("k",), stale_read) == "stale"
    assert cache.get(("k",), lambda: "fresh") == "fresh"


def test_misses_and_untrusted_epochs_are_not_cached():
    feed = FakeFeed()
    cache = EpochCache(feed)
    assert cache.get(("k",), lambda: None) is None
    assert cache.get(("k",), lambda: "created meanwhile") == "created meanwhile"
    feed.current = None
    assert cache.get(("j",), lambda: "v") == "v"
    feed.current = 1
    assert cache.get(("j",), lambda: "read again") == "read again"


def test_the_cache_is_bounded():
    cache = EpochCache(FakeFeed(), size=3)
    for i in range(10):
        cache.get((i,), lambda i=i: i)
    assert len(cache) == 3
    assert cache.get((9,), lambda: pytest.fail("the newest entry was evicted")) == 9


def test_cached_reads_open_a_transaction_only_on_a_miss(tmp_path):
    store = SQLiteStore(tmp_path / "trentd.db")
    store.migrate()
    store.changes.poll()
    cache = KeyStateCache(store.changes)
    ident = ("111122223333", "us-east-1", "k")
    with store.write() as tx:
        tx.insert_key(a_key("k"))
    store.changes.poll()
    with CachedReads(store, cache) as tx:
        loaded = cache.keys.get(ident, lambda: tx.get_key(*ident))
    assert loaded.key_id == "k"
    with on_event_loop(), CachedReads(store, cache) as tx:  # a hit: no store, fine on the loop
        assert cache.keys.get(ident, lambda: tx.get_key(*ident)) is loaded
    with pytest.raises(MustOffload), on_event_loop(), CachedReads(store, cache) as tx:  # a miss: refused there
        cache.keys.get(("111122223333", "us-east-1", "other"), lambda: tx.get_key("111122223333", "us-east-1", "other"))
    store.close()


def test_the_test_clock_offset_is_cached_until_it_moves(two_stores):
    mine, theirs = two_stores
    clock, their_clock = ServiceClock(mine, movable=True), ServiceClock(theirs, movable=True)
    mine.changes.poll()
    assert clock.offset() == 0.0
    with on_event_loop():  # cached: no store read
        assert clock.offset() == 0.0
    clock.set_offset(60.0)
    assert clock.offset() == 60.0  # this process's own move: at once
    their_clock.set_offset(120.0)
    mine.changes.poll()
    assert clock.offset() == 120.0  # another process's move: at the next poll
