"""pytest plugin (installed with the package): fixtures that run a real trentd.

``trentd_server`` is one --dev server for the session, ``kms_endpoint`` its URL, ``kms_client`` a
boto3 KMS client of a fresh account for each test (so tests never see each other's keys) and
``kms_account`` that account's id. ``pytest --trentd-shared-account`` keeps the server's single
account for every test, for suites that expect one. Example::

    def test_round_trip(kms_client):
        key_id = kms_client.create_key()["KeyMetadata"]["KeyId"]
        blob = kms_client.encrypt(KeyId=key_id, Plaintext=b"hi")["CiphertextBlob"]
        assert kms_client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hi"
"""

from __future__ import annotations

import secrets

import pytest

from .server import TrentdServer

__all__ = ["TrentdServer"]

SHARED_ACCOUNT_OPTION = "--trentd-shared-account"
DEV_SECRET = "trentd-dev"  # --dev checks no signature: any secret will do


def pytest_addoption(parser):
    group = parser.getgroup("trentd")
    group.addoption(SHARED_ACCOUNT_OPTION, action="store_true", default=False,
                    help="give every test the trentd server's one account instead of a fresh account per test")


@pytest.fixture(scope="session")
def trentd_server():
    """One trentd in --dev mode for the whole test session."""
    with TrentdServer() as server:
        yield server


@pytest.fixture(scope="session")
def kms_endpoint(trentd_server) -> str:
    return trentd_server.url


@pytest.fixture(scope="session")
def _trentd_accounts_used() -> set[str]:
    return set()


@pytest.fixture
def kms_account(request, trentd_server, _trentd_accounts_used) -> str:
    """The account of this test's ``kms_client``: a fresh one per test (in --dev a 12-digit access
    key id selects the account), or the server's own with --trentd-shared-account or when the
    server checks signatures (its credentials belong to one account)."""
    if request.config.getoption(SHARED_ACCOUNT_OPTION) or not trentd_server.dev:
        return trentd_server.account
    while True:
        account = f"{secrets.randbelow(10**12):012d}"
        if account != trentd_server.account and account not in _trentd_accounts_used:
            _trentd_accounts_used.add(account)
            return account


@pytest.fixture
def kms_client(trentd_server, kms_account):
    if not trentd_server.dev:
        return trentd_server.client()  # the administrator's credentials, from the data dir
    return trentd_server.client(access_key=kms_account, secret_key=DEV_SECRET)
