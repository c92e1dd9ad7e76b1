"""Fixtures for end-to-end tests: real trentd processes, boto3 clients that talk HTTP to them.

- ``store_kind`` (tests/conftest.py): ``sqlite`` or ``postgres``. The servers below are
  parametrized over it; a PostgreSQL server gets a throwaway database of its own.
- ``trentd_server``: one --dev server per store for the session (overrides the plugin's).
- ``secure_server``: one server per store in normal mode (signatures checked, admin credentials
  from the data dir), with the test clock enabled.
- ``authz_server``: a non-dev server per store and test module, for tests/e2e/authz_world.py's
  principals.
- ``kms``: a boto3 client for the dev server in a fresh random account, so tests never see
  each other's keys; ``raw_kms`` is the same without botocore's client-side validation, for
  testing the server's own validation.

Helper functions (``fails``, ``error_of``, ``server_now``, ``user_aliases``…): tests/helpers.py.
"""

from __future__ import annotations

import pytest

from trentd.testing.server import TrentdServer

from ..helpers import new_account
from .authz_world import ACCT_A


@pytest.fixture(scope="session")
def trentd_server(store_kind):
    with TrentdServer(store=store_kind) as server:
        yield server


@pytest.fixture(scope="session")
def secure_server(store_kind):
    with TrentdServer(dev=False, store=store_kind) as server:
        yield server


@pytest.fixture(scope="module")
def authz_server(store_kind):
    """A non-dev server per store for one test module, its administrator in account A
    (principals: tests/e2e/authz_world.py)."""
    with TrentdServer(dev=False, store=store_kind, account=ACCT_A) as server:
        yield server


@pytest.fixture
def account() -> str:
    return new_account()


@pytest.fixture
def kms(trentd_server, account):
    return trentd_server.client(access_key=account, secret_key="unused-in-dev-mode")


@pytest.fixture
def raw_kms(trentd_server, account):
    return trentd_server.client(access_key=account, secret_key="unused-in-dev-mode", parameter_validation=False)


@pytest.fixture
def key_id(kms) -> str:
    return kms.create_key(Description="test key")["KeyMetadata"]["KeyId"]


@pytest.fixture(scope="module")
def clock_server(store_kind):
    """A server of its own per test module and store, whose service clock tests may move."""
    with TrentdServer(store=store_kind) as server:
        yield server


@pytest.fixture
def clock_kms(clock_server, account):
    return clock_server.client(access_key=account, secret_key="unused-in-dev-mode")

