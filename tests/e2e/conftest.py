"""Fixtures for end-to-end tests: real trentd processes, boto3 clients that talk HTTP to them.

- ``store_kind`` (tests/conftest.py): ``sqlite`` or ``postgres``. The servers below are
  parametrized over it; a PostgreSQL server gets a throwaway database of its own.
- ``trentd_server``: one --dev server per store for the session (overrides the plugin's).
- ``secure_server``: one server per store in normal mode (signatures checked, admin credentials
  from the data dir), with the test clock enabled.
- ``kms``: a boto3 client for the dev server in a fresh random account, so tests never see
  each other's keys; ``raw_kms`` is the same without botocore's client-side validation, for
  testing the server's own validation.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer

@pytest.fixture(scope="session")
def trentd_server(store_kind):
    with TrentdServer(store=store_kind) as server:
        yield server


@pytest.fixture(scope="session")
def secure_server(store_kind):
    with TrentdServer(dev=False, store=store_kind) as server:
        yield server


@pytest.fixture
def account() -> str:
    return "".join(random.choice("0123456789") for _ in range(12))


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


def server_now(server) -> float:
    """The service clock; moving it by zero also runs the background jobs once."""
    return server.move_clock(advance_seconds=0)["now"]


def user_aliases(kms, **kwargs) -> list[dict]:
    """ListAliases without the predefined ``alias/aws/*`` entries that every account lists (AWS
    managed keys, tests/e2e/test_managed_keys.py): what tests about the caller's own aliases check."""
    return [a for a in kms.list_aliases(**kwargs)["Aliases"] if not a["AliasName"].startswith("alias/aws/")]


def error_of(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    """(error code, message) of a botocore ClientError."""
    err = excinfo.value
    assert isinstance(err, ClientError), err
    return err.response["Error"]["Code"], err.response["Error"].get("Message", "")


def break_audit_dir(server: TrentdServer) -> Path:
    """Make the audit log unwritable. Root ignores permissions, so: move the audit directory away
    (the server notices its file is gone before the next batch) and put a plain file where the
    directory must be re-created. Unlinking that file makes the log writable again."""
    audit = server.data_dir / "audit"
    moved = server.data_dir / "audit.moved"
    audit.rename(moved)
    audit.write_text("not a directory")
    return moved
