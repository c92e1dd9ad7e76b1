"""The central audit trail (docs/audit.md, "The central trail"), through running servers, per store.

- A call on each node is in the central trail that the other node's store holds (two nodes over
  PostgreSQL; one node over SQLite), found by ``trentd audit search`` over the store.
- ``trentd audit verify`` over the store: every chain verifies; a tampered body or lookup column
  is reported with its chain and seq (exit 1).
- An allowed call on another account's key is visible to both accounts, a refused one only to
  the caller's.
- The copier blocked (the store refuses its writes): cached Encrypts keep being answered, the lag
  shows in /readyz, and once the store takes writes again every event is central exactly once.
- ``--audit-central-max-lag 2``: requests fail closed (500) once the lag passes 2 s, and recover.
- Retention purges old events, leaving a checkpoint that verify starts from.
- ``trentd audit export`` writes CloudTrail records as JSON lines; a --dev reset empties the trail;
  the chain of a process that is gone is copied when a server starts.
"""

from __future__ import annotations

import calendar
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError

from trentd.testing.postgres import ThrowawayCluster, ThrowawayDatabase, require_cluster_tools
from trentd.testing.server import TrentdServer

from ..helpers import code_of, new_account

WAIT = 10.0  # seconds a poll may take on a loaded machine (the copy normally takes well under one)


def trentd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trentd", *args], capture_output=True, text=True, timeout=60)


def store_args(server: TrentdServer) -> list[str]:
    """How an admin command reaches ``server``'s store."""
    if server.database:
        return ["--data-dir", str(server.data_dir), "--database", server.database,
                "--root-key-file", str(server.root_key_file)]
    return ["--data-dir", str(server.data_dir)]


@contextmanager
def connect(server: TrentdServer):
    """A connection of the test's own to ``server``'s store (autocommit)."""
    if server.database:
        import psycopg

        with psycopg.connect(server.database, autocommit=True) as conn:
            yield conn
    else:
        conn = sqlite3.connect(server.data_dir / "trentd.db", isolation_level=None, timeout=30)
        try:
            yield conn
        finally:
            conn.close()


def query(server: TrentdServer, sql: str, params: tuple = ()) -> list[tuple]:
    """The rows of a SELECT (an UPDATE: none)."""
    with connect(server) as conn:
        if server.database:
            sql = sql.replace("?", "%s")
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def central(server: TrentdServer) -> dict[str, list[tuple[str, int, dict]]]:
    """requestID -> [(chain, seq, event)] of every event in the central trail."""
    found: dict[str, list] = {}
    for chain, seq, body in query(server, "SELECT chain, seq, body FROM audit_trail"):
        event = json.loads(bytes(body))
        found.setdefault(event["requestID"], []).append((chain, seq, event))
    return found


def wait_central(server: TrentdServer, request_ids: list[str]) -> dict:
    """Poll until every request's event is central; each must be there exactly once."""
    deadline = time.monotonic() + WAIT
    while True:
        found = central(server)
        if all(r in found for r in request_ids):
            assert all(len(found[r]) == 1 for r in request_ids), {r: found[r] for r in request_ids}
            return found
        assert time.monotonic() < deadline, [r for r in request_ids if r not in found]
        time.sleep(0.05)


def rid(response_or_error) -> str:
    if isinstance(response_or_error, ClientError):
        return response_or_error.response["ResponseMetadata"]["RequestId"]
    return response_or_error["ResponseMetadata"]["RequestId"]


def verify(server: TrentdServer) -> tuple[int, dict]:
    result = trentd("audit", "verify", *store_args(server))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def readyz(server: TrentdServer) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.url + "/readyz", timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def client(server: TrentdServer, account: str):
    return server.client(access_key=account, secret_key="unused-in-dev-mode", read_timeout=30)


# --- servers ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nodes(store_kind):
    """Two nodes over one PostgreSQL database; one node over SQLite."""
    if store_kind == "sqlite":
        servers = [TrentdServer()]
        database = None
    else:
        database = ThrowawayDatabase()
        first = TrentdServer(database=database.dsn)
        servers = [first, TrentdServer(database=database.dsn, root_key_file=first.root_key_file)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.cleanup()
        if database is not None:
            database.drop()


@pytest.fixture(scope="module")
def strict(store_kind):
    """A server that refuses requests while the central trail is more than 2 s behind."""
    with TrentdServer(store=store_kind, extra_args=("--audit-central-max-lag", "2")) as server:
        yield server


@contextmanager
def copier_blocked(server: TrentdServer):
    """The store refuses the copier's writes while the block lasts; reads (the caches' change
    feed) go on. SQLite: a write lock held (WAL readers are not blocked); PostgreSQL: the trail's
    table locked."""
    with connect(server) as conn:
        if server.database:
            conn.execute("BEGIN")
            conn.execute("LOCK TABLE audit_trail IN EXCLUSIVE MODE")
        else:
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


# --- every node's events, in one trail ---------------------------------------------------------------
def test_a_call_on_each_node_is_in_the_central_trail_of_the_other(nodes):
    account = new_account()
    calls = {}
    for index, node in enumerate(nodes):
        kms = client(node, account)
        key_id = kms.create_key(Description=f"node {index}")["KeyMetadata"]["KeyId"]
        calls[index] = rid(kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    for index in range(len(nodes)):
        other = nodes[(index + 1) % len(nodes)]
        wait_central(other, [calls[index]])  # the other node's store holds it
        result = trentd("audit", "search", *store_args(other), "--event", "Encrypt", "--since", "10m")
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        found = [e for e in lines if e["requestID"] == calls[index]]
        assert len(found) == 1 and found[0]["userIdentity"]["accountId"] == account
        assert found[0]["trentdChain"]["seq"] >= 0  # the stored line, as the file holds it
    chains = {chain for chain, in query(nodes[0], "SELECT DISTINCT chain FROM audit_trail")}
    assert len(chains) >= len(nodes)  # one chain per process
    code, report = verify(nodes[-1])
    assert code == 0 and report["ok"] is True, report
    assert {c["chain"] for c in report["chains"]} == chains


def test_lookup_columns_are_taken_from_the_event(nodes):
    account = new_account()
    kms = client(nodes[0], account)
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    request = rid(kms.encrypt(KeyId=key_arn, Plaintext=b"x"))
    chain, seq, event = wait_central(nodes[0], [request])[request][0]
    row = query(nodes[0], "SELECT event_id, region, event_name, event_source, read_only, username, access_key_id, "
                          "event_time FROM audit_trail WHERE chain = ? AND seq = ?", (chain, seq))
    moment = time.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert row == [(event["eventID"], "us-east-1", "Encrypt", "kms.amazonaws.com", 1, "admin", account,
                    calendar.timegm(moment) * 1_000_000)]
    assert query(nodes[0], "SELECT resource_type, resource_name FROM audit_trail_resources WHERE chain = ? AND seq = ?",
                 (chain, seq)) == [("AWS::KMS::Key", key_arn)]


def test_tampering_with_the_central_trail_is_found_by_verify(nodes):
    kms = client(nodes[0], new_account())
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    request = rid(kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    chain, seq, _ = wait_central(nodes[0], [request])[request][0]
    (body,) = query(nodes[0], "SELECT body FROM audit_trail WHERE chain = ? AND seq = ?", (chain, seq))[0]
    body = bytes(body)
    edited = body.replace(b'"eventName":"Encrypt"', b'"eventName":"Decrypt"')
    assert edited != body
    try:
        query(nodes[0], "UPDATE audit_trail SET body = ? WHERE chain = ? AND seq = ?", (edited, chain, seq))
        code, report = verify(nodes[0])
        assert code == 1 and report["ok"] is False
        assert report["errors"] == [{"chain": chain, "seq": seq, "reason": "hash mismatch: the event was modified"}]
    finally:
        query(nodes[0], "UPDATE audit_trail SET body = ? WHERE chain = ? AND seq = ?", (body, chain, seq))
    try:  # a lookup column that no longer says what the event says
        query(nodes[0], "UPDATE audit_trail SET event_name = 'Decrypt' WHERE chain = ? AND seq = ?", (chain, seq))
        code, report = verify(nodes[0])
        assert code == 1
        assert report["errors"] == [{"chain": chain, "seq": seq, "reason": "the lookup columns do not match the event"}]
    finally:
        query(nodes[0], "UPDATE audit_trail SET event_name = 'Encrypt' WHERE chain = ? AND seq = ?", (chain, seq))
    assert verify(nodes[0])[0] == 0


# --- who sees an event ---------------------------------------------------------------------------------
def test_an_allowed_cross_account_call_is_visible_to_both_accounts_a_refused_one_to_the_caller(nodes):
    owner, caller = new_account(), new_account()
    owner_kms, caller_kms = client(nodes[0], owner), client(nodes[-1], caller)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{owner}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "caller", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{caller}:root"},
         "Action": "kms:Encrypt", "Resource": "*"}]}
    shared = owner_kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    private = owner_kms.create_key()["KeyMetadata"]["Arn"]
    allowed = rid(caller_kms.encrypt(KeyId=shared, Plaintext=b"x"))
    with pytest.raises(ClientError) as refused:
        caller_kms.encrypt(KeyId=private, Plaintext=b"x")
    assert code_of(refused.value) == ("AccessDeniedException", 400)
    found = wait_central(nodes[0], [allowed, rid(refused.value)])

    def seen_by(request: str) -> set[str]:
        chain, seq, _ = found[request][0]
        return {a for a, in query(nodes[0], "SELECT account FROM audit_trail_visibility WHERE chain = ? AND seq = ?",
                                  (chain, seq))}

    assert seen_by(allowed) == {owner, caller}
    assert seen_by(rid(refused.value)) == {caller}
    assert found[rid(refused.value)][0][2]["resources"][0]["ARN"] == private  # the event names the key


# --- the store refusing the copy ------------------------------------------------------------------------
def test_cached_encrypts_are_answered_while_the_copy_is_blocked_and_it_catches_up(nodes):
    node = nodes[0]
    kms = client(node, new_account())
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    answered = [rid(kms.encrypt(KeyId=key_id, Plaintext=b"warm"))]  # the key is cached from here on
    wait_central(node, answered)
    with copier_blocked(node):
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            answered.append(rid(kms.encrypt(KeyId=key_id, Plaintext=b"during")))
            time.sleep(0.05)
        status, body = readyz(node)
        assert status == 200 and body["centralTrail"]["lagSeconds"] > 0.5, body
        assert not set(answered[1:]) & set(central(node))  # none of them could be copied yet
    found = wait_central(node, answered)  # each exactly once
    seqs = sorted(found[r][0][1] for r in answered)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, no gap in the chain
    assert verify(node)[0] == 0
    assert readyz(node)[1]["centralTrail"]["lagSeconds"] < 2


def test_max_lag_fails_requests_closed_and_they_recover(strict):
    kms = client(strict, new_account())
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    first = rid(kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    wait_central(strict, [first])
    answered, refused = [], []
    with copier_blocked(strict):
        deadline = time.monotonic() + WAIT
        while not refused:
            assert time.monotonic() < deadline, "no request was refused while the trail fell behind"
            try:
                answered.append(rid(kms.encrypt(KeyId=key_id, Plaintext=b"x")))
            except ClientError as exc:
                assert code_of(exc) == ("KMSInternalException", 500)
                assert exc.response["Error"]["Message"] == (
                    "An internal error occurred: the request could not be recorded in the audit log.")
                refused.append(rid(exc))
            time.sleep(0.1)
        assert answered  # the first seconds of lag are within the limit
        status, body = readyz(strict)
        assert status == 503 and body["failing"] == {
            "central_trail": "the central audit trail is behind more than --audit-central-max-lag"}
    deadline = time.monotonic() + WAIT
    while True:  # the copy catches up and requests are answered again, no restart
        try:
            answered.append(rid(kms.encrypt(KeyId=key_id, Plaintext=b"x")))
            break
        except ClientError as exc:
            assert code_of(exc) == ("KMSInternalException", 500) and time.monotonic() < deadline
            time.sleep(0.1)
    found = wait_central(strict, answered + refused)
    refusal = found[refused[0]][0][2]
    assert refusal["additionalEventData"] == {"centralTrail": "behind", "callerAnswer": "KMSInternalException"}
    assert readyz(strict)[0] == 200


# --- retention, export, reset, stopped processes ---------------------------------------------------------
def test_retention_purges_old_events_and_verify_starts_from_the_checkpoint(store_kind):
    with TrentdServer(store=store_kind, extra_args=("--audit-retention-days", "1")) as server:
        kms = client(server, new_account())
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        old = [rid(kms.encrypt(KeyId=key_id, Plaintext=b"x")) for _ in range(3)]
        found = wait_central(server, old)
        chain = found[old[0]][0][0]
        last = max(found[r][0][1] for r in old)
        server.move_clock(advance_seconds=2 * 86_400)  # every event so far is two days old now
        deadline = time.monotonic() + WAIT
        while not query(server, "SELECT seq FROM audit_trail_checkpoints WHERE chain = ?", (chain,)):
            assert time.monotonic() < deadline, "retention did not run"
            time.sleep(0.1)
        ((checkpoint, digest),) = query(server, "SELECT seq, hash FROM audit_trail_checkpoints WHERE chain = ?",
                                        (chain,))
        assert checkpoint >= last
        assert not set(old) & set(central(server))
        assert query(server, "SELECT count(*) FROM audit_trail_visibility WHERE chain = ? AND seq <= ?",
                     (chain, checkpoint)) == [(0,)]
        newer = rid(kms.encrypt(KeyId=key_id, Plaintext=b"after"))
        wait_central(server, [newer])
        code, report = verify(server)
        assert code == 0, report
        (ours,) = [c for c in report["chains"] if c["chain"] == chain]
        assert ours["checkpoint"] == checkpoint and ours["firstSeq"] == checkpoint + 1
        # The local file keeps every event.
        text = "".join(p.read_text() for p in (server.data_dir / "audit").glob("*.jsonl"))
        assert all(r in text for r in old) and digest in text


def test_export_writes_cloudtrail_records(nodes, tmp_path):
    kms = client(nodes[0], new_account())
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    requests = [rid(kms.encrypt(KeyId=key_id, Plaintext=b"x")) for _ in range(2)]
    wait_central(nodes[0], requests)
    out = tmp_path / "trail.jsonl"
    result = trentd("audit", "export", *store_args(nodes[-1]), "--since", "10m", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_bytes().splitlines()
    assert json.loads(result.stdout) == {"Events": len(lines), "Out": str(out)}
    assert os.stat(out).st_mode & 0o777 == 0o600
    events = [json.loads(line) for line in lines]
    mine = [e for e in events if e["requestID"] in requests]
    assert [e["eventName"] for e in mine] == ["Encrypt", "Encrypt"]
    assert all("trentdChain" not in e and e["eventVersion"] == "1.08" for e in events)
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    empty = trentd("audit", "export", *store_args(nodes[-1]), "--since", "2000-01-01T00:00:00Z", "--until",
                   "2000-01-02T00:00:00Z", "--out", str(out))
    assert empty.returncode == 0 and json.loads(empty.stdout)["Events"] == 0 and out.read_bytes() == b""


def test_reset_empties_the_central_trail(store_kind):
    with TrentdServer(store=store_kind) as server:
        kms = client(server, new_account())
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        before = [rid(kms.encrypt(KeyId=key_id, Plaintext=b"x"))]
        chain = wait_central(server, before)[before[0]][0][0]
        request = urllib.request.Request(server.url + "/_trentd/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=15) as resp:
            assert resp.status == 200
        assert query(server, "SELECT count(*) FROM audit_trail") == [(0,)]
        assert query(server, "SELECT count(*) FROM audit_trail_visibility") == [(0,)]
        assert query(server, "SELECT chain FROM audit_trail_checkpoints") == [(chain,)]
        after = [rid(kms.list_keys())]
        found = wait_central(server, after)
        assert before[0] not in found
        assert verify(server)[0] == 0


WRITE_CHAIN = """
import sys
from trentd.audit.sink import AuditSink
sink = AuditSink(sys.argv[1])
for n in range(3):
    sink.submit({"eventName": "Orphan", "requestID": f"orphan-{sys.argv[2]}-{n}", "eventTime": "2026-01-01T00:00:00Z",
                 "awsRegion": "us-east-1", "eventSource": "kms.amazonaws.com", "eventID": f"e{n}",
                 "recipientAccountId": "111122223333"}).result()
sink.close()
print(sink.chain_name)
"""


def test_the_chain_of_a_process_that_is_gone_is_copied_when_a_server_starts(store_kind):
    with TrentdServer(store=store_kind) as server:
        tag = new_account()
        written = subprocess.run([sys.executable, "-c", WRITE_CHAIN, str(server.data_dir / "audit"), tag],
                                 capture_output=True, text=True, timeout=60, check=True)
        orphan_chain = written.stdout.strip()
        server.restart()
        orphans = [f"orphan-{tag}-{n}" for n in range(3)]
        found = wait_central(server, orphans)
        assert [found[r][0][:2] for r in orphans] == [(orphan_chain, n) for n in range(3)]
        code, report = verify(server)
        assert code == 0 and orphan_chain in {c["chain"] for c in report["chains"]}, report


def test_a_stopped_postgresql_server_loses_no_central_event():
    """PostgreSQL itself stopped (a cluster of the test's own; SQLite has no server to stop, the
    blocked copy above covers it): requests are answered, or refused with a retryable 5xx once the
    caches stop trusting themselves (docs/scale-out.md); every event of the outage, answered or
    not, reaches the central trail once the database is back, exactly once and in chain order."""
    require_cluster_tools()
    with ThrowawayCluster() as cluster:
        database = ThrowawayDatabase(cluster.dsn)
        server = TrentdServer(database=database.dsn)
        try:
            server.start()
            kms = client(server, new_account())
            key_id = kms.create_key()["KeyMetadata"]["KeyId"]
            requests = [rid(kms.encrypt(KeyId=key_id, Plaintext=b"before"))]
            wait_central(server, requests)
            cluster.stop()
            try:
                outcomes = []
                for _ in range(10):
                    try:
                        requests.append(rid(kms.encrypt(KeyId=key_id, Plaintext=b"during")))
                        outcomes.append("ok")
                    except ClientError as exc:
                        assert code_of(exc)[1] in (500, 503), exc.response
                        requests.append(rid(exc))
                        outcomes.append(code_of(exc)[0])
                    time.sleep(0.1)
                assert set(outcomes) <= {"ok", "DependencyTimeoutException", "KMSInternalException"}, outcomes
            finally:
                cluster.start()
            found = wait_central(server, requests)  # each exactly once
            chain = found[requests[0]][0][0]
            seqs = [seq for seq, in query(server, "SELECT seq FROM audit_trail WHERE chain = ? ORDER BY seq", (chain,))]
            assert seqs == list(range(len(seqs)))  # no gap (botocore's retries are requests too)
            assert verify(server)[0] == 0
            assert "Traceback" not in server.logs()
        finally:
            server.cleanup()
            database.drop()
