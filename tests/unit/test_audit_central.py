"""The central trail's pure parts (audit/central.py): an event's lookup columns and visibility, a
written line split back into the bytes its hash covers, and the copier's hand-over and lag."""

from __future__ import annotations

import time

from trentd.audit import chain
from trentd.audit.central import CentralCopier, event_micros, row_of, split_line, username, visible_to


def test_username_is_cloudtrails_lookup_attribute():
    assert username({"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::1:user/alice"}) == "alice"
    assert username({"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/App/build-42"}) == "build-42"
    assert username({"type": "Root", "arn": "arn:aws:iam::111122223333:root"}) == "root"
    assert username({"type": "Unknown", "accessKeyId": "AKIA…"}) is None
    assert username({}) is None


def test_an_allowed_call_is_visible_to_the_key_owner_a_refused_one_is_not():
    key = {"accountId": "222222222222", "type": "AWS::KMS::Key", "ARN": "arn:aws:kms:us-east-1:222222222222:key/k"}
    allowed = {"recipientAccountId": "111111111111", "resources": [key, dict(key)]}
    assert visible_to(allowed) == ("111111111111", "222222222222")
    assert visible_to({**allowed, "errorCode": "AccessDeniedException"}) == ("111111111111",)
    assert visible_to({"resources": [key]}) == ("222222222222",)  # unauthenticated: no caller account
    assert visible_to({"errorCode": "IncompleteSignatureException"}) == ()


def test_event_time_in_microseconds():
    assert event_micros("1970-01-01T00:00:01Z") == 1_000_000
    assert event_micros("2026-11-28T13:45:15Z") == 1_795_873_515_000_000
    assert event_micros("2026-11-28T13:45:15.250Z") == 1_795_873_515_250_000
    assert event_micros(None) == 0 and event_micros("yesterday") == 0


def test_a_written_line_splits_into_the_hashed_bytes_and_its_links():
    event = {"eventName": "Encrypt", "nested": {"b": 1, "a": [1, 2]}, "readOnly": True}
    line, digest = chain.encode(event, 7, "ab" * 32)
    body, links = split_line(line.rstrip(b"\n"))
    assert body == chain.canonical(event) and links == {"seq": 7, "prev": "ab" * 32, "hash": digest}
    empty_line, _ = chain.encode({}, 0, chain.ZERO)
    assert split_line(empty_line.rstrip(b"\n"))[0] == b"{}"
    assert split_line(b'{"eventName":"Encrypt"}') is None
    assert split_line(b'{"eventName":"x","trentdChain":{"seq":') is None


def test_row_of_an_event():
    event = {"eventTime": "2026-11-28T13:45:15Z", "eventID": "e-1", "awsRegion": "eu-west-1", "eventName": "Decrypt",
             "eventSource": "kms.amazonaws.com", "readOnly": True, "recipientAccountId": "111111111111",
             "userIdentity": {"type": "IAMUser", "userName": "bob", "accessKeyId": "AKIAEXAMPLE"},
             "resources": [{"type": "AWS::KMS::Key", "ARN": "arn:k", "accountId": "111111111111"}, "junk"]}
    row = row_of("c", 3, "p", "h", b"{}", event)
    assert (row.event_time, row.event_id, row.region, row.event_name, row.event_source, row.read_only, row.username,
            row.access_key_id) == (1_795_873_515_000_000, "e-1", "eu-west-1", "Decrypt", "kms.amazonaws.com", 1, "bob",
                                   "AKIAEXAMPLE")
    assert row.accounts == ("111111111111",) and row.resources == (("AWS::KMS::Key", "arn:k"),)
    assert row_of("c", 0, "p", "h", b"{}", {}).read_only is None


def test_lag_is_the_age_of_the_oldest_line_not_yet_copied(tmp_path):
    copier = CentralCopier(None, "chain", tmp_path, max_lag=0.05, start=False)  # no thread: nothing copies
    assert copier.lag() == 0.0 and not copier.lagging()
    copier.written([(0, chain.ZERO, "h", b"{}", {})])
    time.sleep(0.1)  # the lag is the age of a line: it has to grow
    assert copier.lag() >= 0.1 and copier.lagging()
    assert copier.status()["maxLagSeconds"] == 0.05


def test_lines_dropped_from_memory_are_read_back_from_the_files(tmp_path, monkeypatch):
    """More lines than the copier holds in memory: the oldest are copied from the chain's files,
    every line exactly once and in order; copying again changes nothing."""
    from trentd.audit import central
    from trentd.audit import trail as reading
    from trentd.audit.sink import AuditSink
    from trentd.store import trail
    from trentd.store.sqlite import SQLiteStore

    monkeypatch.setattr(central, "MAX_PENDING", 5)
    store = SQLiteStore(tmp_path / "trentd.db")
    store.migrate()
    sink = AuditSink(tmp_path / "audit", fsync=False)
    copier = CentralCopier(store, sink.chain_name, tmp_path / "audit", start=False)
    sink.on_written = copier.written
    for n in range(20):
        sink.submit({"eventName": "Encrypt", "requestID": f"r{n}", "eventTime": "2026-12-05T01:00:00Z"}).result()
    sink.close()
    assert copier.lag() > 0 and len(copier._pending) == 5  # 15 dropped from memory
    copier._thread.start()
    assert copier.wait_copied(timeout=10)
    copier.close()
    with store.read() as tx:
        links = trail.chain_links(tx, sink.chain_name, -1, 100)
    assert [seq for seq, *_ in links] == list(range(20))
    with store.write() as tx:  # the same rows again: idempotent on (chain, seq)
        trail.insert_events(tx, list(central.read_chain(tmp_path / "audit", sink.chain_name, -1)))
    with store.read() as tx:
        assert tx.one("SELECT count(*) FROM audit_trail")[0] == 20
    report = reading.verify(store)
    assert report.ok and report.chains[0].events == 20 and report.chains[0].head == links[-1][2]
    store.close()


def _store(tmp_path):
    from trentd.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "trentd.db")
    store.migrate()
    return store


def test_retention_is_claimed_once_per_interval_across_processes(tmp_path):
    from trentd.store import trail

    store = _store(tmp_path)
    minute = 60_000_000
    with store.write() as tx:
        assert trail.claim_job(tx, "retention", 10 * minute, minute)
    with store.write() as tx:  # another node, half a minute later: already done
        assert not trail.claim_job(tx, "retention", 10 * minute + minute // 2, minute)
    with store.write() as tx:  # a minute on: due again
        assert trail.claim_job(tx, "retention", 11 * minute, minute)
    store.close()


def test_a_store_that_refuses_the_copy_shows_in_the_lag_and_the_log(tmp_path, monkeypatch, caplog):
    from trentd.audit import central
    from trentd.store.errors import StoreUnavailable

    class Refusing:
        """A store whose every transaction fails as an unreachable database's would."""

        def write(self):
            raise StoreUnavailable("postgres: connection refused")

        read = write

    monkeypatch.setattr(central, "LAG_WARNING", 0.1)
    monkeypatch.setattr(central, "RETRY_SECONDS", 0.05)
    copier = CentralCopier(Refusing(), "chain", tmp_path, start=False)
    copier.written([(0, chain.ZERO, "h", b"{}", {})])
    copier._thread.start()
    deadline = time.monotonic() + 10
    while "central trail:" not in caplog.text:
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.05)
    assert "behind (1 event(s) waiting); the store does not take them: StoreUnavailable" in caplog.text
    assert copier.stats["failures"] >= 1 and copier.lag() > 0.1
    copier.close(timeout=1)
