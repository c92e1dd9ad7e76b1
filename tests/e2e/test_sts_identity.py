"""STS GetCallerIdentity on the KMS endpoint (issue #4): who a set of credentials is, through
boto3 and the AWS CLI v1, for the administrator and principals made with the admin CLI; and
STS's own error shapes (XML, HTTP 403 for credential failures; traps.md "STS on the wire").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ..helpers import error_of
from .authz_world import ACCT_A, ACCT_B, REGION, XDENY_I, World, access_denied, policy

NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
UNRECOGNIZED = "The security token included in the request is invalid."
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")
FORM = "application/x-www-form-urlencoded; charset=utf-8"
USER_ID = re.compile(r"AIDA[0-9A-Z]{17}")


@pytest.fixture(scope="module")
def world(authz_server) -> World:
    world = World(authz_server)
    world.make_users([
        (ACCT_A, "alice", None),
        (ACCT_A, "nobody", policy({"Effect": "Deny", "Action": "*", "Resource": "*"})),
        (ACCT_B, "bob", None),
        (ACCT_B, "leaver", None),
    ])
    return world


def sts_post(server, access_key: str, secret: str, body: bytes, token: str | None = None) -> tuple[int, dict, bytes]:
    """A Query-protocol request signed by botocore as the SDKs sign it (service ``sts``)."""
    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers={"Content-Type": FORM})
    SigV4Auth(Credentials(access_key, secret, token), "sts", REGION).add_auth(request)
    http = urllib.request.Request(server.url + "/", data=body, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def xml_error(body: bytes) -> dict:
    root = ET.fromstring(body)
    assert root.tag == f"{NS}ErrorResponse"
    error = root.find(f"{NS}Error")
    return {"Type": error.findtext(f"{NS}Type"), "Code": error.findtext(f"{NS}Code"),
            "Message": error.findtext(f"{NS}Message"), "RequestId": root.findtext(f"{NS}RequestId")}


# --- boto3 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("who, account", [("admin", ACCT_A), ("alice", ACCT_A), ("bob", ACCT_B)])
def test_boto3_get_caller_identity(world, who, account):
    principal = world[who]
    out = principal.client("sts").get_caller_identity()
    assert out["Arn"] == f"arn:aws:iam::{account}:user/{who}"
    assert out["Account"] == account
    assert USER_ID.fullmatch(out["UserId"]), out["UserId"]
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert principal.client("sts").get_caller_identity()["UserId"] == out["UserId"]  # stable


def test_user_ids_differ_between_principals(world):
    ids = {who: world[who].client("sts").get_caller_identity()["UserId"] for who in ("admin", "alice", "bob")}
    assert len(set(ids.values())) == 3


def test_needs_no_permission(world):
    """GetCallerIdentity works even for a principal whose identity policy denies everything."""
    nobody = world["nobody"]
    assert nobody.client("sts").get_caller_identity()["Arn"] == nobody.arn
    with pytest.raises(ClientError) as info:
        nobody.kms.list_keys()
    assert error_of(info) == ("AccessDeniedException", access_denied(nobody.arn, "kms:ListKeys", "*", XDENY_I))


def test_raw_response_shape(world):
    admin = world.admin
    status, headers, body = sts_post(world.server, admin.access_key, admin.secret,
                                     b"Action=GetCallerIdentity&Version=2011-06-15")
    assert status == 200 and headers["content-type"] == "text/xml"
    root = ET.fromstring(body)
    assert root.tag == f"{NS}GetCallerIdentityResponse"
    result = root.find(f"{NS}GetCallerIdentityResult")
    assert [child.tag.removeprefix(NS) for child in result] == ["Arn", "UserId", "Account"]
    assert result.findtext(f"{NS}Arn") == admin.arn and result.findtext(f"{NS}Account") == ACCT_A
    assert root.findtext(f"{NS}ResponseMetadata/{NS}RequestId") == headers["x-amzn-requestid"]


# --- the AWS CLI v1 ----------------------------------------------------------------------------------
def aws_cli(server, tmp_path: Path, access_key: str, secret: str, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    cli = Path(sys.executable).with_name("aws")
    return subprocess.run([sys.executable, str(cli), "--endpoint-url", server.url, *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env=env)


@pytest.mark.parametrize("who", ["admin", "bob"])
def test_aws_cli_get_caller_identity(world, tmp_path, who):
    principal = world[who]
    result = aws_cli(world.server, tmp_path, principal.access_key, principal.secret, "sts", "get-caller-identity")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["Arn"] == principal.arn and out["Account"] == principal.account
    assert USER_ID.fullmatch(out["UserId"])
    text = aws_cli(world.server, tmp_path, principal.access_key, principal.secret, "sts", "get-caller-identity",
                   "--query", "Arn", "--output", "text")
    assert text.stdout.strip() == principal.arn


def test_aws_cli_unknown_key(world, tmp_path):
    result = aws_cli(world.server, tmp_path, "AKIAUNKNOWNKEY000000", "x" * 40, "sts", "get-caller-identity")
    assert result.returncode != 0
    assert "An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: " + UNRECOGNIZED \
        in result.stderr


# --- errors ---------------------------------------------------------------------------------------
def test_unknown_access_key(world):
    sts = world.server.client("sts", access_key="AKIAUNKNOWNKEY000000", secret_key="x" * 40)
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert error_of(info) == ("InvalidClientTokenId", UNRECOGNIZED)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    status, headers, body = sts_post(world.server, "AKIAUNKNOWNKEY000000", "x" * 40,
                                     b"Action=GetCallerIdentity&Version=2011-06-15")
    assert status == 403 and headers["content-type"] == "text/xml"
    error = xml_error(body)
    assert error == {"Type": "Sender", "Code": "InvalidClientTokenId", "Message": UNRECOGNIZED,
                     "RequestId": headers["x-amzn-requestid"]}


def test_wrong_secret(world):
    admin = world.admin
    with pytest.raises(ClientError) as info:
        world.server.client("sts", access_key=admin.access_key, secret_key="wrong").get_caller_identity()
    assert error_of(info) == ("SignatureDoesNotMatch", MISMATCH)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_session_token_is_unknown(world):
    admin = world.admin
    status, _, body = sts_post(world.server, admin.access_key, admin.secret,
                               b"Action=GetCallerIdentity&Version=2011-06-15", token="FwoGZXIvYXdzEXAMPLE")
    assert status == 403 and xml_error(body)["Code"] == "InvalidClientTokenId"


def test_unknown_action(world):
    admin = world.admin
    status, _, body = sts_post(world.server, admin.access_key, admin.secret, b"Action=FlyToTheMoon&Version=2011-06-15")
    assert status == 400
    assert xml_error(body)["Code"] == "InvalidAction"


def test_deleted_access_key_stops_working(world):
    leaver = world["leaver"]
    assert leaver.client("sts").get_caller_identity()["Arn"] == leaver.arn
    listed = world.cli("access-keys", "list", "--principal", leaver.arn)["AccessKeys"]
    assert listed == [{"AccessKeyId": leaver.access_key, "Principal": leaver.arn}]
    assert world.cli("access-keys", "delete", "--access-key-id", leaver.access_key) == {"Deleted": leaver.access_key}
    time.sleep(1.5)  # the server caches credentials for about a second
    with pytest.raises(ClientError) as info:
        leaver.client("sts").get_caller_identity()
    assert error_of(info) == ("InvalidClientTokenId", UNRECOGNIZED)
    with pytest.raises(ClientError) as info:
        leaver.kms.list_keys()
    assert error_of(info) == ("UnrecognizedClientException", UNRECOGNIZED)


def test_principals_list(world):
    listed = world.cli("principals", "list")["Principals"]
    arns = {p["Arn"] for p in listed}
    assert {world.admin.arn, world["alice"].arn, world["bob"].arn} <= arns
    assert all(p["Type"] == "user" for p in listed)
