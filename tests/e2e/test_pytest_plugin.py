"""The pytest plugin that comes with the package (``trentd.testing.plugin``, entry point ``trentd``),
run as a user's suite runs it: ``pytester`` writes a tiny test file and runs pytest on it in a
subprocess, where the plugin is loaded from the package's entry point and starts a real trentd.

- ``kms_client`` is a client of a fresh account per test, so tests never see each other's keys;
  ``kms_account`` is that account's id.
- ``--trentd-shared-account`` keeps the single account (the server's) for every test.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

pytest_plugins = ["pytester"]

# Two tests that each make a key and list the keys they see; what each saw goes to seen.jsonl.
USER_SUITE = '''
import json

def record(kms_client, kms_account, kms_endpoint):
    key = kms_client.create_key()["KeyMetadata"]
    listed = sorted(k["KeyId"] for k in kms_client.list_keys()["Keys"])
    with open("seen.jsonl", "a") as out:
        out.write(json.dumps({"account": kms_account, "arn": key["Arn"], "key": key["KeyId"],
                              "listed": listed, "endpoint": kms_endpoint}) + "\\n")

def test_first(kms_client, kms_account, kms_endpoint):
    record(kms_client, kms_account, kms_endpoint)

def test_second(kms_client, kms_account, kms_endpoint):
    record(kms_client, kms_account, kms_endpoint)
'''


def run_user_suite(pytester, *args: str) -> list[dict]:
    pytester.makepyfile(test_user_suite=USER_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=300)
    result.assert_outcomes(passed=2)
    lines = (pytester.path / "seen.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_each_test_gets_a_fresh_account(pytester):
    first, second = run_user_suite(pytester)
    assert first["account"] != second["account"]
    for seen in (first, second):
        assert len(seen["account"]) == 12 and seen["account"].isdigit()
        assert seen["arn"] == f"arn:aws:kms:us-east-1:{seen['account']}:key/{seen['key']}"
        assert seen["listed"] == [seen["key"]]  # its own key only
    assert first["endpoint"] == second["endpoint"] and first["endpoint"].startswith("http://127.0.0.1:")


def test_shared_account_option_keeps_one_account(pytester):
    first, second = run_user_suite(pytester, "--trentd-shared-account")
    assert first["account"] == second["account"] == "000000000000"
    assert first["arn"] == f"arn:aws:kms:us-east-1:000000000000:key/{first['key']}"
    assert first["listed"] == [first["key"]]
    assert second["listed"] == sorted([first["key"], second["key"]])  # the first test's key too


def test_pytest_extra_brings_boto3_and_pytest():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["pytest"] == ["boto3>=1.44.8", "pytest>=8.0"]
    assert pyproject["project"]["entry-points"]["pytest11"] == {"trentd": "trentd.testing.plugin"}
