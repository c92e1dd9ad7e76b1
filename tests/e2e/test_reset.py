"""``POST /_trentd/reset`` and moto_server's ``POST /moto-api/reset``, in ``--dev`` only: the store's
KMS state (keys and their material, aliases, grants, tags, rotation and last-use rows,
multi-Region records, custom key stores and their XKS keys, the clock offset) is emptied for
every account, principals and access keys stay, and every worker's caches forget the old keys
within a second. Without ``--dev`` both paths do not exist (404) and nothing is deleted.

The reset server runs ``--workers 2``; which worker answered a request is read from the audit
files, one per process, so the tests show that both workers had the keys cached before the reset
and both answer NotFoundException after it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer

from ..helpers import new_account, user_aliases
from .test_scale_out import assert_clean_logs, client
from .test_xks import connected_store, xks_key
from .xks_proxy_client import TrentdXksProxy

RESET_PATHS = ("/_trentd/reset", "/moto-api/reset")
CONNECTIONS = 6  # new clients (connections) per round of calls
WITHIN = 1.0  # DESIGN.md, Consistency: every worker forgets within a second
# What a reset empties, and what it must keep (the test credentials and the root key's canary).
KMS_TABLES = ("keys", "key_materials", "aliases", "tags", "grants", "key_rotation", "material_versions",
              "key_last_usage", "multi_region_keys", "custom_key_stores", "xks_keys", "key_counts")
KEPT_TABLES = ("principals", "access_keys", "identity_policies")


@pytest.fixture(scope="module")
def xks_proxy(tmp_path_factory):
    """An external key store proxy (a real one: trentd's XKS listener), so that a reset has custom
    key stores and XKS keys to delete."""
    with TrentdXksProxy(tmp_path_factory.mktemp("xks-proxy")) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def workers_server(store_kind, xks_proxy):
    args = ("--xks-resolve", xks_proxy.resolve_arg, "--xks-ca-bundle", str(xks_proxy.ca.path))
    with TrentdServer(store=store_kind, workers=2, extra_args=args) as server:
        yield server


def post(server: TrentdServer, path: str, method: str = "POST") -> tuple[int, dict]:
    """(HTTP status, JSON body) of a bodiless request on a connection of its own."""
    request = urllib.request.Request(server.url + path, data=b"" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def count_rows(server: TrentdServer, table: str, where: str = "") -> int:
    """Rows of a table, read from the store itself (what every worker shares)."""
    sql = f"SELECT count(*) FROM {table} {where}"
    if server.database:
        import psycopg

        with psycopg.connect(server.database, autocommit=True) as conn:
            return conn.execute(sql).fetchone()[0]
    conn = sqlite3.connect(server.data_dir / "trentd.db")
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def populate(kms, account: str) -> str:
    """A key with a tag, an alias, a grant and rotation on; a multi-Region key beside it."""
    tags = [{"TagKey": "team", "TagValue": "blue"}]
    key_id = kms.create_key(Description="before reset", Tags=tags)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/before-reset", TargetKeyId=key_id)
    kms.create_grant(KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{account}:root", Operations=["Encrypt"])
    kms.enable_key_rotation(KeyId=key_id)
    kms.create_key(Description="multi-Region", MultiRegion=True)
    return key_id


def calls(kmses: list, call) -> list[tuple[str, str]]:
    """(outcome, request id) of ``call`` through every client at once: "ok" or the error code."""
    def one(kms):
        try:
            return "ok", call(kms)["ResponseMetadata"]["RequestId"]
        except ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["RequestId"]

    with ThreadPoolExecutor(len(kmses)) as pool:
        return list(pool.map(one, kmses))


def processes(server: TrentdServer, request_ids: set[str]) -> set[str]:
    """The worker processes that answered these requests: each writes an audit file of its own
    (``<host>_<start>_<pid>_<rand>.<part>.jsonl``), and a request's event is on disk before its
    answer leaves."""
    found = set()
    for path in (server.data_dir / "audit").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip() and json.loads(line)["requestID"] in request_ids:
                found.add(path.name.rsplit(".", 2)[0])
    return found


def on_both_workers(server: TrentdServer, account: str, call, expected: str) -> None:
    """Call through new clients (new connections) until both workers have answered; every answer
    is ``expected``."""
    answered: set[str] = set()
    for _ in range(10):
        outcomes = calls([client(server, account) for _ in range(CONNECTIONS)], call)
        assert {o for o, _ in outcomes} == {expected}, outcomes
        answered |= {request_id for _, request_id in outcomes}
        if len(processes(server, answered)) == 2:
            return
    pytest.fail(f"one worker answered every call: {processes(server, answered)}")


@pytest.mark.parametrize("path", RESET_PATHS)
def test_reset_empties_every_account_and_every_worker_forgets(workers_server, xks_proxy, path):
    server = workers_server
    kept = {table: count_rows(server, table) for table in KEPT_TABLES}
    canary = count_rows(server, "meta", "WHERE name = 'root_key_canary'")
    accounts = [new_account(), new_account()]
    kmses = {account: client(server, account) for account in accounts}
    keys = {account: populate(kmses[account], account) for account in accounts}
    xks_key(kmses[accounts[0]], xks_proxy, connected_store(kmses[accounts[0]], xks_proxy))
    assert server.move_clock(advance_seconds=3600)["offset_seconds"] == 3600
    for account in accounts:  # both workers cache each key and its material
        on_both_workers(server, account, lambda kms: kms.encrypt(KeyId=keys[account], Plaintext=b"x"), "ok")
    assert count_rows(server, "grants") >= 2 and count_rows(server, "tags") >= 2
    assert count_rows(server, "custom_key_stores") == count_rows(server, "xks_keys") == 1
    keys_before = count_rows(server, "keys")
    assert keys_before >= 5

    assert post(server, path) == (200, {"status": "ok", "deleted_keys": keys_before})
    reset_at = time.monotonic()

    # The store is empty at once, for every account; the credentials and the canary stay.
    assert {table: count_rows(server, table) for table in KMS_TABLES} == dict.fromkeys(KMS_TABLES, 0)
    assert {table: count_rows(server, table) for table in KEPT_TABLES} == kept
    assert count_rows(server, "meta", "WHERE name = 'root_key_canary'") == canary == 1
    for account in accounts:
        kms = kmses[account]
        assert kms.list_keys()["Keys"] == [] and user_aliases(kms) == []
        assert kms.describe_custom_key_stores()["CustomKeyStores"] == []

    # Within a second every worker has forgotten the keys it had cached, and the clock is back.
    time.sleep(max(0.0, WITHIN - (time.monotonic() - reset_at)))
    for account in accounts:
        key_id = keys[account]
        arn = f"arn:aws:kms:us-east-1:{account}:key/{key_id}"
        on_both_workers(server, account, lambda kms: kms.encrypt(KeyId=key_id, Plaintext=b"x"),
                        "NotFoundException")
        on_both_workers(server, account, lambda kms: kms.describe_key(KeyId=key_id), "NotFoundException")
        with pytest.raises(ClientError) as excinfo:
            kmses[account].encrypt(KeyId=key_id, Plaintext=b"x")
        assert excinfo.value.response["Error"]["Message"] == f"Key '{arn}' does not exist"
    for _ in range(2 * CONNECTIONS):  # each on a new connection: both workers answer some
        status, clock = post(server, "/_trentd/clock", method="GET")
        assert status == 200 and clock["offset_seconds"] == 0
        assert abs(clock["now"] - time.time()) < 60

    # The accounts work as before: a new key is the only one listed.
    for account in accounts:
        kms = kmses[account]
        new_key = kms.create_key()["KeyMetadata"]["KeyId"]
        assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [new_key]
        assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=new_key, Plaintext=b"after")["CiphertextBlob"])[
            "Plaintext"] == b"after"
    assert_clean_logs(server)  # no worker's background job or request tripped over the vanished rows


def test_reset_answers_only_post(workers_server):
    account = new_account()
    kms = client(workers_server, account)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for path in RESET_PATHS:
        assert post(workers_server, path, method="GET") == (405, {"message": "Method Not Allowed"})
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.parametrize("path", RESET_PATHS)
def test_reset_does_not_exist_without_dev(secure_server, path):
    kms = secure_server.client()
    key_id = kms.create_key(Description="must survive")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/survives-{key_id}", TargetKeyId=key_id)
    assert post(secure_server, path) == (404, {"message": "Not Found"})
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "must survive"
    assert key_id in [k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]]
    assert f"alias/survives-{key_id}" in [a["AliasName"] for a in kms.list_aliases(KeyId=key_id)["Aliases"]]
