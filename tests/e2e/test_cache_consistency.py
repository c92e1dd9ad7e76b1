"""The hot-path caches obey DESIGN.md's Consistency rule across processes and nodes: a change
made through one worker (``--workers 2`` on SQLite) or node (two nodes over one PostgreSQL)
reaches every other one within one second, even when they had the old state cached.

Each check warms the caches of every worker through several connections, makes the change,
then keeps calling through several connections: calls *sent* more than a second after the
change must all see it (a behavioural deadline, not a performance figure).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from ..helpers import new_account
from .test_scale_out import client, make_cluster

CONNECTIONS = 4
WITHIN = 1.0


@pytest.fixture(scope="module", params=["workers-sqlite", "two-nodes-postgres"])
def cluster(request):
    cluster = make_cluster(request.param)
    yield cluster
    cluster.cleanup()


def clients(cluster, account: str) -> list:
    """Several clients per node: their connections land on every worker."""
    return [client(node, account) for node in cluster.nodes for _ in range(CONNECTIONS)]


def outcome(call) -> str:
    try:
        result = call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return result if isinstance(result, str) else "ok"


def on_all(kmses: list, call) -> list:
    with ThreadPoolExecutor(len(kmses)) as pool:
        return list(pool.map(lambda kms: outcome(lambda: call(kms)), kmses))


def assert_seen_everywhere_within_a_second(kmses: list, call, expected: str) -> None:
    """After the change: every call sent later than WITHIN seconds sees ``expected``."""
    changed = time.monotonic()
    late = []
    while time.monotonic() - changed < WITHIN + 0.5:
        sent = time.monotonic() - changed
        outcomes = on_all(kmses, call)
        if sent > WITHIN:
            late += outcomes
        time.sleep(0.02)
    assert late and all(o == expected for o in late), (expected, late)


def warm(kmses: list, call) -> None:
    """Call through every connection a few times, so every worker has the key cached."""
    for _ in range(5):
        assert set(on_all(kmses, call)) == {"ok"}


def test_disable_key_reaches_every_worker_and_node(cluster):
    account = new_account()
    kmses = clients(cluster, account)
    key_id = kmses[0].create_key()["KeyMetadata"]["KeyId"]
    encrypt = lambda kms: kms.encrypt(KeyId=key_id, Plaintext=b"x")  # noqa: E731
    warm(kmses, encrypt)
    kmses[0].disable_key(KeyId=key_id)
    assert outcome(lambda: encrypt(kmses[0])) == "DisabledException"  # read-after-write where it was made
    assert_seen_everywhere_within_a_second(kmses, encrypt, "DisabledException")
    kmses[-1].enable_key(KeyId=key_id)
    assert_seen_everywhere_within_a_second(kmses, encrypt, "ok")


def test_alias_retarget_reaches_every_worker_and_node(cluster):
    account = new_account()
    kmses = clients(cluster, account)
    first, second = (kmses[0].create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    kmses[0].create_alias(AliasName="alias/moving", TargetKeyId=first)
    target = lambda kms: kms.encrypt(KeyId="alias/moving", Plaintext=b"x")["KeyId"].rsplit("/", 1)[1]  # noqa: E731
    assert set(on_all(kmses, target)) == {first}
    kmses[-1].update_alias(AliasName="alias/moving", TargetKeyId=second)
    assert_seen_everywhere_within_a_second(kmses, target, second)


def test_key_policy_change_reaches_every_worker_and_node(cluster):
    account = new_account()
    kmses = clients(cluster, account)
    key_id = kmses[0].create_key()["KeyMetadata"]["KeyId"]
    decrypt_blob = kmses[0].encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    decrypt = lambda kms: kms.decrypt(CiphertextBlob=decrypt_blob)  # noqa: E731
    warm(kmses, decrypt)
    policy = json.loads(kmses[0].get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"].append({"Sid": "NoDecrypt", "Effect": "Deny", "Principal": {"AWS": "*"},
                                "Action": "kms:Decrypt", "Resource": "*"})
    kmses[0].put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert_seen_everywhere_within_a_second(kmses, decrypt, "AccessDeniedException")


def test_a_new_key_is_usable_on_every_worker_and_node_at_once(cluster):
    account = new_account()
    kmses = clients(cluster, account)
    warm(kmses, lambda kms: kms.generate_random(NumberOfBytes=8))
    key_id = kmses[0].create_key()["KeyMetadata"]["KeyId"]
    # Misses are never cached: no waiting for a poll.
    assert set(on_all(kmses, lambda kms: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"))) == {"ok"}


def test_a_grant_token_works_on_every_worker_and_node_at_once(cluster):
    """Grant tokens carry a MAC under one per-deployment key (kept in the store), so a token made
    through any worker or node is accepted by all, and a changed one by none."""
    account = new_account()
    kmses = clients(cluster, account)
    key_id = kmses[0].create_key()["KeyMetadata"]["KeyId"]
    token = kmses[-1].create_grant(KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{account}:root",
                                   Operations=["Encrypt"])["GrantToken"]
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    encrypt = lambda kms, tokens: kms.encrypt(KeyId=key_id, Plaintext=b"x", GrantTokens=tokens)  # noqa: E731
    assert set(on_all(kmses, lambda kms: encrypt(kms, [token]))) == {"ok"}
    assert set(on_all(kmses, lambda kms: encrypt(kms, [forged]))) == {"InvalidGrantTokenException"}


def test_an_enable_made_elsewhere_is_seen_at_once_through_one_retry(cluster):
    """Every worker has the key cached as Disabled; an EnableKey through another worker or node
    is seen by the very next call everywhere: the Disabled answer from cached state is retried
    once with fresh reads before it is given (kms/api.py run)."""
    account = new_account()
    kmses = clients(cluster, account)
    key_id = kmses[0].create_key()["KeyMetadata"]["KeyId"]
    kmses[0].disable_key(KeyId=key_id)
    time.sleep(WITHIN + 0.5)  # every process has dropped its Enabled copy
    encrypt = lambda kms: kms.encrypt(KeyId=key_id, Plaintext=b"x")  # noqa: E731
    for _ in range(3):  # the Disabled state is now what every worker has cached
        assert set(on_all(kmses, encrypt)) == {"DisabledException"}
    kmses[-1].enable_key(KeyId=key_id)
    assert set(on_all(kmses, encrypt)) == {"ok"}
