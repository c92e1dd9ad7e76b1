"""Scale-out: several nodes over one PostgreSQL, and several worker processes on one host.

- Two nodes (each its own port, same database and root key) behave as one service:
  read-after-write, and a state change takes effect on the other node within one second.
- Background deletion runs on every node and every worker, and deletes each key exactly once.
- 32 concurrent CreateAlias on one name across workers / nodes: exactly one success.
- A storm of Create/Update/DeleteAlias and ScheduleKeyDeletion never leaves an alias pointing at a
  missing key, and never answers 5xx.
- Several nodes starting at once over one empty database: one first start, one administrator.
- A node with another root key refuses to start; with --database the root key must be supplied.
"""

from __future__ import annotations

import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from trentd.testing.postgres import ThrowawayDatabase, require_postgres
from trentd.testing.server import TrentdServer, write_root_key

from ..helpers import code_of, new_account, user_aliases


def client(server: TrentdServer, account: str, **config):
    return server.client(access_key=account, secret_key="unused-in-dev-mode",
                         max_pool_connections=40, read_timeout=30, **config)


def start_all(servers: list[TrentdServer]) -> None:
    """Start servers at the same time (several first starts racing over one empty store)."""
    with ThreadPoolExecutor(len(servers)) as pool:
        for future in [pool.submit(s.start) for s in servers]:
            future.result()


def assert_clean_logs(*servers: TrentdServer) -> None:
    for server in servers:
        logs = server.logs()
        assert "Traceback" not in logs and " ERROR " not in logs, logs[-4000:]


class Cluster:
    """Nodes that make up one service: ``nodes`` (their endpoints) over one store."""

    def __init__(self, nodes: list[TrentdServer], database: ThrowawayDatabase | None = None):
        self.nodes = nodes
        self.database = database

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the store directly (what every node shares)."""
        if self.database is not None:
            import psycopg

            with psycopg.connect(self.database.dsn, autocommit=True) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        conn = sqlite3.connect(self.nodes[0].data_dir / "trentd.db")
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
        if self.database is not None:
            self.database.drop()


def make_cluster(layout: str) -> Cluster:
    """``two-nodes-postgres``: two nodes on their own ports over one database and root key;
    ``workers-sqlite`` / ``workers-postgres``: one node with ``--workers 2``."""
    if layout == "workers-sqlite":
        cluster = Cluster([TrentdServer(workers=2)])
    else:
        require_postgres()
        database = ThrowawayDatabase()
        if layout == "workers-postgres":
            cluster = Cluster([TrentdServer(workers=2, database=database.dsn)], database)
        else:
            first = TrentdServer(database=database.dsn)
            second = TrentdServer(database=database.dsn, root_key_file=first.root_key_file)
            cluster = Cluster([first, second], database)
    try:
        start_all(cluster.nodes)
    except BaseException:
        cluster.cleanup()
        raise
    return cluster


LAYOUTS = ("two-nodes-postgres", "workers-sqlite", "workers-postgres")


@pytest.fixture(scope="module")
def two_nodes():
    cluster = make_cluster("two-nodes-postgres")
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="module", params=LAYOUTS)
def cluster(request):
    if request.param == "two-nodes-postgres":
        yield request.getfixturevalue("two_nodes")
        return
    cluster = make_cluster(request.param)
    yield cluster
    cluster.cleanup()


# --- two nodes behave as one service -------------------------------------------------------

def test_two_nodes_read_after_write(two_nodes):
    account = new_account()
    a, b = (client(node, account) for node in two_nodes.nodes)
    key_id = a.create_key(Description="made on A")["KeyMetadata"]["KeyId"]
    # Usable on B at once: no polling.
    assert b.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "made on A"
    blob = b.encrypt(KeyId=key_id, Plaintext=b"from B")["CiphertextBlob"]
    assert a.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from B"
    a.create_alias(AliasName="alias/shared", TargetKeyId=key_id)
    assert b.describe_key(KeyId="alias/shared")["KeyMetadata"]["KeyId"] == key_id
    b.update_key_description(KeyId=key_id, Description="changed on B")
    assert a.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "changed on B"
    assert_clean_logs(*two_nodes.nodes)


def _first_error_within(call, seconds: float) -> tuple[str, float]:
    """Call until it fails: (error code, when the failing call was *sent*, in seconds from now).
    Measuring the send time keeps a slow answer on a loaded machine from counting as staleness."""
    start = time.monotonic()
    while True:
        sent = time.monotonic() - start
        try:
            call()
        except ClientError as exc:
            return exc.response["Error"]["Code"], sent
        if time.monotonic() - start > seconds:
            return "", time.monotonic() - start
        time.sleep(0.02)


def test_state_change_reaches_the_other_node_within_a_second(two_nodes):
    account = new_account()
    a, b = (client(node, account) for node in two_nodes.nodes)
    key_id = a.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(20):  # warm B's caches on the hot path
        b.encrypt(KeyId=key_id, Plaintext=b"warm")
    a.disable_key(KeyId=key_id)
    code, elapsed = _first_error_within(lambda: b.encrypt(KeyId=key_id, Plaintext=b"x"), 1.0)
    assert code == "DisabledException" and elapsed < 1.0, (code, elapsed)
    a.enable_key(KeyId=key_id)
    b.encrypt(KeyId=key_id, Plaintext=b"enabled again")
    b.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    code, elapsed = _first_error_within(lambda: a.generate_data_key(KeyId=key_id, KeySpec="AES_256"), 1.0)
    assert code == "KMSInvalidStateException" and elapsed < 1.0, (code, elapsed)


def test_nodes_started_together_make_one_first_start(two_nodes):
    admins = two_nodes.query("SELECT arn FROM principals WHERE arn LIKE ?", ("%:user/admin",))
    assert len(admins) == 1
    assert [n.data_dir.joinpath("admin-credentials").exists() for n in two_nodes.nodes].count(True) == 1
    assert two_nodes.query("SELECT version FROM schema_migrations ORDER BY version")[0] == (1,)


# --- background jobs run on every node, each job once ----------------------------------------

def test_background_deletion_runs_exactly_once(cluster):
    account = new_account()
    clients = [client(node, account) for node in cluster.nodes]
    key_ids = []
    for i in range(40):
        kms = clients[i % len(clients)]
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/doomed-{i}", TargetKeyId=key_id)
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        key_ids.append(key_id)
    survivor = clients[0].create_key()["KeyMetadata"]["KeyId"]
    offset = cluster.nodes[0].move_clock(advance_seconds=0)["offset_seconds"] + 8 * 86_400
    # Every node (and every worker) sweeps by itself each second; moving the clock on all nodes
    # at once also makes them sweep at the same moment.
    with ThreadPoolExecutor(len(cluster.nodes)) as pool:
        list(pool.map(lambda node: node.move_clock(offset_seconds=offset), cluster.nodes))
    marks = ",".join("?" * len(key_ids))
    deadline = time.monotonic() + 10
    while cluster.query(f"SELECT count(*) FROM keys WHERE key_id IN ({marks})", tuple(key_ids))[0][0]:
        assert time.monotonic() < deadline, "the sweep did not delete every key"
        time.sleep(0.1)
    assert cluster.query(f"SELECT count(*) FROM aliases WHERE key_id IN ({marks})", tuple(key_ids))[0][0] == 0
    time.sleep(1.2)  # one more sweep everywhere: nothing left to do, nothing deleted twice
    logs = "".join(node.logs() for node in cluster.nodes)
    for key_id in key_ids:
        assert len(re.findall(f"deleted key arn:aws:kms:us-east-1:{account}:key/{key_id}:", logs)) == 1, key_id
    for kms in clients:
        with pytest.raises(ClientError) as excinfo:
            kms.describe_key(KeyId=key_ids[0])
        assert code_of(excinfo.value) == ("NotFoundException", 400)
        assert kms.describe_key(KeyId=survivor)["KeyMetadata"]["KeyState"] == "Enabled"
    assert_clean_logs(*cluster.nodes)


# --- races ----------------------------------------------------------------------------------

def test_32_concurrent_create_alias_one_winner(cluster):
    account = new_account()
    clients = [client(node, account) for node in cluster.nodes]
    targets = [clients[0].create_key()["KeyMetadata"]["KeyId"] for _ in range(32)]
    barrier = threading.Barrier(32)
    outcomes: list = [None] * 32

    def attempt(i: int) -> None:
        kms = clients[i % len(clients)]
        barrier.wait()
        try:
            kms.create_alias(AliasName="alias/contested", TargetKeyId=targets[i])
            outcomes[i] = "ok"
        except ClientError as exc:
            outcomes[i] = code_of(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    assert outcomes.count(("AlreadyExistsException", 400)) == 31, outcomes
    winner = targets[outcomes.index("ok")]
    for kms in clients:
        assert kms.describe_key(KeyId="alias/contested")["KeyMetadata"]["KeyId"] == winner
    assert_clean_logs(*cluster.nodes)


def test_8_concurrent_first_uses_make_one_aws_managed_key(cluster):
    """The predefined alias decides: racing first uses of alias/aws/ebs on every worker or node
    create its AWS managed key once, and every caller gets that key."""
    account = new_account()
    clients = [client(node, account) for node in cluster.nodes]
    barrier = threading.Barrier(8)

    def first_use(i: int) -> str:
        kms = clients[i % len(clients)]
        barrier.wait()
        return kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyId"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(first_use, range(8)))
    assert len(set(answers)) == 1, answers
    for kms in clients:
        keys = [k["KeyId"] for k in kms.list_keys()["Keys"]]
        assert keys == answers[:1]
        assert kms.describe_key(KeyId=keys[0])["KeyMetadata"]["KeyManager"] == "AWS"
    assert cluster.query("SELECT key_id FROM keys WHERE account = ?", (account,)) == [(answers[0],)]
    assert cluster.query("SELECT name, key_id FROM aliases WHERE account = ?", (account,)) == [
        ("alias/aws/ebs", answers[0])]
    assert_clean_logs(*cluster.nodes)


def test_alias_and_deletion_storm_never_leaves_a_dangling_alias(cluster):
    account = new_account()
    clients = [client(node, account) for node in cluster.nodes]
    keys = [clients[0].create_key()["KeyMetadata"]["KeyId"] for _ in range(12)]
    names = [f"alias/storm-{i}" for i in range(6)]
    faults: list = []
    stop = time.monotonic() + 3.0

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        kms = clients[seed % len(clients)]
        while time.monotonic() < stop:
            op = rng.random()
            try:
                if op < 0.35:
                    kms.create_alias(AliasName=rng.choice(names), TargetKeyId=rng.choice(keys))
                elif op < 0.65:
                    kms.update_alias(AliasName=rng.choice(names), TargetKeyId=rng.choice(keys))
                elif op < 0.85:
                    kms.delete_alias(AliasName=rng.choice(names))
                elif op < 0.95:
                    kms.schedule_key_deletion(KeyId=rng.choice(keys), PendingWindowInDays=7)
                else:
                    kms.cancel_key_deletion(KeyId=rng.choice(keys))
            except ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] >= 500:
                    faults.append(code_of(exc))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert faults == []
    dangling_sql = ("SELECT a.name FROM aliases a LEFT JOIN keys k ON k.account = a.account "
                    "AND k.region = a.region AND k.key_id = a.key_id WHERE a.account = ? AND k.key_id IS NULL")
    assert cluster.query(dangling_sql, (account,)) == []
    # Let every pending deletion happen (on whichever node sweeps first), then look again.
    cluster.nodes[-1].move_clock(advance_seconds=8 * 86_400)
    deadline = time.monotonic() + 10
    while cluster.query("SELECT count(*) FROM keys WHERE account = ? AND deletion_date IS NOT NULL", (account,))[0][0]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert cluster.query(dangling_sql, (account,)) == []
    for alias in user_aliases(clients[0]):
        assert alias["TargetKeyId"] in keys
        for kms in clients:
            assert kms.describe_key(KeyId=alias["AliasName"])["KeyMetadata"]["KeyId"] == alias["TargetKeyId"]
    assert_clean_logs(*cluster.nodes)


# --- root key discipline over a shared database -----------------------------------------------

def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trentd", "serve", "--port", "1", *args],
                          capture_output=True, text=True, timeout=60)


def test_database_needs_a_supplied_root_key_and_the_right_one(two_nodes, tmp_path):
    dsn = two_nodes.nodes[0].database
    refused = _serve("--database", dsn, "--data-dir", str(tmp_path / "d1"))
    assert refused.returncode == 2
    assert "refusing to start" in refused.stderr and "--root-key-file" in refused.stderr
    assert not (tmp_path / "d1" / "root.key").exists()
    wrong = write_root_key(tmp_path / "other.key")
    refused = _serve("--database", dsn, "--data-dir", str(tmp_path / "d2"), "--root-key-file", str(wrong))
    assert refused.returncode == 2 and "refusing to start" in refused.stderr
    missing = _serve("--database", dsn, "--data-dir", str(tmp_path / "d3"), "--root-key-file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "root key file" in missing.stderr


def test_admin_commands_and_migrate_take_database(two_nodes, tmp_path):
    dsn, root_key = two_nodes.nodes[0].database, str(two_nodes.nodes[0].root_key_file)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "trentd", *args], capture_output=True, text=True, timeout=60, check=True).stdout
    assert '"Applied": []' in run("migrate", "--database", dsn)
    arn = f"arn:aws:iam::{new_account()}:user/ops"
    run("principals", "create", "--account", arn.split(":")[4], "--name", "ops", "--database", dsn,
        "--root-key-file", root_key, "--data-dir", str(tmp_path))
    assert arn in run("principals", "list", "--database", dsn, "--root-key-file", root_key, "--data-dir", str(tmp_path))
    assert two_nodes.query("SELECT arn FROM principals WHERE arn = ?", (arn,)) == [(arn,)]
