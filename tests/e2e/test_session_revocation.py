"""Temporary credentials do not outlive their principal, and can be revoked while it stays.

- ``trentd principals delete`` ends the principal's STS sessions (GetSessionToken of a user,
  AssumeRole sessions of a role) and its console sessions: refused on every node within a second,
  and a principal made again under the same name does not bring them back.
- ``trentd sessions revoke --principal ARN [--issued-before T]`` attaches AWS's inline deny
  ``AWSRevokeOlderSessions`` (``DateLessThan aws:TokenIssueTime``): older sessions get
  AccessDenied on KMS and STS, newer ones and long-term keys keep working; the command is audited.

A non-dev server per store (authz_world), principals made with the admin CLI.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from botocore.exceptions import ClientError

from trentd.audit.chain import verify_files

from ..console.client import ConsoleClient
from ..helpers import error_of
from .authz_world import ACCT_A, REGION, XDENY_I, access_denied, policy
from .test_sts import (StsWorld, assume, assumed_arn, audit_events, role_arn, second_node, session_args,
                       session_clients, sts_error, trust)

UNRECOGNIZED = "The security token included in the request is invalid."
REVOKE_POLICY = "AWSRevokeOlderSessions"
PROPAGATION_SECONDS = 1.0  # DESIGN.md: a change reaches every node within a second
LIST_ONLY = policy({"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*"], "Resource": "*"})  # the console
KMS_AND_ASSUME = policy({"Effect": "Allow", "Action": ["kms:*", "sts:AssumeRole"], "Resource": "*"})


@pytest.fixture(scope="module")
def world(authz_server) -> StsWorld:
    w = StsWorld(authz_server)
    w.make_users([(ACCT_A, "alice", None), (ACCT_A, "frank", KMS_AND_ASSUME)])
    w.make_role(ACCT_A, "Target", trust(f"arn:aws:iam::{ACCT_A}:root"), None)
    return w


def key_for(world, *principals: str) -> str:
    """A key whose policy lets the account's administrators manage it and ``principals`` use it."""
    key_policy = policy(
        {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_A}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "users", "Effect": "Allow", "Principal": {"AWS": list(principals)},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"})
    return world.admin.kms.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]


def key_arn(key_id: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCT_A}:key/{key_id}"


def refused_within(seconds: float, call) -> ClientError:
    """The ClientError ``call`` raises once it fails, which must happen within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
        except ClientError as exc:
            return exc
        assert time.monotonic() < deadline, f"still accepted {seconds} s after the change"
        time.sleep(0.05)


def encrypting(kms, key_id: str):
    return lambda: kms.encrypt(KeyId=key_id, Plaintext=b"secret")


def code_and_message(exc: ClientError) -> tuple[str, str]:
    return exc.response["Error"]["Code"], exc.response["Error"]["Message"]


def new_user(world, name: str, identity_policy: str | None = None):
    return world.make_users([(ACCT_A, name, identity_policy)])[name]


# --- deleting a principal ends its sessions -------------------------------------------------------------
def test_deleting_a_user_ends_its_sts_and_console_sessions(world):
    dave = new_user(world, "dave", LIST_ONLY)
    key_id = key_for(world, dave.arn)
    creds = dave.client("sts").get_session_token()["Credentials"]
    sts, kms = session_clients(world, creds)
    kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    console = ConsoleClient(world.server)
    console.sign_in(dave.access_key, dave.secret)
    assert console.get("/console/keys").status_code == 200

    assert world.cli("principals", "delete", "--principal", dave.arn) == {"Deleted": dave.arn}
    exc = refused_within(PROPAGATION_SECONDS, encrypting(kms, key_id))
    assert code_and_message(exc) == ("UnrecognizedClientException", UNRECOGNIZED)
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert sts_error(info) == ("InvalidClientTokenId", UNRECOGNIZED, 403)
    response = console.get("/console/keys")
    assert response.status_code == 303 and response.headers["location"] == "/console/signin?msg=session-ended"

    # dave made again, with the same name: the key policy names him again, his old sessions stay dead
    again = new_user(world, "dave", LIST_ONLY)
    assert again.arn == dave.arn
    again.kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    with pytest.raises(ClientError) as info:
        kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    assert error_of(info) == ("UnrecognizedClientException", UNRECOGNIZED)


def test_deleting_a_role_ends_its_sessions(world):
    role = world.make_role(ACCT_A, "Leaving", trust(world["alice"].arn), None)
    key_id = key_for(world, role)
    _, kms = session_clients(world, assume(world, "alice", "Leaving", "before-delete")["Credentials"])
    kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    world.cli("principals", "delete", "--principal", role)
    exc = refused_within(PROPAGATION_SECONDS, encrypting(kms, key_id))
    assert code_and_message(exc) == ("UnrecognizedClientException", UNRECOGNIZED)
    world.make_role(ACCT_A, "Leaving", trust(world["alice"].arn), None)
    with pytest.raises(ClientError) as info:
        kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    assert error_of(info) == ("UnrecognizedClientException", UNRECOGNIZED)


def test_deleting_a_user_ends_its_sessions_on_every_node(world):
    """A second node over the same store, whose credential cache is warm when the user goes."""
    erik = new_user(world, "erik")
    key_id = key_for(world, erik.arn)
    creds = erik.client("sts").get_session_token()["Credentials"]
    server = world.server
    with second_node(server) as other:
        args = session_args(creds)
        here, there = server.client("kms", **args), other.client("kms", **args)
        for kms in (here, there):
            kms.encrypt(KeyId=key_id, Plaintext=b"secret")
        world.cli("principals", "delete", "--principal", erik.arn)
        started = time.monotonic()
        for kms in (there, here):
            exc = refused_within(PROPAGATION_SECONDS - (time.monotonic() - started), encrypting(kms, key_id))
            assert code_and_message(exc) == ("UnrecognizedClientException", UNRECOGNIZED)


# --- trentd sessions revoke --------------------------------------------------------------------------------
def revoke(world, arn: str, *extra: str) -> dict:
    return world.cli("sessions", "revoke", "--principal", arn, *extra)


def issued_before(out: dict) -> float:
    text = out["IssuedBefore"]
    assert text.endswith("Z")
    return datetime.fromisoformat(text).timestamp()


def test_revoking_a_role_s_sessions(world):
    role = world.make_role(ACCT_A, "Revoked", trust(world["alice"].arn),
                           policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}))
    key_id = key_for(world, role)
    old = assume(world, "alice", "Revoked", "old")
    old_sts, old_kms = session_clients(world, old["Credentials"])
    old_kms.encrypt(KeyId=key_id, Plaintext=b"secret")

    before = time.time()
    out = revoke(world, role)
    assert set(out) == {"Principal", "IssuedBefore"} and out["Principal"] == role
    assert before - 1 <= issued_before(out) <= time.time() + 1

    exc = refused_within(PROPAGATION_SECONDS, encrypting(old_kms, key_id))
    shown = assumed_arn(ACCT_A, "Revoked", "old")
    assert code_and_message(exc) == ("AccessDeniedException",
                                     access_denied(shown, "kms:Encrypt", key_arn(key_id), XDENY_I))
    # GetCallerIdentity needs no permission, and an explicit deny does not stop it (as in AWS)
    assert old_sts.get_caller_identity()["Arn"] == assumed_arn(ACCT_A, "Revoked", "old")
    # a session issued after the revocation works
    _, new_kms = session_clients(world, assume(world, "alice", "Revoked", "new")["Credentials"])
    blob = new_kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    assert new_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_revoking_a_user_s_sessions_keeps_its_access_keys(world):
    frank = world["frank"]
    key_id = key_for(world, frank.arn)
    old_sts, old_kms = session_clients(world, frank.client("sts").get_session_token()["Credentials"])
    old_kms.encrypt(KeyId=key_id, Plaintext=b"secret")

    out = revoke(world, frank.arn)
    assert out["Principal"] == frank.arn
    exc = refused_within(PROPAGATION_SECONDS, encrypting(old_kms, key_id))
    assert code_and_message(exc) == ("AccessDeniedException",
                                     access_denied(frank.arn, "kms:Encrypt", key_arn(key_id), XDENY_I))
    # every service the session can call: STS's AssumeRole too
    with pytest.raises(ClientError) as info:
        old_sts.assume_role(RoleArn=role_arn(ACCT_A, "Target"), RoleSessionName="after-revoke")
    assert sts_error(info) == ("AccessDenied", f"User: {frank.arn} is not authorized to perform: sts:AssumeRole "
                                               f"on resource: {role_arn(ACCT_A, 'Target')}", 403)
    # the long-term access key has no token issue time: the deny does not match it
    frank.kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    new_sts, new_kms = session_clients(world, frank.client("sts").get_session_token()["Credentials"])
    new_kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    new_sts.assume_role(RoleArn=role_arn(ACCT_A, "Target"), RoleSessionName="new-session")


def test_revoke_attaches_aws_s_policy_and_is_audited(world):
    gina = new_user(world, "gina")
    out = revoke(world, gina.arn, "--issued-before", "2026-06-27T14:00:00+02:00")
    assert out == {"Principal": gina.arn, "IssuedBefore": "2026-06-27T12:00:00Z"}
    expected = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-06-27T12:00:00Z"}}}]}
    events = [e for e in audit_events(world.server)
              if e["eventName"] == "PutUserPolicy" and e["requestParameters"].get("userName") == "gina"]
    assert len(events) == 1, events
    event = events[0]
    assert event["eventSource"] == "iam.amazonaws.com" and event["recipientAccountId"] == ACCT_A
    assert event["requestParameters"]["policyName"] == REVOKE_POLICY
    assert json.loads(event["requestParameters"]["policyDocument"]) == expected
    assert event["additionalEventData"] == {"command": "trentd sessions revoke",
                                            "issuedBefore": "2026-06-27T12:00:00Z"}
    assert event["userIdentity"]["invokedBy"] == "trentd admin command"
    # each admin command writes a hash-chained file of its own, which `trentd audit verify` accepts
    files = [p for p in (world.server.data_dir / "audit").glob("*.jsonl") if REVOKE_POLICY in p.read_text()]
    assert files
    report = verify_files(files)
    assert report.ok, report.as_dict()
    # and in the central trail, committed with the change
    central = world.cli("audit", "search", "--event", "PutUserPolicy", check=False)
    assert central.returncode == 0, central.stderr
    found = [json.loads(line) for line in central.stdout.splitlines()]
    assert [e["eventID"] for e in found if e["requestParameters"].get("userName") == "gina"] == [event["eventID"]]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "2026-06-27T14:00:00", ""])
def test_revoke_refuses_a_bad_time(world, value):
    result = world.cli("sessions", "revoke", "--principal", world["alice"].arn, "--issued-before", value,
                       check=False)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trentd: --issued-before: "), result.stderr
    assert not [e for e in audit_events(world.server)
                if e["eventName"] == "PutUserPolicy" and e["requestParameters"].get("userName") == "alice"]


def test_revoke_refuses_an_unknown_principal(world):
    result = world.cli("sessions", "revoke", "--principal", f"arn:aws:iam::{ACCT_A}:user/nobody", check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == f"trentd: no such principal: arn:aws:iam::{ACCT_A}:user/nobody"
