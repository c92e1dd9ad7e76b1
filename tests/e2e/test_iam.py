"""The IAM API (issue #25) through a running, non-dev trentd per store: boto3 and the AWS CLI v1
manage users and access keys; policies attached through IAM decide KMS calls; an inactive key is
refused everywhere; AWS's errors, quotas, paging and URL-encoded documents; the audit.

Roles, groups, managed policy versions and simulation: tests/e2e/test_iam_roles_groups.py.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from ..console.client import ConsoleClient
from ..helpers import code_of
from .authz_world import ACCT_A, REGION, World, policy
from .test_sts import audit_events, aws, second_node

ENCRYPT_ONLY = policy({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"})
INVALID_TOKEN = "The security token included in the request is invalid."


@pytest.fixture(scope="module")
def world(authz_server) -> World:
    return World(authz_server)


@pytest.fixture(scope="module")
def iam(world):
    return world.admin.client("iam")


@pytest.fixture(scope="module")
def key_id(world) -> str:
    """A key whose policy delegates to identity policies (the default key policy)."""
    return world.admin.kms.create_key()["KeyMetadata"]["KeyId"]


def failure(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    code, status = code_of(info.value)
    return code, info.value.response["Error"].get("Message", ""), status


def eventually(check, timeout: float = 3.0):
    """Poll ``check`` until it returns a truthy value (a change reaches every cache within ~1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def user_clients(world, iam, name: str):
    """A new user with an access key, and its KMS and IAM clients."""
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["UserName"] == name and key["Status"] == "Active" and key["AccessKeyId"].startswith("AKIA")
    make = lambda service: world.server.client(service, access_key=key["AccessKeyId"],  # noqa: E731
                                               secret_key=key["SecretAccessKey"], region=REGION)
    return key, make("kms"), make("iam")


def encrypt_outcome(kms, key_id: str) -> str:
    try:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
        return "allowed"
    except ClientError as exc:
        return exc.response["Error"]["Code"]


# --- the walk-through: user, key, policy, KMS ----------------------------------------------------
def test_user_key_policy_and_kms(world, iam, key_id):
    key, kms, user_iam = user_clients(world, iam, "walker")
    never = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    assert never["UserName"] == "walker" and never["AccessKeyLastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}
    before = time.time()
    assert encrypt_outcome(kms, key_id) == "AccessDeniedException"
    # A refused call is still a use of the key (it signed it): noted within about a second.
    used = eventually(lambda: iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
                      .get("LastUsedDate"))
    last = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    assert (last["ServiceName"], last["Region"]) == ("kms", REGION) and used.timestamp() >= int(before)
    arn = iam.create_policy(PolicyName="encrypt-only", PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{ACCT_A}:policy/encrypt-only"
    iam.attach_user_policy(UserName="walker", PolicyArn=arn)
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")
    code, message, _ = failure(kms.decrypt, CiphertextBlob=b"\x01" * 64)  # only Encrypt is allowed
    assert code in ("AccessDeniedException", "InvalidCiphertextException")

    iam.detach_user_policy(UserName="walker", PolicyArn=arn)
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "AccessDeniedException")

    # Inactive: refused on every service, as AWS refuses it; active again: works again.
    iam.attach_user_policy(UserName="walker", PolicyArn=arn)
    iam.update_access_key(UserName="walker", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    listed = iam.list_access_keys(UserName="walker")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key["AccessKeyId"], "Inactive")]
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "UnrecognizedClientException")
    assert failure(user_iam.get_user)[0:3] == ("InvalidClientTokenId", INVALID_TOKEN, 403)
    sts = world.server.client("sts", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"], region=REGION)
    assert failure(sts.get_caller_identity) == ("InvalidClientTokenId", INVALID_TOKEN, 403)
    iam.update_access_key(UserName="walker", AccessKeyId=key["AccessKeyId"], Status="Active")
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")
    # Authenticated again (GetUser needs iam:GetUser, even on oneself, as on AWS).
    assert failure(user_iam.get_user)[0] == "AccessDenied"

    # Delete with dependants, then without.
    assert failure(iam.delete_user, UserName="walker") == (
        "DeleteConflict", "Cannot delete entity, must delete access keys first.", 409)
    iam.delete_access_key(UserName="walker", AccessKeyId=key["AccessKeyId"])
    assert failure(iam.delete_user, UserName="walker") == (
        "DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
    assert failure(iam.delete_policy, PolicyArn=arn) == (
        "DeleteConflict", "Cannot delete a policy attached to entities.", 409)
    iam.detach_user_policy(UserName="walker", PolicyArn=arn)
    iam.put_user_policy(UserName="walker", PolicyName="inline", PolicyDocument=ENCRYPT_ONLY)
    assert failure(iam.delete_user, UserName="walker") == (
        "DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
    iam.delete_user_policy(UserName="walker", PolicyName="inline")
    iam.delete_user(UserName="walker")
    iam.delete_policy(PolicyArn=arn)
    assert failure(iam.get_user, UserName="walker") == (
        "NoSuchEntity", "The user with name walker cannot be found.", 404)
    assert failure(iam.get_policy, PolicyArn=arn) == ("NoSuchEntity", f"Policy {arn} was not found.", 404)
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "UnrecognizedClientException")


def test_identity_policies_authorize_iam_actions(world, iam):
    _, _, reader = user_clients(world, iam, "reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:GetUser", "Resource": f"arn:aws:iam::{ACCT_A}:user/admin"}))
    names = eventually(lambda: _names_or_none(reader))
    assert {"admin", "reader"} <= set(names)
    code, message, status = failure(reader.create_user, UserName="mallory")
    assert (code, status) == ("AccessDenied", 403)
    assert message == (f"User: arn:aws:iam::{ACCT_A}:user/reader is not authorized to perform: iam:CreateUser on "
                       f"resource: arn:aws:iam::{ACCT_A}:user/mallory because no identity-based policy allows the "
                       f"iam:CreateUser action")
    code, message, _ = failure(reader.get_user, UserName="admin")
    assert code == "AccessDenied" and message.endswith("with an explicit deny in an identity-based policy")
    assert failure(iam.get_user, UserName="mallory")[0] == "NoSuchEntity"


def test_conditions_on_iam_actions(world, iam):
    """aws:RequestTag/…, aws:TagKeys, aws:ResourceTag/… and iam:PolicyARN decide IAM calls."""
    _, _, delegate = user_clients(world, iam, "delegate")
    allowed_policy = f"arn:aws:iam::{ACCT_A}:policy/delegable"
    iam.create_policy(PolicyName="delegable", PolicyDocument=ENCRYPT_ONLY)
    iam.put_user_policy(UserName="delegate", PolicyName="scoped", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["iam:CreateUser", "iam:TagUser"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/team": "blue"}}},
        {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}}},
        {"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "*",
         "Condition": {"ArnEquals": {"iam:PolicyARN": allowed_policy}}}))
    blue = [{"Key": "team", "Value": "blue"}]
    assert eventually(lambda: _created(delegate, "made-blue", blue))
    assert failure(delegate.create_user, UserName="made-red", Tags=[{"Key": "team", "Value": "red"}])[0] == (
        "AccessDenied")
    assert failure(delegate.create_user, UserName="made-plain")[0] == "AccessDenied"
    assert delegate.get_user(UserName="made-blue")["User"]["Tags"] == blue
    iam.create_user(UserName="made-elsewhere")
    assert failure(delegate.get_user, UserName="made-elsewhere")[0] == "AccessDenied"
    delegate.attach_user_policy(UserName="made-blue", PolicyArn=allowed_policy)
    code, message, _ = failure(delegate.attach_user_policy, UserName="made-blue",
                               PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    assert code == "AccessDenied" and "iam:AttachUserPolicy" in message


def _created(client, name: str, tags: list) -> bool:
    try:
        client.create_user(UserName=name, Tags=tags)
        return True
    except ClientError:
        return False


def test_changes_reach_another_node(world, iam, key_id):
    """Two nodes over one store: a key made inactive on one is refused by the other within a second."""
    key, _, _ = user_clients(world, iam, "two-nodes")
    iam.put_user_policy(UserName="two-nodes", PolicyName="enc", PolicyDocument=ENCRYPT_ONLY)
    with second_node(world.server) as other:
        kms = other.client(access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"], region=REGION)
        assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")
        other_iam = other.client("iam", access_key=world.admin.access_key, secret_key=world.admin.secret)
        other_iam.update_access_key(UserName="two-nodes", AccessKeyId=key["AccessKeyId"], Status="Inactive")
        mine = world.server.client(access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"], region=REGION)
        assert eventually(lambda: encrypt_outcome(mine, key_id) == "UnrecognizedClientException", timeout=1.5)
        iam.update_access_key(UserName="two-nodes", AccessKeyId=key["AccessKeyId"], Status="Active")
        iam.delete_user_policy(UserName="two-nodes", PolicyName="enc")
        assert eventually(lambda: encrypt_outcome(kms, key_id) == "AccessDeniedException", timeout=1.5)


def _names_or_none(client):
    try:
        return [u["UserName"] for u in client.list_users()["Users"]]
    except ClientError:
        return None


# --- AWS's errors -----------------------------------------------------------------------------------------
def test_errors_as_aws_words_them(iam):
    iam.create_user(UserName="CaseUser")
    assert failure(iam.create_user, UserName="caseuser") == (
        "EntityAlreadyExists", "User with name caseuser already exists.", 409)
    assert iam.get_user(UserName="CASEUSER")["User"]["UserName"] == "CaseUser"
    assert failure(iam.put_user_policy, UserName="CaseUser", PolicyName="p", PolicyDocument="{not json")[::2] == (
        "MalformedPolicyDocument", 400)
    code, message, status = failure(iam.create_user, UserName="bad name!")
    assert (code, status) == ("ValidationError", 400) and "userName" in message
    code, message, status = failure(iam.get_account_summary)
    assert (code, message, status) == ("InvalidAction", "GetAccountSummary is not supported by trentd.", 400)
    assert failure(iam.get_user_policy, UserName="CaseUser", PolicyName="none") == (
        "NoSuchEntity", "The user policy with name none cannot be found.", 404)
    assert failure(iam.get_login_profile, UserName="CaseUser") == (
        "NoSuchEntity", "Login Profile for User CaseUser cannot be found.", 404)
    assert failure(iam.delete_access_key, UserName="CaseUser", AccessKeyId="AKIAAAAAAAAAAAAAAAAA") == (
        "NoSuchEntity", "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.", 404)
    for call in (iam.list_mfa_devices, iam.list_ssh_public_keys, iam.list_signing_certificates,
                 iam.list_service_specific_credentials):
        out = call(UserName="CaseUser")
        assert [v for k, v in out.items() if isinstance(v, list)] == [[]] and out["IsTruncated"] is False
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    iam.delete_user(UserName="CaseUser")


def test_any_region_is_accepted(world):
    for region in ("eu-west-3", "ap-southeast-2"):
        client = world.server.client("iam", access_key=world.admin.access_key, secret_key=world.admin.secret,
                                     region=region)
        assert client.get_user()["User"]["Arn"] == f"arn:aws:iam::{ACCT_A}:user/admin"


# --- quotas ---------------------------------------------------------------------------------------------
def test_quotas(iam):
    iam.create_user(UserName="quota")
    keys = [iam.create_access_key(UserName="quota")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    assert failure(iam.create_access_key, UserName="quota") == (
        "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
    arns = [iam.create_policy(PolicyName=f"quota-{i}", PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
            for i in range(11)]
    for arn in arns[:10]:
        iam.attach_user_policy(UserName="quota", PolicyArn=arn)
    assert failure(iam.attach_user_policy, UserName="quota", PolicyArn=arns[10]) == (
        "LimitExceeded", "Cannot exceed quota for PoliciesPerUser: 10", 409)
    assert len(iam.list_attached_user_policies(UserName="quota")["AttachedPolicies"]) == 10
    for _ in range(4):
        iam.create_policy_version(PolicyArn=arns[10], PolicyDocument=ENCRYPT_ONLY)
    assert failure(iam.create_policy_version, PolicyArn=arns[10], PolicyDocument=ENCRYPT_ONLY) == (
        "LimitExceeded", "A managed policy can have up to 5 versions. Before you create a new version, you must "
                         "delete an existing version.", 409)
    # Sizes: a user's inline policies together, a managed policy (whitespace not counted).
    big = policy({"Effect": "Allow", "Action": [f"kms:Action{i:04}" for i in range(130)], "Resource": "*"})
    assert 2048 < len(big) < 6144
    assert failure(iam.put_user_policy, UserName="quota", PolicyName="big", PolicyDocument=big) == (
        "LimitExceeded", "Maximum policy size of 2048 bytes exceeded for user quota", 409)
    huge = policy({"Effect": "Allow", "Action": [f"kms:Action{i:04}" for i in range(400)], "Resource": "*"})
    assert failure(iam.create_policy, PolicyName="huge", PolicyDocument=huge) == (
        "LimitExceeded", "Cannot exceed quota for PolicySize: 6144", 409)
    assert iam.list_user_policies(UserName="quota")["PolicyNames"] == []
    for arn in arns[:10]:
        iam.detach_user_policy(UserName="quota", PolicyArn=arn)
        iam.delete_policy(PolicyArn=arn)
    for key in keys:
        iam.delete_access_key(UserName="quota", AccessKeyId=key)
    iam.delete_user(UserName="quota")


def test_quotas_and_names_hold_under_concurrent_calls(iam):
    """Checked and written by one IAM writer per account at a time, on every engine."""
    iam.create_user(UserName="racer")
    with ThreadPoolExecutor(max_workers=6) as pool:
        keys = list(pool.map(lambda _: _outcome(iam.create_access_key, UserName="racer"), range(6)))
        users = list(pool.map(lambda i: _outcome(iam.create_user, UserName="Raced" if i % 2 else "raced"), range(6)))
    assert sorted(keys) == ["LimitExceeded"] * 4 + ["ok"] * 2
    assert sorted(users) == ["EntityAlreadyExists"] * 5 + ["ok"]
    assert len(iam.list_access_keys(UserName="racer")["AccessKeyMetadata"]) == 2


def _outcome(call, **kwargs) -> str:
    try:
        call(**kwargs)
        return "ok"
    except ClientError as exc:
        return exc.response["Error"]["Code"]


# --- paging -----------------------------------------------------------------------------------------------
def collect(call, member: str, **kwargs) -> list:
    """Every item, one per page (MaxItems=1), following Marker while IsTruncated."""
    items, marker, pages = [], None, 0
    while True:
        out = call(MaxItems=1, **kwargs, **({"Marker": marker} if marker else {}))
        items += out[member]
        pages += 1
        assert len(out[member]) <= 1
        if not out["IsTruncated"]:
            assert "Marker" not in out
            return items if pages == max(len(items), 1) else pytest.fail("a page too many")
        marker = out["Marker"]


def test_paging_of_every_list(iam):
    for i in range(3):
        iam.create_user(UserName=f"pager{i}", Path="/paging/", Tags=[{"Key": f"k{j}", "Value": "v"} for j in range(3)])
        iam.create_group(GroupName=f"pgroup{i}", Path="/paging/")
        iam.add_user_to_group(GroupName=f"pgroup{i}", UserName="pager0")
        iam.add_user_to_group(GroupName="pgroup0", UserName=f"pager{i}")
        iam.put_user_policy(UserName="pager0", PolicyName=f"p{i}", PolicyDocument=ENCRYPT_ONLY)
        arn = iam.create_policy(PolicyName=f"pager-policy{i}", Path="/paging/",
                                PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="pager0", PolicyArn=arn)
    for _ in range(2):
        iam.create_access_key(UserName="pager0")
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=ENCRYPT_ONLY)
    expected = [
        (iam.list_users, "Users", {"PathPrefix": "/paging/"}, 3),
        (iam.list_groups, "Groups", {"PathPrefix": "/paging/"}, 3),
        (iam.list_policies, "Policies", {"Scope": "Local", "PathPrefix": "/paging/"}, 3),
        (iam.list_user_tags, "Tags", {"UserName": "pager1"}, 3),
        (iam.list_groups_for_user, "Groups", {"UserName": "pager0"}, 3),
        (iam.get_group, "Users", {"GroupName": "pgroup0"}, 3),
        (iam.list_user_policies, "PolicyNames", {"UserName": "pager0"}, 3),
        (iam.list_attached_user_policies, "AttachedPolicies", {"UserName": "pager0"}, 3),
        (iam.list_access_keys, "AccessKeyMetadata", {"UserName": "pager0"}, 2),
        (iam.list_policy_versions, "Versions", {"PolicyArn": arn}, 3),
        (iam.list_policy_tags, "Tags", {"PolicyArn": arn}, 0),
        (iam.list_policies, "Policies", {"Scope": "AWS"}, 3),
    ]
    for call, member, kwargs, count in expected:
        whole = call(**kwargs)[member]
        assert len(whole) == count, (call, whole)
        assert collect(call, member, **kwargs) == whole
    users = iam.list_users(PathPrefix="/paging/", MaxItems=2)
    assert [u["UserName"] for u in users["Users"]] == ["pager0", "pager1"] and users["IsTruncated"] is True
    rest = iam.list_users(PathPrefix="/paging/", Marker=users["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["pager2"] and rest["IsTruncated"] is False
    assert failure(iam.list_users, Marker="not-a-marker")[::2] == ("InvalidInput", 400)
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v3", "v2", "v1"]


# --- documents are URL-encoded JSON on the wire -------------------------------------------------------------
def test_documents_are_url_encoded(iam):
    raw: dict = {}
    iam.meta.events.register("after-call.iam.*", lambda http_response, model, **_: raw.__setitem__(
        model.name, http_response.content.decode()))
    document = policy({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
                       "Condition": {"StringEquals": {"kms:EncryptionContext:team": "a b+c&d"}}})
    iam.create_user(UserName="encoded")
    iam.put_user_policy(UserName="encoded", PolicyName="p", PolicyDocument=document)
    out = iam.get_user_policy(UserName="encoded", PolicyName="p")
    assert out["PolicyDocument"] == json.loads(document)  # botocore decodes it
    assert f"<PolicyDocument>{urllib.parse.quote(document, safe='')}</PolicyDocument>" in raw["GetUserPolicy"]
    assert "%7B%22Version%22" in raw["GetUserPolicy"] and "a%20b%2Bc%26d" in raw["GetUserPolicy"]
    iam.delete_user_policy(UserName="encoded", PolicyName="p")
    iam.delete_user(UserName="encoded")


# --- rename, and the admin commands' view ---------------------------------------------------------------------
def test_rename_moves_everything_and_admin_commands_see_it(world, iam, key_id):
    key, kms, _ = user_clients(world, iam, "before")
    iam.put_user_policy(UserName="before", PolicyName="enc", PolicyDocument=ENCRYPT_ONLY)
    iam.tag_user(UserName="before", Tags=[{"Key": "team", "Value": "a"}])
    iam.update_user(UserName="before", NewUserName="after", NewPath="/moved/")
    after_arn = f"arn:aws:iam::{ACCT_A}:user/moved/after"
    user = iam.get_user(UserName="after")["User"]
    assert user["Arn"] == after_arn and user["Path"] == "/moved/" and user["Tags"] == [{"Key": "team", "Value": "a"}]
    assert iam.list_user_policies(UserName="after")["PolicyNames"] == ["enc"]
    assert iam.list_access_keys(UserName="after")["AccessKeyMetadata"][0]["AccessKeyId"] == key["AccessKeyId"]
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")  # the key acts as the renamed user
    assert failure(iam.get_user, UserName="before")[0] == "NoSuchEntity"
    listed = {p["Arn"]: p["Type"] for p in world.cli("principals", "list")["Principals"]}
    assert listed[after_arn] == "user"
    keys = world.cli("access-keys", "list", "--principal", after_arn)["AccessKeys"]
    assert keys == [{"AccessKeyId": key["AccessKeyId"], "Principal": after_arn}]

    # The other way round: made by the admin commands, seen and managed by the IAM API.
    arn = world.cli("principals", "create", "--account", ACCT_A, "--name", "from-cli")["Arn"]
    made = world.cli("access-keys", "create", "--principal", arn)
    assert iam.get_user(UserName="from-cli")["User"]["Arn"] == arn
    assert iam.list_access_keys(UserName="from-cli")["AccessKeyMetadata"][0]["AccessKeyId"] == made["AccessKeyId"]
    arn_policy = iam.create_policy(PolicyName="seen-by-cli", PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
    assert {"Arn": arn_policy, "Account": ACCT_A} in world.cli("policies", "list")["Policies"]


# --- one unique id everywhere, before and after a rename ------------------------------------------------------
def null_entity_id(server, arn: str) -> None:
    """What a row made before schema 12 holds: no stored id (the store itself, as every node reads it)."""
    sql = "UPDATE principals SET entity_id = NULL WHERE arn = '%s'" % arn.replace("'", "''")
    if server.database:
        import psycopg

        with psycopg.connect(server.database, autocommit=True) as conn:
            conn.execute(sql)
        return
    import sqlite3

    conn = sqlite3.connect(server.data_dir / "trentd.db")
    try:
        with conn:
            conn.execute(sql)
    finally:
        conn.close()


def ids_seen(world, iam, user_iam, sts, name: str) -> set[str]:
    """The user's id as GetUser, its own GetUser, GetCallerIdentity and the audit event show it."""
    got = iam.get_user(UserName=name)["User"]["UserId"]
    own = user_iam.get_user()
    me = sts.get_caller_identity()["UserId"]
    event = next(e for e in audit_events(world.server) if e["requestID"] == own["ResponseMetadata"]["RequestId"])
    return {got, own["User"]["UserId"], me, event["userIdentity"]["principalId"]}


@pytest.mark.parametrize("door", ["iam", "before-schema-12"])
def test_user_id_is_one_everywhere_and_survives_a_rename(world, iam, door):
    name = f"idu-{door}"
    if door == "iam":
        key, _, user_iam = user_clients(world, iam, name)
    else:  # made by the admin commands in a store upgraded from before the IAM API: no stored id
        arn = world.cli("principals", "create", "--account", ACCT_A, "--name", name)["Arn"]
        null_entity_id(world.server, arn)
        key = world.cli("access-keys", "create", "--principal", arn)
        key = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
        user_iam = world.server.client("iam", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"],
                                       region=REGION)
    sts = world.server.client("sts", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"], region=REGION)
    unique = iam.get_user(UserName=name)["User"]["UserId"]
    assert unique.startswith("AIDA") and len(unique) == 21
    # Its own GetUser is allowed only when aws:userid is that id.
    iam.put_user_policy(UserName=name, PolicyName="self", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*",
         "Condition": {"StringEquals": {"aws:userid": unique}}}))
    assert eventually(lambda: ids_seen(world, iam, user_iam, sts, name) == {unique})

    iam.update_user(UserName=name, NewUserName=f"{name}-renamed")
    assert eventually(lambda: sts.get_caller_identity()["Arn"].endswith(f"user/{name}-renamed"))
    assert ids_seen(world, iam, user_iam, sts, f"{name}-renamed") == {unique}
    # A new user with the old name is another user, with another id.
    again = iam.create_user(UserName=name)["User"]["UserId"]
    assert again != unique and again.startswith("AIDA")


def test_console_calls_carry_the_stored_id(world, iam):
    key, _, _ = user_clients(world, iam, "console-id")
    iam.put_user_policy(UserName="console-id", PolicyName="list", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey"], "Resource": "*"}))
    unique = iam.get_user(UserName="console-id")["User"]["UserId"]
    console = ConsoleClient(world.server)
    eventually(lambda: console.sign_in(key["AccessKeyId"], key["SecretAccessKey"], REGION))
    assert console.get("/console/keys").status_code == 200
    arn = f"arn:aws:iam::{ACCT_A}:user/console-id"
    made = [e for e in audit_events(world.server)
            if e["eventSource"] == "kms.amazonaws.com" and e["userIdentity"].get("arn") == arn]
    assert made and {e["userIdentity"]["principalId"] for e in made} == {unique}
    login = [e for e in audit_events(world.server) if e["eventName"] == "ConsoleLogin"
             and e["userIdentity"].get("arn") == arn]
    assert login and {e["userIdentity"]["principalId"] for e in login} == {unique}


# --- the audit ---------------------------------------------------------------------------------------------
def test_audit_events_and_no_secret(world, iam):
    out = iam.create_user(UserName="audited")
    key = iam.create_access_key(UserName="audited")
    events = audit_events(world.server)
    created = next(e for e in events if e["requestID"] == out["ResponseMetadata"]["RequestId"])
    assert created["eventSource"] == "iam.amazonaws.com" and created["eventName"] == "CreateUser"
    assert created["requestParameters"] == {"userName": "audited"} and created["responseElements"] is None
    assert created["readOnly"] is False and created["userIdentity"]["arn"] == world.admin.arn
    made = next(e for e in events if e["requestID"] == key["ResponseMetadata"]["RequestId"])
    assert made["eventName"] == "CreateAccessKey" and made["responseElements"] is None
    everything = "".join(p.read_text() for p in (world.server.data_dir / "audit").glob("*.jsonl"))
    everything += world.server.logs()
    assert key["AccessKey"]["SecretAccessKey"] not in everything
    failure(iam.get_user, UserName="nobody-here")  # a refused call is audited too
    missing = [e for e in audit_events(world.server) if e.get("errorCode") == "NoSuchEntity"]
    assert missing and missing[-1]["requestParameters"] == {"userName": "nobody-here"}


# --- the AWS CLI v1 --------------------------------------------------------------------------------------------
def test_aws_cli(world, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": world.admin.access_key, "AWS_SECRET_ACCESS_KEY": world.admin.secret}
    user = aws(world.server, tmp_path, env, "iam", "create-user", "--user-name", "cli-user")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCT_A}:user/cli-user"
    key = aws(world.server, tmp_path, env, "iam", "create-access-key", "--user-name", "cli-user")["AccessKey"]
    document = tmp_path / "policy.json"
    document.write_text(ENCRYPT_ONLY)
    aws(world.server, tmp_path, env, "iam", "put-user-policy", "--user-name", "cli-user", "--policy-name", "enc",
        "--policy-document", f"file://{document}")
    got = aws(world.server, tmp_path, env, "iam", "get-user-policy", "--user-name", "cli-user", "--policy-name", "enc")
    assert got["PolicyDocument"] == json.loads(ENCRYPT_ONLY)
    users = aws(world.server, tmp_path, env, "iam", "list-users")["Users"]
    assert "cli-user" in [u["UserName"] for u in users]
    aws(world.server, tmp_path, env, "iam", "update-access-key", "--user-name", "cli-user", "--access-key-id",
        key["AccessKeyId"], "--status", "Inactive")
    listed = aws(world.server, tmp_path, env, "iam", "list-access-keys", "--user-name", "cli-user")
    assert listed["AccessKeyMetadata"][0]["Status"] == "Inactive"
    aws(world.server, tmp_path, env, "iam", "delete-access-key", "--user-name", "cli-user", "--access-key-id",
        key["AccessKeyId"])
    aws(world.server, tmp_path, env, "iam", "delete-user-policy", "--user-name", "cli-user", "--policy-name", "enc")
    aws(world.server, tmp_path, env, "iam", "delete-user", "--user-name", "cli-user")


# --- --dev ------------------------------------------------------------------------------------------------------
def test_dev_mode_stores_but_enforces_nothing(trentd_server, account):
    iam = trentd_server.client("iam", access_key=account, secret_key="any")
    iam.create_user(UserName="dev-user")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["dev-user"]
    key = iam.create_access_key(UserName="dev-user")["AccessKey"]
    # Any key, this one too, acts as the account's administrator: nothing is enforced.
    kms = trentd_server.client(access_key=key["AccessKeyId"], secret_key="whatever")
    assert kms.create_key()["KeyMetadata"]["Arn"].startswith("arn:aws:kms:")


def test_dev_mode_administrator_id_is_one_everywhere(trentd_server):
    """--dev: any key acts as the account's administrator, made at first start; GetUser and
    GetCallerIdentity show it with one id."""
    args = dict(access_key=trentd_server.account, secret_key="any")
    admin = trentd_server.client("iam", **args).get_user(UserName="admin")["User"]
    assert trentd_server.client("sts", **args).get_caller_identity()["UserId"] == admin["UserId"]
