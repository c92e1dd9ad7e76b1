"""The audit log end to end: a real trentd (signatures checked), boto3, and the audit files it writes.

Because a response leaves only after its event is durable, each test reads the files right after
the call. Events are matched to calls by requestID (= the response's x-amzn-RequestId).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer

from ..helpers import break_audit_dir

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CLOUDTRAIL_FIELDS = ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
                     "sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID", "eventID",
                     "readOnly", "resources", "eventType", "managementEvent", "eventCategory")


def trentd(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trentd", *args], capture_output=True, text=True, input=stdin,
                          timeout=60)


def audit_files(server: TrentdServer) -> list[Path]:
    return sorted((server.data_dir / "audit").glob("*.jsonl"))


def all_events(server: TrentdServer) -> list[dict]:
    out = []
    for path in audit_files(server):
        out.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return out


def event_for(server: TrentdServer, request_id: str) -> dict:
    found = [e for e in all_events(server) if e["requestID"] == request_id]
    assert len(found) == 1, f"{len(found)} events for request {request_id}"
    return found[0]


def request_id(response_or_error) -> str:
    if isinstance(response_or_error, ClientError):
        return response_or_error.response["ResponseMetadata"]["RequestId"]
    return response_or_error["ResponseMetadata"]["RequestId"]


def failure(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    return excinfo.value


def check_shape(event: dict, name: str, *, read_only: bool, identity: dict | None = None) -> None:
    """The CloudTrail record fields (ct-encrypt, ct-createkey…)."""
    for field in CLOUDTRAIL_FIELDS:
        assert field in event, field
    assert event["eventVersion"] == "1.08" and event["eventSource"] == "kms.amazonaws.com"
    assert event["eventName"] == name and event["awsRegion"] == "us-east-1"
    assert ISO.fullmatch(event["eventTime"]) and UUID.fullmatch(event["eventID"])
    assert event["eventType"] == "AwsApiCall" and event["managementEvent"] is True
    assert event["eventCategory"] == "Management" and event["readOnly"] is read_only
    assert event["sourceIPAddress"] == "127.0.0.1" and event["userAgent"].startswith("Boto3/")
    assert "trentdChain" in event
    if identity is not None:
        ident = event["userIdentity"]
        for key, value in identity.items():
            assert ident[key] == value, (key, ident)
        assert event["recipientAccountId"] == ident["accountId"]


def resources(event: dict) -> list[str]:
    for r in event["resources"]:
        assert r["type"] == "AWS::KMS::Key" and r["accountId"] == r["ARN"].split(":")[4]
    return [r["ARN"] for r in event["resources"]]


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    with TrentdServer(dev=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server):
    access_key, _ = server.admin_credentials()
    return {"type": "IAMUser", "arn": "arn:aws:iam::000000000000:user/admin", "accountId": "000000000000",
            "accessKeyId": access_key, "userName": "admin"}


@pytest.fixture(scope="module")
def kms(server):
    return server.client()


def make_user(server: TrentdServer, name: str, policy: dict | None, tmp_path: Path) -> tuple[str, str, str]:
    """(ARN, access key id, secret) of a new IAM user, made with the admin commands."""
    created = trentd("principals", "create", "--account", "000000000000", "--name", name,
                     "--data-dir", str(server.data_dir))
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["Arn"]
    if policy is not None:
        path = tmp_path / f"{name}-policy.json"
        path.write_text(json.dumps(policy))
        put = trentd("principals", "put-policy", "--principal", arn, "--policy-file", str(path),
                     "--data-dir", str(server.data_dir))
        assert put.returncode == 0, put.stderr
    keys = trentd("access-keys", "create", "--principal", arn, "--data-dir", str(server.data_dir))
    assert keys.returncode == 0, keys.stderr
    out = json.loads(keys.stdout)
    return arn, out["AccessKeyId"], out["SecretAccessKey"]


ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}


# --- one event per request, success and failure -----------------------------------------------------
def test_create_key(server, kms, admin):
    response = kms.create_key(Description="audit test", Tags=[{"TagKey": "team", "TagValue": "blue"}])
    meta = response["KeyMetadata"]
    event = event_for(server, request_id(response))
    check_shape(event, "CreateKey", read_only=False, identity=admin)
    assert event["userIdentity"]["principalId"].startswith("AIDA")
    assert event["requestParameters"] == {"description": "audit test", "tags": [{"tagKey": "team", "tagValue": "blue"}]}
    key_meta = event["responseElements"]["keyMetadata"]
    assert key_meta["keyId"] == meta["KeyId"] and key_meta["arn"] == meta["Arn"]
    assert key_meta["AWSAccountId"] == "000000000000" and key_meta["keyState"] == "Enabled"
    assert ISO.fullmatch(key_meta["creationDate"])
    assert resources(event) == [meta["Arn"]]

    error = failure(kms.create_key, KeySpec="RSA_2048")  # KeyUsage is required for RSA
    event = event_for(server, request_id(error))
    check_shape(event, "CreateKey", read_only=False, identity=admin)
    assert event["errorCode"] == "ValidationException" and event["errorMessage"]
    assert event["requestParameters"] == {"keySpec": "RSA_2048"} and event["responseElements"] is None


@pytest.fixture(scope="module")
def key(kms):
    return kms.create_key()["KeyMetadata"]


def test_encrypt(server, kms, admin, key):
    kms.create_alias(AliasName="alias/audit-enc", TargetKeyId=key["KeyId"])
    response = kms.encrypt(KeyId="alias/audit-enc", Plaintext=b"hello", EncryptionContext={"Department": "Eng"})
    event = event_for(server, request_id(response))
    check_shape(event, "Encrypt", read_only=True, identity=admin)
    assert event["requestParameters"] == {"keyId": "alias/audit-enc", "encryptionContext": {"Department": "Eng"},
                                          "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}  # keyId as given
    assert event["responseElements"] is None and "errorCode" not in event
    assert resources(event) == [key["Arn"]] and "tlsDetails" not in event  # plain HTTP

    missing = f"arn:aws:kms:us-east-1:000000000000:key/{uuid.uuid4()}"
    error = failure(kms.encrypt, KeyId=missing, Plaintext=b"hello")
    event = event_for(server, request_id(error))
    check_shape(event, "Encrypt", read_only=True, identity=admin)
    assert event["errorCode"] == "NotFoundException" and missing in event["errorMessage"]
    assert event["requestParameters"]["keyId"] == missing and event["resources"] == []


def test_forwarded_headers_do_not_change_the_source_address(server, kms, key):
    """trentd answers its clients directly: an X-Forwarded-For sent by a local process must not
    pass for the caller's address (sourceIPAddress here, aws:SourceIp in policies)."""
    def forwarded(request, **_):
        request.headers["X-Forwarded-For"] = "203.0.113.9"
        request.headers["X-Forwarded-Proto"] = "https"

    kms.meta.events.register("before-sign.kms.Encrypt", forwarded)
    try:
        response = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello")
    finally:
        kms.meta.events.unregister("before-sign.kms.Encrypt", forwarded)
    event = event_for(server, request_id(response))
    assert event["sourceIPAddress"] == "127.0.0.1" and "tlsDetails" not in event


def test_forwarded_headers_are_believed_from_a_trusted_proxy():
    """--trusted-proxies: a reverse proxy's X-Forwarded-For names the caller (here the proxy is
    127.0.0.1, the test itself), in the audit trail and for aws:SourceIp in policies."""
    with TrentdServer(dev=False, extra_args=("--trusted-proxies", "127.0.0.0/8")) as proxied:
        kms = proxied.client()

        def forwarded(request, **_):
            request.headers["X-Forwarded-For"] = "203.0.113.9"

        kms.meta.events.register("before-sign.kms.*", forwarded)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        response = kms.encrypt(KeyId=key_id, Plaintext=b"hello")
        assert event_for(proxied, request_id(response))["sourceIPAddress"] == "203.0.113.9"
        # a key policy that allows only the forwarded address: the call passes, from elsewhere not
        account = "000000000000"
        policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "only-from", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
             "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]}
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
        kms.encrypt(KeyId=key_id, Plaintext=b"hello")
        kms.meta.events.unregister("before-sign.kms.*", forwarded)
        error = failure(kms.encrypt, KeyId=key_id, Plaintext=b"hello")
        assert error.response["Error"]["Code"] == "AccessDeniedException"


def test_a_malformed_trusted_proxy_is_refused_at_start(tmp_path):
    out = trentd("serve", "--port", "1", "--data-dir", str(tmp_path), "--trusted-proxies", "10.0.0.5,proxy.internal")
    assert out.returncode == 2 and "--trusted-proxies" in out.stderr and "proxy.internal" in out.stderr, out.stderr
    assert not (tmp_path / "trentd.db").exists()  # refused before anything was set up


def test_decrypt(server, kms, admin, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello", EncryptionContext={"p": "a"})["CiphertextBlob"]
    response = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"p": "a"})
    event = event_for(server, request_id(response))
    check_shape(event, "Decrypt", read_only=True, identity=admin)
    # encryptionAlgorithm always, even when not given; no ciphertext, no plaintext
    assert event["requestParameters"] == {"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"p": "a"}}
    assert event["responseElements"] is None and resources(event) == [key["Arn"]]
    assert re.fullmatch(r"[0-9a-f]{64}", event["additionalEventData"]["keyMaterialId"])

    error = failure(kms.decrypt, CiphertextBlob=blob, EncryptionContext={"p": "b"})
    event = event_for(server, request_id(error))
    check_shape(event, "Decrypt", read_only=True, identity=admin)
    assert event["errorCode"] == "InvalidCiphertextException" and event["responseElements"] is None
    assert resources(event) == [key["Arn"]]


def test_generate_data_key(server, kms, admin, key):
    response = kms.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256", EncryptionContext={"x": "y"})
    event = event_for(server, request_id(response))
    check_shape(event, "GenerateDataKey", read_only=True, identity=admin)
    assert event["requestParameters"] == {"keyId": key["Arn"], "keySpec": "AES_256", "encryptionContext": {"x": "y"}}
    assert event["responseElements"] is None and resources(event) == [key["Arn"]]

    disabled = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=disabled["KeyId"])
    error = failure(kms.generate_data_key, KeyId=disabled["KeyId"], NumberOfBytes=32)
    event = event_for(server, request_id(error))
    assert event["errorCode"] == "DisabledException" and resources(event) == [disabled["Arn"]]
    assert event["requestParameters"] == {"keyId": disabled["KeyId"], "numberOfBytes": 32}


def test_create_alias(server, kms, admin, key):
    response = kms.create_alias(AliasName="alias/audit-alias", TargetKeyId=key["KeyId"])
    event = event_for(server, request_id(response))
    check_shape(event, "CreateAlias", read_only=False, identity=admin)
    assert event["requestParameters"] == {"aliasName": "alias/audit-alias", "targetKeyId": key["KeyId"]}
    assert event["responseElements"] is None and resources(event) == [key["Arn"]]

    error = failure(kms.create_alias, AliasName="alias/audit-alias", TargetKeyId=key["KeyId"])
    event = event_for(server, request_id(error))
    check_shape(event, "CreateAlias", read_only=False, identity=admin)
    assert event["errorCode"] == "AlreadyExistsException"


def test_denied_call_names_the_caller_and_the_key(server, key, tmp_path):
    arn, access_key, secret = make_user(server, "audit-nobody", None, tmp_path)
    nobody = server.client(access_key=access_key, secret_key=secret)
    error = failure(nobody.encrypt, KeyId=key["Arn"], Plaintext=b"x")
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    event = event_for(server, request_id(error))
    check_shape(event, "Encrypt", read_only=True, identity={
        "type": "IAMUser", "arn": arn, "accessKeyId": access_key, "userName": "audit-nobody",
        "accountId": "000000000000"})
    assert event["errorCode"] == "AccessDeniedException" and resources(event) == [key["Arn"]]


def test_unauthenticated_calls_record_only_what_is_known(server, admin):
    stranger = server.client(access_key="AKIAAUDITUNKNOWN0000", secret_key="whatever")
    error = failure(stranger.list_keys)
    event = event_for(server, request_id(error))
    assert event["userIdentity"] == {"type": "Unknown", "accessKeyId": "AKIAAUDITUNKNOWN0000"}
    assert event["errorCode"] == "UnrecognizedClientException" and event["eventName"] == "ListKeys"
    assert event["requestParameters"] is None and "recipientAccountId" not in event

    wrong_secret = server.client(access_key=admin["accessKeyId"], secret_key="not-the-secret")
    error = failure(wrong_secret.list_keys)
    event = event_for(server, request_id(error))
    assert event["errorCode"] == "InvalidSignatureException"
    assert event["userIdentity"] == {"type": "Unknown", "accessKeyId": admin["accessKeyId"]}

    request = urllib.request.Request(server.url + "/", data=b"{}", method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    rid = excinfo.value.headers["x-amzn-RequestId"]
    event = event_for(server, rid)
    assert event["userIdentity"] == {"type": "Unknown"} and event["eventName"] == "Encrypt"
    assert event["errorCode"] == "MissingAuthenticationTokenException"


def test_sts_calls_are_recorded(server, admin):
    sts = server.client("sts")
    response = sts.get_caller_identity()
    event = event_for(server, request_id(response))
    assert event["eventSource"] == "sts.amazonaws.com" and event["eventName"] == "GetCallerIdentity"
    assert event["userIdentity"]["arn"] == admin["arn"] and event["readOnly"] is True


# --- nothing secret reaches the audit log or the server log ----------------------------------------
def encodings(secret: bytes) -> set[bytes]:
    """The forms a secret could take in a log: raw, hex, and base64 at every alignment."""
    forms = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + secret)
            # only the 4-character groups made of the secret's bytes alone
            forms.add(text[4 if pad else 0:4 * ((pad + len(secret)) // 3)])
    return {form for form in forms if len(form) >= 8}


@pytest.fixture(scope="module", params=["text", "json"])
def logged_server(request):
    """A server that also writes an access log, in each format, at the debug level: the canary
    test reads its output as well as its audit files."""
    with TrentdServer(dev=False, extra_args=("--log-format", request.param, "--access-log", "--log-level", "debug")) as srv:
        yield srv


def test_canary_never_logged(logged_server, tmp_path):
    server = logged_server
    kms = server.client()
    key = kms.create_key()["KeyMetadata"]
    canary = b"CANARY-" + os.urandom(24)
    arn, access_key, secret = make_user(server, "audit-canary", ALLOW_ALL, tmp_path)
    user = server.client(access_key=access_key, secret_key=secret)
    raw = server.client(access_key=access_key, secret_key=secret, parameter_validation=False)
    secrets_seen: list[bytes] = [canary, secret.encode()]

    blob = user.encrypt(KeyId=key["KeyId"], Plaintext=canary, EncryptionContext={"purpose": "canary"})["CiphertextBlob"]
    assert user.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "canary"})["Plaintext"] == canary
    data_key = user.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    secrets_seen += [data_key["Plaintext"], data_key["CiphertextBlob"]]
    secrets_seen.append(user.generate_random(NumberOfBytes=32)["Plaintext"])
    pair = user.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256")
    secrets_seen += [pair["PrivateKeyPlaintext"], pair["PrivateKeyCiphertextBlob"]]
    secrets_seen.append(user.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"purpose": "canary"},
                                        DestinationKeyId=key["KeyId"])["CiphertextBlob"])
    secrets_seen.append(blob)

    grantee = make_user(server, "audit-grantee", None, tmp_path)
    grant = user.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee[0], Operations=["Encrypt", "Decrypt"])
    token = grant["GrantToken"]
    secrets_seen.append(token.encode())
    grantee_kms = server.client(access_key=grantee[1], secret_key=grantee[2])
    granted = grantee_kms.encrypt(KeyId=key["Arn"], Plaintext=canary, GrantTokens=[token])
    secrets_seen.append(granted["CiphertextBlob"])
    # a validation failure whose message would echo the tokens
    failure(raw.encrypt, KeyId=key["KeyId"], Plaintext=canary, GrantTokens=[token] * 11)

    hmac_key = user.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    mac = user.generate_mac(KeyId=hmac_key, Message=canary, MacAlgorithm="HMAC_SHA_256")["Mac"]
    user.verify_mac(KeyId=hmac_key, Message=canary, Mac=mac, MacAlgorithm="HMAC_SHA_256")
    secrets_seen.append(mac)
    sign_key = user.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signature = user.sign(KeyId=sign_key, Message=canary, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    user.verify(KeyId=sign_key, Message=canary, Signature=signature, SigningAlgorithm="ECDSA_SHA_256")
    secrets_seen.append(signature)
    user.retire_grant(GrantToken=token)
    # the access log is written by a thread of its own: wait for the last call's line
    last = request_id(user.describe_key(KeyId=key["KeyId"]))
    deadline = time.monotonic() + 10
    while last not in server.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last in server.logs() and request_id(granted) in server.logs()

    files = audit_files(server)
    corpus = {str(p): p.read_bytes() for p in files}
    corpus["server log"] = server.log_path.read_bytes()
    for secret_value in secrets_seen:
        for form in encodings(secret_value):
            for name, text in corpus.items():
                assert form not in text, f"a secret ({form[:12]!r}…) is in {name}"

    # grant tokens appear only as this deployment's salted hash, which `trentd audit hash` reproduces
    hashed = trentd("audit", "hash", "--data-dir", str(server.data_dir), stdin=token)
    assert hashed.returncode == 0, hashed.stderr
    token_hash = json.loads(hashed.stdout)["Hash"]
    assert token_hash.startswith("hmac-sha256:")
    event = event_for(server, request_id(granted))
    assert event["requestParameters"]["grantTokens"] == [token_hash]
    assert event_for(server, request_id(grant))["responseElements"]["grantToken"] == token_hash
    assert sum(text.count(token_hash.encode()) for text in corpus.values()) >= 3  # create, use, retire


# --- tamper evidence --------------------------------------------------------------------------------
def test_verify_detects_tampering(server, kms, key, tmp_path):
    for _ in range(3):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    files = audit_files(server)
    ok = trentd("audit", "verify", *map(str, files))
    assert ok.returncode == 0, ok.stdout
    assert json.loads(ok.stdout)["ok"] is True
    ok = trentd("audit", "verify", "--data-dir", str(server.data_dir))  # the central trail, every chain
    assert ok.returncode == 0, ok.stdout
    assert json.loads(ok.stdout)["ok"] is True and json.loads(ok.stdout)["chains"][0]["events"] >= 4

    original = files[0]
    lines = original.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 4

    def verify_copy(new_lines: list[bytes]) -> dict:
        copy = tmp_path / original.name
        copy.write_bytes(b"".join(new_lines))
        result = trentd("audit", "verify", str(copy))
        assert result.returncode == 1, result.stdout
        report = json.loads(result.stdout)
        assert report["ok"] is False and report["error"]["file"] == str(copy)
        return report["error"]

    edited = lines[:]
    edited[2] = edited[2].replace(b'"eventName":"', b'"eventName":"X', 1)
    assert verify_copy(edited)["line"] == 3
    deleted = lines[:1] + lines[2:]
    assert verify_copy(deleted)["line"] == 2
    swapped = lines[:]
    swapped[1], swapped[2] = swapped[2], swapped[1]
    assert verify_copy(swapped)["line"] == 2


# --- fail-closed / fail-open -------------------------------------------------------------------------
def test_fail_closed_refuses_then_recovers():
    with TrentdServer(dev=False) as srv:
        kms = srv.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        moved = break_audit_dir(srv)
        error = failure(kms.encrypt, KeyId=key_id, Plaintext=b"not audited, not answered")
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert error.response["Error"]["Code"] == "KMSInternalException"
        message = error.response["Error"]["Message"]
        assert str(srv.data_dir) not in message and "/" not in message and "audit" in message
        failed_id = request_id(error)

        (srv.data_dir / "audit").unlink()  # the disk is writable again: the next request recovers
        response = kms.encrypt(KeyId=key_id, Plaintext=b"audited")
        assert response["CiphertextBlob"]
        files = sorted(moved.glob("*.jsonl")) + audit_files(srv)
        verified = trentd("audit", "verify", *map(str, files))
        assert verified.returncode == 0, verified.stdout
        late = event_for(srv, failed_id)  # kept and written once possible, marked as such
        assert late["additionalEventData"] == {"auditDelivery": "late", "callerAnswer": "KMSInternalException"}
        assert event_for(srv, request_id(response))["eventName"] == "Encrypt"
        assert "AUDIT LOG NOT WRITABLE" in srv.log_path.read_text()


def test_fail_open_answers_and_logs_loudly():
    with TrentdServer(dev=False, extra_args=("--audit-fail-open", "--audit-stdout")) as srv:
        kms = srv.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        break_audit_dir(srv)
        response = kms.encrypt(KeyId=key_id, Plaintext=b"answered anyway")
        assert response["CiphertextBlob"]
        log = srv.log_path.read_text()
        assert "AUDIT LOG NOT WRITABLE" in log and "--audit-fail-open" in log
        (srv.data_dir / "audit").unlink()
        kms.list_keys()
        deadline = time.monotonic() + 5
        while request_id(response) not in srv.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        # --audit-stdout: the events (the late one included) are on stdout as JSON lines
        stdout_events = [json.loads(line) for line in srv.log_path.read_text().splitlines()
                         if line.startswith('{"') and '"trentdChain"' in line]
        assert request_id(response) in {e["requestID"] for e in stdout_events}


def test_rotation_keeps_one_chain(tmp_path):
    with TrentdServer(dev=False, extra_args=("--audit-max-bytes", "4000")) as srv:
        kms = srv.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        for _ in range(12):
            kms.encrypt(KeyId=key_id, Plaintext=b"x")
        files = audit_files(srv)
        assert len(files) > 2
        verified = trentd("audit", "verify", *map(str, files))
        assert verified.returncode == 0, verified.stdout
        assert sum(f["events"] for f in json.loads(verified.stdout)["files"]) == 13


# --- tail and search -----------------------------------------------------------------------------------
def test_search_and_tail(server, kms, admin, tmp_path):
    target = kms.create_key()["KeyMetadata"]
    other = kms.create_key()["KeyMetadata"]
    kms.encrypt(KeyId=target["KeyId"], Plaintext=b"1")
    kms.encrypt(KeyId=other["KeyId"], Plaintext=b"2")
    denied = failure(kms.encrypt, KeyId=f"arn:aws:kms:us-east-1:000000000000:key/{uuid.uuid4()}", Plaintext=b"3")
    data_dir = str(server.data_dir)

    def search(*args: str) -> list[dict]:
        result = trentd("audit", "search", "--data-dir", data_dir, *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    by_key = search("--key", target["Arn"])
    assert [e["eventName"] for e in by_key] == ["CreateKey", "Encrypt"]
    assert [e["eventName"] for e in search("--key", target["KeyId"])] == ["CreateKey", "Encrypt"]
    encrypts = search("--event", "Encrypt", "--key", other["Arn"])
    assert len(encrypts) == 1 and encrypts[0]["resources"][0]["ARN"] == other["Arn"]
    errors = search("--error", "--since", "10m")
    assert errors and all("errorCode" in e for e in errors)
    assert request_id(denied) in {e["requestID"] for e in errors}
    assert all(e["userIdentity"].get("arn") == admin["arn"] for e in search("--principal", admin["arn"]))
    assert search("--since", "2999-01-01T00:00:00Z") == []
    assert len(search("--event", "Encrypt", "--event", "CreateKey", "--since", "1h")) >= 4

    result = trentd("audit", "tail", "-n", "3", "--data-dir", data_dir)
    tail = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["requestID"] for e in tail][-1] == request_id(denied) and len(tail) == 3


def test_tls_details_over_https():
    with TrentdServer(tls="self-signed") as srv:
        response = srv.client().list_keys()
        event = event_for(srv, request_id(response))
        assert event["tlsDetails"]["clientProvidedHostHeader"] == f"127.0.0.1:{srv.port}"
