"""Credentials held in memory (auth/credential_cache.py) follow the store's change feed: a deleted
access key or principal is forgotten at once by the process that deleted it and at the next poll
by every other. Two SQLite store objects over one file stand in for two processes."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from trentd.auth import principals
from trentd.auth.authenticator import Authenticator
from trentd.auth.sigv4 import Credential
from trentd.store.rootkey import FileRootKey
from trentd.store.sqlite import SQLiteStore

ACCOUNT = "111122223333"


@pytest.fixture
def world(tmp_path):
    stores = [SQLiteStore(tmp_path / "trentd.db"), SQLiteStore(tmp_path / "trentd.db")]
    stores[0].migrate()
    root_key = FileRootKey(os.urandom(32))
    with stores[0].write() as tx:
        arn = principals.create_principal(tx, ACCOUNT, "dave").arn
        access_key_id, secret = principals.create_access_key(tx, root_key, arn)
    for store in stores:
        store.changes.poll()
    yield stores, root_key, arn, access_key_id, secret
    for store in stores:
        store.close()


def test_a_principal_deleted_here_is_forgotten_at_once(world):
    (store, _), root_key, arn, access_key_id, secret = world
    auth = Authenticator(store, root_key, dev=False, default_account=ACCOUNT)
    assert auth.lookup(access_key_id)[:2] == (arn, secret)
    with store.read() as tx:  # the principal's stored unique id rides with its credentials
        assert auth.lookup(access_key_id)[2] == tx.principal_unique_id(arn) and tx.principal_unique_id(arn)
    assert not auth.needs_lookup(_cred(access_key_id))  # served from memory
    with store.write() as tx:
        tx.delete_principal(arn)
    assert auth.needs_lookup(_cred(access_key_id))
    assert auth.lookup(access_key_id) is None


def test_a_principal_deleted_elsewhere_is_forgotten_at_the_next_poll(world):
    (mine, theirs), root_key, arn, access_key_id, secret = world
    auth = Authenticator(mine, root_key, dev=False, default_account=ACCOUNT)
    assert auth.lookup(access_key_id)[:2] == (arn, secret)
    with theirs.write() as tx:
        tx.delete_principal(arn)
    assert auth.lookup(access_key_id)[:2] == (arn, secret)  # not polled yet: the feed's window
    mine.changes.poll()
    assert auth.lookup(access_key_id) is None


def test_nothing_is_served_while_the_feed_is_untrusted(world):
    (store, _), root_key, arn, access_key_id, _secret = world
    store.changes.stop()  # no poller: the feed is not trusted
    auth = Authenticator(store, root_key, dev=False, default_account=ACCOUNT)
    auth.lookup(access_key_id)
    assert auth.needs_lookup(_cred(access_key_id))


def _cred(access_key_id: str) -> Credential:
    """A parsed Authorization header with a long-term key (only its access key id is looked at)."""
    return Credential(access_key_id=access_key_id, date="20260627", region="us-east-1", service="kms",
                      signed_headers=("host",), signature="0" * 64,
                      amz_date=datetime(2026, 6, 27, tzinfo=timezone.utc), security_token=None,
                      timestamp="20260627T000000Z")
