"""Fixtures for end-to-end tests: real trentd processes, boto3 clients that talk HTTP to them.

- ``trentd_server`` (from the trentd pytest plugin): one --dev server for the session.
- ``secure_server``: one server in normal mode (signatures checked, admin credentials from
  the data dir), with the test clock enabled.
- ``kms``: a boto3 client for the dev server in a fresh random account, so tests never see
  each other's keys; ``raw_kms`` is the same without botocore's client-side validation, for
  testing the server's own validation.
"""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer


@pytest.fixture(scope="session")
def secure_server():
    with TrentdServer(dev=False) as server:
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


def error_of(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    """(error code, message) of a botocore ClientError."""
    err = excinfo.value
    assert isinstance(err, ClientError), err
    return err.response["Error"]["Code"], err.response["Error"].get("Message", "")
