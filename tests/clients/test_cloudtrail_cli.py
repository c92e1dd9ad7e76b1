"""AWS CLI v1's ``aws cloudtrail lookup-events`` against trentd, unchanged: pointed at it with
``--endpoint-url`` and with ``AWS_ENDPOINT_URL_CLOUDTRAIL``, its own pagination included."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from .conftest import VENV_BIN, boto3_client, client_env, require


@pytest.fixture(scope="module")
def aws(server, home):
    cli = require(VENV_BIN / "aws" if (VENV_BIN / "aws").exists() else shutil.which("aws"), "the AWS CLI v1 (awscli)")
    env = client_env(server, home, endpoint_env=False)

    def run(*args: str, extra_env: dict | None = None) -> dict:
        result = subprocess.run([cli, *args], env={**env, **(extra_env or {})}, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
        return json.loads(result.stdout)

    return run


@pytest.fixture(scope="module")
def encrypted(server) -> str:
    """The request id of an Encrypt, once it is in the central trail."""
    kms, cloudtrail = boto3_client(server), boto3_client(server, "cloudtrail")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    rid = kms.encrypt(KeyId=key, Plaintext=b"cli")["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 10
    while not any(json.loads(e["CloudTrailEvent"])["requestID"] == rid for e in cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}])["Events"]):
        assert time.monotonic() < deadline, "the Encrypt never reached the central trail"
        time.sleep(0.05)
    return rid


def _request_ids(answer: dict) -> list[str]:
    return [json.loads(e["CloudTrailEvent"])["requestID"] for e in answer["Events"]]


def test_lookup_events_by_event_name(aws, server, encrypted):
    answer = aws("--endpoint-url", server.url, "cloudtrail", "lookup-events",
                 "--lookup-attributes", "AttributeKey=EventName,AttributeValue=Encrypt")
    assert encrypted in _request_ids(answer)
    assert {e["EventName"] for e in answer["Events"]} == {"Encrypt"}
    assert {e["EventSource"] for e in answer["Events"]} == {"kms.amazonaws.com"}


def test_the_endpoint_from_the_environment_and_the_cli_paginating(aws, server, encrypted):
    # --page-size 1: the CLI follows NextToken itself, one event a page, until --max-items.
    answer = aws("cloudtrail", "lookup-events", "--page-size", "1", "--max-items", "3",
                 extra_env={"AWS_ENDPOINT_URL_CLOUDTRAIL": server.url})
    ids = [e["EventId"] for e in answer["Events"]]
    assert len(ids) == 3 == len(set(ids)) and answer["NextToken"]
    later = aws("cloudtrail", "lookup-events", "--page-size", "1", "--max-items", "3",
                "--starting-token", answer["NextToken"], extra_env={"AWS_ENDPOINT_URL_CLOUDTRAIL": server.url})
    assert not set(ids) & {e["EventId"] for e in later["Events"]}
