"""SigV4 authentication end to end: boto3, raw requests signed by botocore, curl and the AWS CLI.

``secure_server`` checks signatures (normal mode, admin credentials from its data dir);
``trentd_server`` is --dev: any secret passes, but the Authorization header must still parse, the
date must be current and the scope valid, and a 12-digit access key id picks the account.
Expected texts: shared/reference/security.md B1/B2.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .test_protocol import JSON_11, Reply, check_invariants, exchange

MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")
UNRECOGNIZED = "The security token included in the request is invalid."
MISSING = "Request is missing Authentication Token"
LIST_KEYS = "TrentService.ListKeys"


def sign(server, *, access_key=None, secret=None, token=None, region="us-east-1", service="kms", target=LIST_KEYS,
         body=b"{}", skew=timedelta(0), sign_target=True) -> dict[str, str]:
    """Headers of a request signed by botocore's SigV4Auth, as the SDK would send them.
    ``skew`` moves the signer's clock; ``sign_target=False`` adds X-Amz-Target only after signing."""
    if access_key is None:
        access_key, own_secret = ("123456789012", "dev-secret") if server.dev else server.admin_credentials()
        secret = own_secret if secret is None else secret
    headers = {"Content-Type": JSON_11}
    if sign_target:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers=headers)
    signer_now = datetime.now(timezone.utc).replace(tzinfo=None) + skew
    with mock.patch("botocore.auth.get_current_datetime", return_value=signer_now):
        SigV4Auth(Credentials(access_key, secret, token), service, region).add_auth(request)
    out = dict(request.headers)
    if not sign_target:
        out["X-Amz-Target"] = target
    return out


def post(server, headers: dict, body: bytes = b"{}") -> Reply:
    return check_invariants(exchange(server.url, "POST", headers, body))


def rejected(server, headers: dict, body: bytes = b"{}") -> tuple[str, str]:
    status, code, message = post(server, headers, body).error
    assert status == 400, (status, code, message)
    return code, message


@pytest.fixture(params=["secure", "dev"])
def any_server(request, secure_server, trentd_server):
    return secure_server if request.param == "secure" else trentd_server


# --- the happy paths ---------------------------------------------------------------------------
def test_boto3_with_admin_credentials(secure_server):
    kms = secure_server.client()
    key = kms.create_key(Description="auth")["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"signed")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"signed"
    assert key["KeyId"] in {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}


def test_key_operations_after_the_caller_was_idle(secure_server):
    # Identity policies and secrets are cached for about a second: the first call after that,
    # when everything is looked up again, must work like any other.
    kms = secure_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    time.sleep(1.5)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    time.sleep(1.5)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"idle")["CiphertextBlob"]
    time.sleep(1.5)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"idle"


def test_raw_signed_request_with_extra_unsigned_headers(secure_server):
    headers = {**sign(secure_server), "User-Agent": "test/1.0", "X-Unsigned-Extra": "ignored"}
    reply = post(secure_server, headers)
    assert reply.status == 200 and "Keys" in reply.json


# --- wrong credentials -------------------------------------------------------------------------
def test_wrong_secret(secure_server):
    access_key, _ = secure_server.admin_credentials()
    with pytest.raises(ClientError) as info:
        secure_server.client(access_key=access_key, secret_key="not-the-secret").list_keys()
    assert info.value.response["Error"] == {"Code": "InvalidSignatureException", "Message": MISMATCH}
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_access_key(secure_server):
    with pytest.raises(ClientError) as info:
        secure_server.client(access_key="AKIAUNKNOWNKEY000000", secret_key="whatever").list_keys()
    assert info.value.response["Error"] == {"Code": "UnrecognizedClientException", "Message": UNRECOGNIZED}
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_session_token_is_unrecognized(secure_server):
    access_key, secret = secure_server.admin_credentials()
    headers = sign(secure_server, access_key=access_key, secret=secret, token="FwoGZXIvYXdzEXAMPLETOKEN")
    assert "X-Amz-Security-Token" in headers
    assert rejected(secure_server, headers) == ("UnrecognizedClientException", UNRECOGNIZED)


def test_unsigned_session_token(any_server):
    headers = {**sign(any_server), "X-Amz-Security-Token": "FwoGZXIvYXdzEXAMPLETOKEN"}
    assert rejected(any_server, headers) == (
        "InvalidSignatureException", "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")


# --- a missing or malformed Authorization header -----------------------------------------------------
def test_missing_authorization(any_server):
    headers = sign(any_server)
    del headers["Authorization"]
    assert rejected(any_server, headers) == ("MissingAuthenticationTokenException", MISSING)


def test_other_auth_scheme(any_server):
    headers = {**sign(any_server), "Authorization": "Basic dXNlcjpwYXNz"}
    assert rejected(any_server, headers) == ("MissingAuthenticationTokenException", MISSING)


def _parts(headers: dict) -> dict[str, str]:
    _, _, rest = headers["Authorization"].partition(" ")
    return dict(item.split("=", 1) for item in rest.split(", "))


REQUIRES = "Authorization header requires '{}' parameter. "


@pytest.mark.parametrize("make, message", [
    (lambda p: "AWS4-HMAC-SHA256",
     REQUIRES.format("Credential") + REQUIRES.format("Signature") + REQUIRES.format("SignedHeaders") + "Authorization={}"),
    (lambda p: f"AWS4-HMAC-SHA256 Credential={p['Credential']}",
     REQUIRES.format("Signature") + REQUIRES.format("SignedHeaders") + "Authorization={}"),
    (lambda p: f"AWS4-HMAC-SHA256 Credential={p['Credential']}, SignedHeaders={p['SignedHeaders']}, Signature=",
     REQUIRES.format("Signature") + "Authorization={}"),
    (lambda p: f"AWS4-HMAC-SHA512 Credential={p['Credential']}, SignedHeaders={p['SignedHeaders']}, "
               f"Signature={p['Signature']}", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."),
    (lambda p: "AWS4-HMAC-SHA256 Credential",
     "'Credential' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'."),
    (lambda p: f"AWS4-HMAC-SHA256 Credential={p['Credential']}, SignedHeaders={p['SignedHeaders']}, "
               f"Signature={p['Signature']}, Signature={p['Signature']}",
     "Authorization header has duplicate 'Signature' parameter. Authorization={}"),
    (lambda p: f"AWS4-HMAC-SHA256 Credential={p['Credential'].rsplit('/', 2)[0]}, "
               f"SignedHeaders={p['SignedHeaders']}, Signature={p['Signature']}",
     "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{cred}'"),
    (lambda p: f"AWS4-HMAC-SHA256 Credential={p['Credential']}, SignedHeaders=x-amz-target;host, "
               f"Signature={p['Signature']}",
     "SignedHeaders must be lower-case, sorted and unique, separated by ';'. Got 'x-amz-target;host'."),
], ids=["bare", "no-signature", "empty-signature", "algorithm", "no-equals", "duplicate", "short-credential",
        "unsorted"])
def test_malformed_authorization(any_server, make, message):
    headers = sign(any_server)
    auth = make(_parts(headers))
    headers["Authorization"] = auth
    credential = re.search(r"Credential=([^,]*)", auth)
    expected = message.replace("{}", auth).replace("{cred}", credential.group(1) if credential else "")
    assert rejected(any_server, headers) == ("IncompleteSignatureException", expected)


def test_missing_date(any_server):
    headers = sign(any_server)
    del headers["X-Amz-Date"]
    assert rejected(any_server, headers) == (
        "IncompleteSignatureException",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={headers['Authorization']}")


# --- time -------------------------------------------------------------------------------------------------
STAMP = r"(\d{8}T\d{6}Z)"


def _utc(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("minutes", [-4, 4])
def test_skew_within_five_minutes_is_accepted(any_server, minutes):
    assert post(any_server, sign(any_server, skew=timedelta(minutes=minutes))).status == 200


@pytest.mark.parametrize("minutes, pattern, sign_of_window", [
    (-6, rf"Signature expired: {STAMP} is now earlier than {STAMP} \({STAMP} - 5 min\.\)", -1),
    (6, rf"Signature not yet current: {STAMP} is still later than {STAMP} \({STAMP} \+ 5 min\.\)", 1),
])
def test_skew_beyond_five_minutes_is_refused(any_server, minutes, pattern, sign_of_window):
    headers = sign(any_server, skew=timedelta(minutes=minutes))
    code, message = rejected(any_server, headers)
    match = re.fullmatch(pattern, message)
    assert code == "InvalidSignatureException" and match, message
    sent, bound, server_now = match.groups()
    assert sent == headers["X-Amz-Date"]
    assert abs((_utc(server_now) - datetime.now(timezone.utc)).total_seconds()) < 10
    assert _utc(bound) - _utc(server_now) == sign_of_window * timedelta(minutes=5)


def test_scope_date_must_match_request_date(any_server):
    headers = sign(any_server)
    stamp = headers["X-Amz-Date"]
    wrong_day = (_utc(stamp) - timedelta(days=1)).strftime("%Y%m%d")
    headers["Authorization"] = headers["Authorization"].replace(f"/{stamp[:8]}/", f"/{wrong_day}/")
    assert rejected(any_server, headers) == (
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        f"'{wrong_day}' != '{stamp[:8]}', from '{stamp}'.")


# --- scope and signed parts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("region, service, message", [
    ("moon", "kms", "Credential should be scoped to a valid region, not 'moon'."),
    ("US-EAST-1", "kms", "Credential should be scoped to a valid region, not 'US-EAST-1'."),
    ("us-east-1", "s3", "Credential should be scoped to correct service: 'kms'."),
    ("us-east-1", "dynamodb", "Credential should be scoped to correct service: 'kms'."),
])
def test_bad_scope(any_server, region, service, message):
    assert rejected(any_server, sign(any_server, region=region, service=service)) == (
        "InvalidSignatureException", message)


def test_unsigned_target_is_refused(any_server):
    headers = sign(any_server, sign_target=False)
    assert "x-amz-target" not in _parts(headers)["SignedHeaders"].split(";")
    assert rejected(any_server, headers) == (
        "InvalidSignatureException", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.")


def test_unsigned_host_is_refused(any_server):
    headers = sign(any_server)
    signed = _parts(headers)["SignedHeaders"]
    headers["Authorization"] = headers["Authorization"].replace(signed, signed.replace("host;", ""))
    assert rejected(any_server, headers) == (
        "InvalidSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")


@pytest.mark.parametrize("tamper", ["body", "target", "signature", "content-sha256", "unsigned-payload"])
def test_anything_changed_after_signing_is_refused(secure_server, tamper):
    body = b'{"Limit": 5}'
    headers = sign(secure_server, body=body)
    message = MISMATCH
    if tamper == "body":
        body = b'{"Limit": 6}'
    elif tamper == "target":  # a captured signature cannot be replayed against another operation
        headers["X-Amz-Target"] = "TrentService.CreateKey"
    elif tamper == "signature":
        sig = _parts(headers)["Signature"]
        headers["Authorization"] = headers["Authorization"].replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    else:
        headers["X-Amz-Content-Sha256"] = "0" * 64 if tamper == "content-sha256" else "UNSIGNED-PAYLOAD"
        message = "The provided 'x-amz-content-sha256' header does not match what was computed."
    assert rejected(secure_server, headers, body) == ("InvalidSignatureException", message)
    assert post(secure_server, sign(secure_server, body=body), body).status == 200  # control: signed as sent


# --- --dev mode ---------------------------------------------------------------------------------------------
def test_dev_accepts_any_secret(trentd_server):
    reply = post(trentd_server, sign(trentd_server, access_key="271828182845", secret="anything at all"))
    assert reply.status == 200


@pytest.mark.parametrize("access_key, account", [("314159265358", "314159265358"), ("AKIDEXAMPLE", "000000000000"),
                                                 ("12345678901", "000000000000")])
def test_dev_access_key_picks_the_account(trentd_server, access_key, account):
    kms = trentd_server.client(access_key=access_key, secret_key="x", region="eu-west-3")
    metadata = kms.create_key()["KeyMetadata"]
    assert metadata["AWSAccountId"] == account
    assert metadata["Arn"] == f"arn:aws:kms:eu-west-3:{account}:key/{metadata['KeyId']}"


# --- other signers --------------------------------------------------------------------------------------------
def clean_env(tmp_path: Path, access_key: str, secret: str) -> dict[str, str]:
    """No inherited AWS_* variables (AWS_CA_BUNDLE, profiles…) and no ~/.aws files."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds"),
            "AWS_EC2_METADATA_DISABLED": "true"}


def curl(server, tmp_path, user: str) -> dict:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    result = subprocess.run(
        ["curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:kms", "--user", user,
         "-H", f"X-Amz-Target: {LIST_KEYS}", "-H", f"Content-Type: {JSON_11}", "-d", "{}",
         "-w", "\n%{http_code}", server.url + "/"],
        capture_output=True, text=True, timeout=30, env=clean_env(tmp_path, "unused", "unused"))
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return {"status": int(status), "body": json.loads(body)}


def test_curl_aws_sigv4(secure_server, tmp_path):
    access_key, secret = secure_server.admin_credentials()
    answer = curl(secure_server, tmp_path, f"{access_key}:{secret}")
    assert answer["status"] == 200 and isinstance(answer["body"]["Keys"], list)
    wrong = curl(secure_server, tmp_path, f"{access_key}:wrong-secret")
    assert wrong == {"status": 400, "body": {"__type": "InvalidSignatureException", "message": MISMATCH}}


def aws_cli(server, tmp_path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    access_key, secret = server.admin_credentials()
    cli = Path(sys.executable).with_name("aws")
    result = subprocess.run([sys.executable, str(cli), "--endpoint-url", server.url, "kms", *args],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env=clean_env(tmp_path, access_key, secret))
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_aws_cli_round_trip(secure_server, tmp_path):
    key_id = aws_cli(secure_server, tmp_path, "create-key", "--description", "from the CLI",
                     "--query", "KeyMetadata.KeyId", "--output", "text").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", key_id)
    plaintext = bytes(range(256)) + b"\n\x00 end"
    (tmp_path / "plain.bin").write_bytes(plaintext)
    blob = aws_cli(secure_server, tmp_path, "encrypt", "--key-id", key_id, "--plaintext", "fileb://plain.bin",
                   "--encryption-context", "purpose=cli", "--query", "CiphertextBlob", "--output", "text").stdout
    (tmp_path / "cipher.bin").write_bytes(base64.b64decode(blob))
    decrypted = aws_cli(secure_server, tmp_path, "decrypt", "--ciphertext-blob", "fileb://cipher.bin",
                        "--encryption-context", "purpose=cli", "--query", "[KeyId, Plaintext]", "--output", "text")
    arn, plain_b64 = decrypted.stdout.split()
    assert arn.endswith(f":key/{key_id}") and base64.b64decode(plain_b64) == plaintext

    refused = aws_cli(secure_server, tmp_path, "decrypt", "--ciphertext-blob", "fileb://cipher.bin", check=False)
    assert refused.returncode != 0
    assert "An error occurred (InvalidCiphertextException) when calling the Decrypt operation" in refused.stderr
