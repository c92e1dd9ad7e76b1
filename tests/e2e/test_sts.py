"""Temporary credentials (issue #10): GetSessionToken and AssumeRole over the STS Query protocol,
and the session tokens they issue checked on every KMS and STS call.

A non-dev server per store (authz_world), principals and roles made with the admin CLI, trust
policies set with ``trentd principals put-trust-policy``, boto3 and the AWS CLI as clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer

from ..helpers import error_of
from .authz_world import ACCT_A, ACCT_B, REGION, World, policy
from .test_sts_identity import sts_post, xml_error

UNRECOGNIZED = "The security token included in the request is invalid."
EXPIRED = "The security token included in the request is expired"
CHAINED = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
ALL_KMS = policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def assumed_arn(account: str, role: str, session: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def trust(*principals: str, condition: dict | None = None, action: str | list = "sts:AssumeRole") -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": action}
    if condition:
        statement["Condition"] = condition
    return policy(statement)


class StsWorld(World):
    def make_role(self, account: str, name: str, trust_policy: str | None, identity_policy: str | None) -> str:
        arn = self.cli("principals", "create", "--account", account, "--name", name, "--type", "role")["Arn"]
        assert arn == role_arn(account, name)
        if identity_policy is not None:
            self.put_policy(arn, identity_policy)
        if trust_policy is not None:
            out = self.put_trust(arn, trust_policy)
            assert out == {"Arn": arn, "AssumeRolePolicyDocument": json.loads(trust_policy)}
        return arn

    def put_trust(self, arn: str, document: str, check: bool = True):
        path = self.server.data_dir.parent / f"{self.server.data_dir.name}-{arn.rsplit('/', 1)[1]}-trust.json"
        path.write_text(document)
        try:
            return self.cli("principals", "put-trust-policy", "--principal", arn, "--policy-file", str(path),
                            check=check)
        finally:
            path.unlink(missing_ok=True)

    def make_managed_policy(self, account: str, name: str, document: str) -> str:
        path = self.server.data_dir.parent / f"{self.server.data_dir.name}-managed-{name}.json"
        path.write_text(document)
        try:
            return self.cli("policies", "create", "--account", account, "--name", name, "--policy-file",
                            str(path))["Arn"]
        finally:
            path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def world(authz_server) -> StsWorld:
    w = StsWorld(authz_server)
    w.make_users([
        (ACCT_A, "alice", None),  # trusted by name: needs no identity policy
        (ACCT_A, "bob", None),  # trusted by nobody
        (ACCT_A, "erin", policy({"Effect": "Allow", "Action": "sts:AssumeRole",
                                 "Resource": role_arn(ACCT_A, "Delegated")})),
        (ACCT_B, "carol", policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})),
        (ACCT_B, "dave", None),  # its account is trusted, but no identity policy delegates to it
    ])
    alice = w["alice"].arn
    w.make_role(ACCT_A, "App", trust(alice), ALL_KMS)
    w.make_role(ACCT_A, "Delegated", trust(f"arn:aws:iam::{ACCT_A}:root"), ALL_KMS)
    w.make_role(ACCT_A, "Ext", trust(f"arn:aws:iam::{ACCT_B}:root",
                                     condition={"StringEquals": {"sts:ExternalId": "shared-secret-42"}}), ALL_KMS)
    w.make_role(ACCT_A, "Chain", trust(role_arn(ACCT_A, "App")), ALL_KMS)
    w.make_role(ACCT_A, "KeyUser", trust(alice), None)  # no identity policy: key policies decide
    w.make_role(ACCT_A, "Tagged", trust(alice, action=["sts:AssumeRole", "sts:TagSession"]), ALL_KMS)
    w.managed = w.make_managed_policy(ACCT_A, "ListOnly", policy({"Effect": "Allow", "Action": "kms:ListKeys",
                                                                 "Resource": "*"}))
    return w


def session_clients(world, credentials: dict) -> tuple:
    """(sts, kms) boto3 clients signing with temporary credentials."""
    args = dict(access_key=credentials["AccessKeyId"], secret_key=credentials["SecretAccessKey"],
                session_token=credentials["SessionToken"], region=REGION)
    return world.server.client("sts", **args), world.server.client("kms", **args)


def assume(world, who: str, role: str, session: str = "s1", **kwargs) -> dict:
    return world[who].client("sts").assume_role(RoleArn=role_arn(ACCT_A, role), RoleSessionName=session, **kwargs)


def sts_error(info) -> tuple[str, str, int]:
    code, message = error_of(info)
    return code, message, info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def denied(who_arn: str, role: str, action: str = "sts:AssumeRole") -> tuple[str, str, int]:
    return ("AccessDenied", f"User: {who_arn} is not authorized to perform: {action} on resource: "
                            f"{role_arn(ACCT_A, role)}", 403)


# --- AssumeRole: the trust policy decides ------------------------------------------------------------
def test_assume_role_and_use_kms(world):
    out = assume(world, "alice", "App", "alice-session")
    creds, user = out["Credentials"], out["AssumedRoleUser"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretAccessKey"]) == 40 and len(creds["SessionToken"]) >= 64
    assert user["Arn"] == assumed_arn(ACCT_A, "App", "alice-session")
    assert user["AssumedRoleId"].startswith("AROA") and user["AssumedRoleId"].endswith(":alice-session")
    sts, kms = session_clients(world, creds)
    identity = sts.get_caller_identity()
    assert identity["Arn"] == user["Arn"] and identity["Account"] == ACCT_A
    assert identity["UserId"] == user["AssumedRoleId"]
    key_id = kms.create_key(Description="made by a role session")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"role data")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"role data"


def test_default_durations(world):
    before = world.server.move_clock(advance_seconds=0)["now"]
    expiration = assume(world, "alice", "App")["Credentials"]["Expiration"].timestamp()
    assert 3590 <= expiration - before <= 3610
    expiration = world["alice"].client("sts").get_session_token()["Credentials"]["Expiration"].timestamp()
    assert 43190 <= expiration - before <= 43210


def test_untrusted_caller_is_refused(world):
    with pytest.raises(ClientError) as info:
        assume(world, "bob", "App")
    assert sts_error(info) == denied(world["bob"].arn, "App")


def test_unknown_role_is_refused_like_an_untrusted_one(world):
    with pytest.raises(ClientError) as info:
        assume(world, "alice", "NoSuchRole")
    assert sts_error(info) == denied(world["alice"].arn, "NoSuchRole")


def test_trusting_the_account_delegates_to_identity_policies(world):
    assume(world, "erin", "Delegated")  # her identity policy allows sts:AssumeRole on the role
    with pytest.raises(ClientError) as info:
        assume(world, "bob", "Delegated")
    assert sts_error(info) == denied(world["bob"].arn, "Delegated")


def test_cross_account_needs_trust_external_id_and_identity_policy(world):
    out = assume(world, "carol", "Ext", "carol", ExternalId="shared-secret-42")
    assert out["AssumedRoleUser"]["Arn"] == assumed_arn(ACCT_A, "Ext", "carol")
    _, kms = session_clients(world, out["Credentials"])
    assert kms.list_keys()["ResponseMetadata"]["HTTPStatusCode"] == 200
    for external_id in ("wrong-secret", None):
        with pytest.raises(ClientError) as info:
            assume(world, "carol", "Ext", **({"ExternalId": external_id} if external_id else {}))
        assert sts_error(info) == denied(world["carol"].arn, "Ext")
    with pytest.raises(ClientError) as info:  # trusted account, but no identity policy allows
        assume(world, "dave", "Ext", ExternalId="shared-secret-42")
    assert sts_error(info) == denied(world["dave"].arn, "Ext")


def test_session_tags_need_tag_session(world):
    out = assume(world, "alice", "Tagged", Tags=[{"Key": "team", "Value": "blue"}])
    assert out["PackedPolicySize"] >= 1
    with pytest.raises(ClientError) as info:
        assume(world, "alice", "App", Tags=[{"Key": "team", "Value": "blue"}])
    assert sts_error(info) == denied(world["alice"].arn, "App", "sts:TagSession")


# --- session policies ------------------------------------------------------------------------------
def test_inline_session_policy_narrows(world):
    only_list = policy({"Effect": "Allow", "Action": ["kms:ListKeys", "kms:DescribeKey"], "Resource": "*"})
    out = assume(world, "alice", "App", "narrow", Policy=only_list)
    _, kms = session_clients(world, out["Credentials"])
    kms.list_keys()
    with pytest.raises(ClientError) as info:
        kms.create_key()
    shown = assumed_arn(ACCT_A, "App", "narrow")
    assert error_of(info) == ("AccessDeniedException",
                              f"User: {shown} is not authorized to perform: kms:CreateKey on resource: * "
                              "because no session policy allows the kms:CreateKey action")


def test_session_policy_cannot_widen(world):
    everything = policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    out = assume(world, "alice", "KeyUser", "wide", Policy=everything)  # the role itself may do nothing
    _, kms = session_clients(world, out["Credentials"])
    with pytest.raises(ClientError) as info:
        kms.list_keys()
    assert error_of(info)[0] == "AccessDeniedException"
    assert assumed_arn(ACCT_A, "KeyUser", "wide") in error_of(info)[1]


def test_managed_session_policy(world):
    out = assume(world, "alice", "App", PolicyArns=[{"arn": world.managed}])
    _, kms = session_clients(world, out["Credentials"])
    kms.list_keys()
    with pytest.raises(ClientError) as info:
        kms.create_key()
    assert "because no session policy allows the kms:CreateKey action" in error_of(info)[1]
    missing = f"arn:aws:iam::{ACCT_A}:policy/NoSuchPolicy"
    with pytest.raises(ClientError) as info:
        assume(world, "alice", "App", PolicyArns=[{"arn": missing}])
    assert sts_error(info) == ("MalformedPolicyDocument",
                               f"Policy {missing} does not exist or is not attachable.", 400)


def test_malformed_session_policy(world):
    with pytest.raises(ClientError) as info:
        assume(world, "alice", "App", Policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}')
    code, _, status = sts_error(info)
    assert (code, status) == ("MalformedPolicyDocument", 400)


def test_key_policy_naming_the_role_applies_to_its_sessions(world):
    role = role_arn(ACCT_A, "KeyUser")
    key_policy = policy(
        {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_A}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "role", "Effect": "Allow", "Principal": {"AWS": role}, "Action": ["kms:Encrypt", "kms:Decrypt"],
         "Resource": "*"})
    key_id = world.admin.kms.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]
    _, kms = session_clients(world, assume(world, "alice", "KeyUser", "by-key-policy")["Credentials"])
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    # A session policy still narrows what a key policy naming the role allows.
    decrypt_only = policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    _, narrow = session_clients(world, assume(world, "alice", "KeyUser", "narrow", Policy=decrypt_only)["Credentials"])
    assert narrow.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    with pytest.raises(ClientError) as info:
        narrow.encrypt(KeyId=key_id, Plaintext=b"x")
    key_arn = f"arn:aws:kms:{REGION}:{ACCT_A}:key/{key_id}"
    assert error_of(info) == ("AccessDeniedException",
                              f"User: {assumed_arn(ACCT_A, 'KeyUser', 'narrow')} is not authorized to perform: "
                              f"kms:Encrypt on resource: {key_arn} because no session policy allows the kms:Encrypt "
                              "action")


# --- GetSessionToken, role chaining, durations -----------------------------------------------------------
def test_get_session_token_acts_as_the_user(world):
    erin = world["erin"]
    creds = erin.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    sts, _ = session_clients(world, creds)
    assert sts.get_caller_identity()["Arn"] == erin.arn
    # its identity policy still applies: she may assume Delegated, and that is not role chaining
    # (beyond an hour, within the role's MaxSessionDuration, set with the IAM API: docs/iam.md)
    world.admin.client("iam").update_role(RoleName="Delegated", MaxSessionDuration=7200)
    out = sts.assume_role(RoleArn=role_arn(ACCT_A, "Delegated"), RoleSessionName="via-token", DurationSeconds=7200)
    assert out["AssumedRoleUser"]["Arn"] == assumed_arn(ACCT_A, "Delegated", "via-token")
    with pytest.raises(ClientError) as info:
        sts.get_session_token()
    assert sts_error(info) == ("AccessDenied", "Cannot call GetSessionToken with session credentials", 403)


def test_role_chaining(world):
    app_sts, _ = session_clients(world, assume(world, "alice", "App", "first")["Credentials"])
    out = app_sts.assume_role(RoleArn=role_arn(ACCT_A, "Chain"), RoleSessionName="second")
    chained_sts, _ = session_clients(world, out["Credentials"])
    assert chained_sts.get_caller_identity()["Arn"] == assumed_arn(ACCT_A, "Chain", "second")
    with pytest.raises(ClientError) as info:
        app_sts.assume_role(RoleArn=role_arn(ACCT_A, "Chain"), RoleSessionName="long", DurationSeconds=7200)
    assert sts_error(info) == ("ValidationError", CHAINED, 400)
    with pytest.raises(ClientError) as info:  # a role session cannot get a session token either
        app_sts.get_session_token()
    assert sts_error(info)[0] == "AccessDenied"


@pytest.mark.parametrize("body, message", [
    ("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=100",
     "1 validation error detected: Value '100' at 'durationSeconds' failed to satisfy constraint: "
     "Member must have value greater than or equal to 900"),
    ("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=129601",
     "1 validation error detected: Value '129601' at 'durationSeconds' failed to satisfy constraint: "
     "Member must have value less than or equal to 129600"),
    (f"Action=AssumeRole&Version=2011-06-15&RoleArn={urllib.parse.quote(role_arn(ACCT_A, 'App'))}"
     "&RoleSessionName=s1&DurationSeconds=43201",
     "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: "
     "Member must have value less than or equal to 43200"),
    ("Action=AssumeRole&Version=2011-06-15&RoleSessionName=a",
     "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; "
     "Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"),
])
def test_validation_errors(world, body, message):
    alice = world["alice"]
    status, headers, raw = sts_post(world.server, alice.access_key, alice.secret, body.encode())
    assert status == 400 and headers["content-type"] == "text/xml"
    error = xml_error(raw)
    assert (error["Type"], error["Code"], error["Message"]) == ("Sender", "ValidationError", message)


def test_tag_validation_uses_the_model_pattern(world):
    with pytest.raises(ClientError) as info:
        assume(world, "alice", "Tagged", Tags=[{"Key": "bad!key", "Value": "v"}])
    assert sts_error(info) == ("ValidationError", "1 validation error detected: Value 'bad!key' at 'tags.1.member.key' "
                               "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                               "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", 400)


# --- tokens: expiry, tampering -----------------------------------------------------------------------
def test_expiry_by_the_service_clock(world):
    creds = assume(world, "alice", "App", "short", DurationSeconds=900)["Credentials"]
    sts, kms = session_clients(world, creds)
    kms.list_keys()
    world.server.move_clock(advance_seconds=901)
    with pytest.raises(ClientError) as info:
        kms.list_keys()
    assert error_of(info) == ("ExpiredTokenException", EXPIRED)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert sts_error(info) == ("ExpiredToken", EXPIRED, 403)


def test_tampered_and_unknown_tokens(world):
    creds = dict(assume(world, "alice", "App")["Credentials"])
    token = creds["SessionToken"]
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "FwoGZXIvYXdzEXAMPLE"):
        sts, kms = session_clients(world, {**creds, "SessionToken": bad})
        with pytest.raises(ClientError) as info:
            kms.list_keys()
        assert error_of(info) == ("UnrecognizedClientException", UNRECOGNIZED)
        with pytest.raises(ClientError) as info:
            sts.get_caller_identity()
        assert sts_error(info) == ("InvalidClientTokenId", UNRECOGNIZED, 403)
    # a temporary key without its token, and a long-term key with a token, are both unknown
    bare = world.server.client("kms", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"])
    with pytest.raises(ClientError) as info:
        bare.list_keys()
    assert error_of(info) == ("UnrecognizedClientException", UNRECOGNIZED)
    alice = world["alice"]
    with_token = world.server.client("kms", access_key=alice.access_key, secret_key=alice.secret, session_token=token)
    with pytest.raises(ClientError) as info:
        with_token.list_keys()
    assert error_of(info) == ("UnrecognizedClientException", UNRECOGNIZED)
    # the right token with the wrong secret: a signature mismatch
    _, wrong_secret = session_clients(world, {**creds, "SecretAccessKey": "x" * 40})
    with pytest.raises(ClientError) as info:
        wrong_secret.list_keys()
    assert error_of(info)[0] == "InvalidSignatureException"


def second_node(server: TrentdServer) -> TrentdServer:
    """Another node over ``server``'s store (its database, or its data dir)."""
    return TrentdServer(dev=False, account=ACCT_A, data_dir=server.data_dir, database=server.database,
                        root_key_file=server.root_key_file)


def session_args(creds: dict) -> dict:
    """``TrentdServer.client`` arguments for temporary credentials as STS answers them."""
    return dict(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                session_token=creds["SessionToken"], region=REGION)


def test_credentials_work_on_another_node(world):
    """Sessions live in the store: a second node over the same store knows them at once."""
    creds = assume(world, "alice", "App", "node-one")["Credentials"]
    with second_node(world.server) as other:
        args = session_args(creds)
        assert other.client("sts", **args).get_caller_identity()["Arn"] == assumed_arn(ACCT_A, "App", "node-one")
        other.client("kms", **args).list_keys()


# --- audit ---------------------------------------------------------------------------------------------
def audit_events(server) -> list[dict]:
    out = []
    for path in sorted((server.data_dir / "audit").glob("*.jsonl")):
        out.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return out


def test_audit_shows_the_session_and_never_its_secrets(world):
    out = assume(world, "alice", "App", "audited")
    creds = out["Credentials"]
    _, kms = session_clients(world, creds)
    request_id = kms.list_keys()["ResponseMetadata"]["RequestId"]
    events = audit_events(world.server)
    event = next(e for e in events if e["requestID"] == request_id)
    ident = event["userIdentity"]
    role = role_arn(ACCT_A, "App")
    assert ident["type"] == "AssumedRole" and ident["arn"] == assumed_arn(ACCT_A, "App", "audited")
    assert ident["accessKeyId"] == creds["AccessKeyId"] and ident["accountId"] == ACCT_A
    assert ident["principalId"] == out["AssumedRoleUser"]["AssumedRoleId"]
    issuer = ident["sessionContext"]["sessionIssuer"]
    assert issuer == {"type": "Role", "principalId": out["AssumedRoleUser"]["AssumedRoleId"].split(":")[0],
                      "arn": role, "accountId": ACCT_A, "userName": "App"}
    attributes = ident["sessionContext"]["attributes"]
    assert attributes["mfaAuthenticated"] == "false" and attributes["creationDate"].endswith("Z")
    assume_event = next(e for e in events if e["requestID"] == out["ResponseMetadata"]["RequestId"])
    assert assume_event["eventSource"] == "sts.amazonaws.com" and assume_event["eventName"] == "AssumeRole"
    assert assume_event["requestParameters"] == {"roleArn": role, "roleSessionName": "audited"}
    everything = "".join(p.read_text() for p in (world.server.data_dir / "audit").glob("*.jsonl"))
    everything += world.server.logs()
    assert creds["SessionToken"] not in everything and creds["SecretAccessKey"] not in everything


# --- the AWS CLI ----------------------------------------------------------------------------------------
def aws(server, tmp_path: Path, env: dict, *args: str) -> dict:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
            "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds"), "AWS_EC2_METADATA_DISABLED": "true"}
    cli = Path(sys.executable).with_name("aws")
    result = subprocess.run([sys.executable, str(cli), "--endpoint-url", server.url, *args, "--output", "json"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**base, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_aws_cli_assume_role_then_encrypt(world, tmp_path):
    alice = world["alice"]
    out = aws(world.server, tmp_path, {"AWS_ACCESS_KEY_ID": alice.access_key, "AWS_SECRET_ACCESS_KEY": alice.secret},
              "sts", "assume-role", "--role-arn", role_arn(ACCT_A, "App"), "--role-session-name", "cli")
    creds = out["Credentials"]
    session_env = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                   "AWS_SESSION_TOKEN": creds["SessionToken"]}
    who = aws(world.server, tmp_path, session_env, "sts", "get-caller-identity")
    assert who["Arn"] == assumed_arn(ACCT_A, "App", "cli")
    key_id = world.admin.kms.create_key(
        Policy=policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_A}:root"}, "Action": "kms:*",
                       "Resource": "*"}))["KeyMetadata"]["KeyId"]
    (tmp_path / "plain.txt").write_bytes(b"hello from a role session")
    encrypted = aws(world.server, tmp_path, session_env, "kms", "encrypt", "--key-id", key_id,
                    "--plaintext", f"fileb://{tmp_path / 'plain.txt'}")
    assert encrypted["KeyId"].endswith(key_id)


# --- admin commands -----------------------------------------------------------------------------------------
def test_put_trust_policy_is_validated(world):
    app = role_arn(ACCT_A, "App")
    bad = [
        "{not json",
        policy({"Effect": "Allow", "Principal": {"AWS": world["alice"].arn}, "Action": "sts:AssumeRole",
                "Resource": "*"}),  # trust policies have no Resource
        trust(f"arn:aws:iam::{ACCT_A}:user/nobody-by-that-name"),  # principals must exist
    ]
    for document in bad:
        result = world.put_trust(app, document, check=False)
        assert result.returncode != 0 and "MalformedPolicyDocument" in result.stderr, result.stderr
    result = world.put_trust(world["alice"].arn, trust(world["bob"].arn), check=False)
    assert result.returncode != 0 and "not a role" in result.stderr
    listed = world.cli("policies", "list")["Policies"]
    assert {"Arn": world.managed, "Account": ACCT_A} in listed


# --- --dev mode ---------------------------------------------------------------------------------------------
def test_dev_mode_sessions(trentd_server, account):
    admin_sts = trentd_server.client("sts", access_key=account, secret_key="any")
    out = admin_sts.assume_role(RoleArn=role_arn(account, "AnyRole"), RoleSessionName="dev")
    dev_world = type("DevWorld", (), {"server": trentd_server})()
    sts, kms = session_clients(dev_world, out["Credentials"])
    assert sts.get_caller_identity()["Arn"] == assumed_arn(account, "AnyRole", "dev")
    kms.create_key()  # a dev role session has the administrator's permissions...
    only_list = policy({"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"})
    narrow = admin_sts.assume_role(RoleArn=role_arn(account, "AnyRole"), RoleSessionName="narrow", Policy=only_list)
    _, narrow_kms = session_clients(dev_world, narrow["Credentials"])
    narrow_kms.list_keys()
    with pytest.raises(ClientError) as info:  # ...narrowed by its session policies
        narrow_kms.create_key()
    assert "because no session policy allows the kms:CreateKey action" in error_of(info)[1]
    # an unknown token is ignored in dev mode: the caller is its account's administrator
    stranger = trentd_server.client("sts", access_key=account, secret_key="any", session_token="not-a-token")
    assert stranger.get_caller_identity()["Arn"] == f"arn:aws:iam::{account}:user/admin"
