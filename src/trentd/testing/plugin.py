"""pytest plugin (installed with the package): fixtures that run a real trentd.

``trentd_server`` is one --dev server for the session, ``kms_endpoint`` its URL and
``kms_client`` a boto3 KMS client for it. Example::

    def test_round_trip(kms_client):
        key_id = kms_client.create_key()["KeyMetadata"]["KeyId"]
        blob = kms_client.encrypt(KeyId=key_id, Plaintext=b"hi")["CiphertextBlob"]
        assert kms_client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hi"
"""

from __future__ import annotations

import pytest

from .server import TrentdServer

__all__ = ["TrentdServer"]


@pytest.fixture(scope="session")
def trentd_server():
    """One trentd in --dev mode for the whole test session."""
    with TrentdServer() as server:
        yield server


@pytest.fixture(scope="session")
def kms_endpoint(trentd_server) -> str:
    return trentd_server.url


@pytest.fixture
def kms_client(trentd_server):
    return trentd_server.client()
