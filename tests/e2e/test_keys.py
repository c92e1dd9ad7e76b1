"""Key lifecycle over HTTP: CreateKey, DescribeKey, ListKeys, Enable/Disable, descriptions,
deletion (with a moved clock), persistence across restarts, and the data dir at rest."""

from __future__ import annotations

import datetime as dt
import random
import re
import sqlite3
import stat
from contextlib import closing

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trentd.store.rootkey import aad_for
from trentd.testing.server import TrentdServer

from ..helpers import fails, key_arn, server_now, user_aliases

REGION = "us-east-1"
DAY = 86_400
MISSING = "00000000-0000-4000-8000-000000000000"
KEY_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
BASE_MEMBERS = {"AWSAccountId", "KeyId", "Arn", "CreationDate", "Enabled", "Description", "KeyUsage", "KeyState",
                "Origin", "KeyManager", "CustomerMasterKeySpec", "KeySpec", "MultiRegion"}
SYMMETRIC_MEMBERS = BASE_MEMBERS | {"EncryptionAlgorithms", "CurrentKeyMaterialId"}
DEFAULT_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::%s:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"""


# --- CreateKey ------------------------------------------------------------------------------
def test_create_key_defaults_have_exactly_the_aws_members(kms, account, trentd_server):
    meta = kms.create_key()["KeyMetadata"]
    assert set(meta) == SYMMETRIC_MEMBERS
    assert KEY_ID_RE.fullmatch(meta["KeyId"])
    assert meta["Arn"] == key_arn(account, meta["KeyId"])
    assert re.fullmatch(r"[0-9a-f]{64}", meta["CurrentKeyMaterialId"])
    assert isinstance(meta["CreationDate"], dt.datetime) and meta["CreationDate"].tzinfo is not None
    assert abs(meta["CreationDate"].timestamp() - server_now(trentd_server)) < 10
    fixed = {k: v for k, v in meta.items() if k not in ("KeyId", "Arn", "CurrentKeyMaterialId", "CreationDate")}
    assert fixed == {
        "AWSAccountId": account, "Enabled": True, "Description": "", "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled", "Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "MultiRegion": False,
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
    }
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"] == meta


def test_create_key_stores_description_tags_and_policy_verbatim(kms):
    policy = '{ "Statement":[{"Effect" :"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}] ,\n\t"Id":"é"}'
    tags = [{"TagKey": "team", "TagValue": "crypto"}, {"TagKey": "env", "TagValue": ""}]
    meta = kms.create_key(Description="payments key ü", Tags=tags, Policy=policy)["KeyMetadata"]
    assert meta["Description"] == "payments key ü"
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Description"] == "payments key ü"
    assert sorted(kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"], key=lambda t: t["TagKey"]) == sorted(
        tags, key=lambda t: t["TagKey"])
    assert kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"] == policy


def test_default_key_policy_is_worded_and_laid_out_as_aws(kms, account, key_id):
    got = kms.get_key_policy(KeyId=key_id, PolicyName="default")
    assert (got["Policy"], got["PolicyName"]) == (DEFAULT_POLICY % account, "default")


@pytest.mark.parametrize("kwargs, spec, usage, algorithms", [
    ({"CustomerMasterKeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "HMAC_256", "GENERATE_VERIFY_MAC",
     {"MacAlgorithms": ["HMAC_SHA_256"]}),
    ({"KeySpec": "HMAC_512", "KeyUsage": "GENERATE_VERIFY_MAC"}, "HMAC_512", "GENERATE_VERIFY_MAC",
     {"MacAlgorithms": ["HMAC_SHA_512"]}),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, "ECC_NIST_P256", "SIGN_VERIFY",
     {"SigningAlgorithms": ["ECDSA_SHA_256"]}),
    ({"KeySpec": "ECC_NIST_P384", "KeyUsage": "KEY_AGREEMENT"}, "ECC_NIST_P384", "KEY_AGREEMENT",
     {"KeyAgreementAlgorithms": ["ECDH"]}),
    ({"CustomerMasterKeySpec": "SYMMETRIC_DEFAULT"}, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT",
     {"EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]}),
])
def test_key_spec_and_its_legacy_alias(kms, kwargs, spec, usage, algorithms):
    meta = kms.create_key(**kwargs)["KeyMetadata"]
    assert (meta["KeySpec"], meta["CustomerMasterKeySpec"], meta["KeyUsage"]) == (spec, spec, usage)
    extra = {"CurrentKeyMaterialId"} if spec == "SYMMETRIC_DEFAULT" else set()
    assert set(meta) == BASE_MEMBERS | set(algorithms) | extra
    assert {k: meta[k] for k in algorithms} == algorithms


@pytest.mark.parametrize("kwargs, code, message", [
    ({"KeySpec": "HMAC_256"}, "ValidationException",
     "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."),
    ({"KeySpec": "ECC_NIST_P256"}, "ValidationException",
     "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."),
    ({"KeySpec": "HMAC_256", "KeyUsage": "ENCRYPT_DECRYPT"}, "ValidationException",
     "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec HMAC_256"),
    ({"KeyUsage": "SIGN_VERIFY"}, "ValidationException",
     "KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT"),
    ({"KeySpec": "ECC_SECG_P256K1", "KeyUsage": "KEY_AGREEMENT"}, "ValidationException",
     "KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_SECG_P256K1"),
    ({"KeySpec": "HMAC_256", "CustomerMasterKeySpec": "HMAC_384", "KeyUsage": "GENERATE_VERIFY_MAC"},
     "ValidationException", "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
                            "CustomerMasterKeySpec is deprecated."),
    ({"Description": "d" * 8193}, "ValidationException",
     f"1 validation error detected: Value '{'d' * 8193}' at 'description' failed to satisfy constraint: "
     "Member must have length less than or equal to 8192"),
    ({"Policy": "not json"}, "MalformedPolicyDocumentException", "Syntax errors in policy."),
])
def test_create_key_refusals_create_nothing(raw_kms, kwargs, code, message):
    assert fails(raw_kms.create_key, **kwargs) == (code, message)
    assert raw_kms.list_keys()["Keys"] == []


@pytest.mark.parametrize("member, path, shape", [("KeySpec", "keySpec", "KeySpec"),
                                                 ("KeyUsage", "keyUsage", "KeyUsageType")])
def test_create_key_enum_validation(raw_kms, member, path, shape):
    code, message = fails(raw_kms.create_key, **{member: "FOO"})
    prefix = f"1 validation error detected: Value 'FOO' at '{path}' failed to satisfy constraint: " \
             "Member must satisfy enum value set: ["
    assert code == "ValidationException" and message.startswith(prefix) and message.endswith("]")
    assert set(message[len(prefix):-1].split(", ")) == set(raw_kms.meta.service_model.shape_for(shape).enum)


# --- DescribeKey and identifiers ------------------------------------------------------------
@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias_arn"])
def test_describe_key_by_every_identifier(kms, account, key_id, form):
    kms.create_alias(AliasName="alias/describe-me", TargetKeyId=key_id)
    ident = {"id": key_id, "arn": key_arn(account, key_id), "alias": "alias/describe-me",
             "alias_arn": f"arn:aws:kms:{REGION}:{account}:alias/describe-me"}[form]
    meta = kms.describe_key(KeyId=ident)["KeyMetadata"]
    assert (meta["KeyId"], meta["Arn"]) == (key_id, key_arn(account, key_id))


ARN = "arn:aws:kms:us-east-1:{account}:"
NO_KEY = "Key '" + ARN + "key/{id}' does not exist"


@pytest.mark.parametrize("ident, message", [
    ("x", "Invalid keyId 'x'"), ("1234", "Invalid keyId '1234'"),
    (MISSING, NO_KEY.replace("{id}", MISSING)), (ARN + "key/" + MISSING, NO_KEY.replace("{id}", MISSING)),
    ("mrk-" + "0" * 32, NO_KEY.replace("{id}", "mrk-" + "0" * 32)),
    ("arn:aws:kms:eu-west-1:{account}:key/{key_id}", "Invalid arn eu-west-1"),
    ("alias/nope", "Alias " + ARN + "alias/nope is not found."),
    (ARN + "alias/nope", "Alias " + ARN + "alias/nope is not found."),
])
def test_identifier_errors(kms, account, key_id, ident, message):
    assert fails(kms.describe_key, KeyId=ident.format(account=account, key_id=key_id)) == (
        "NotFoundException", message.format(account=account))


def test_key_of_another_account_is_not_found_by_id(kms, trentd_server, account):
    other = trentd_server.client(access_key=str(random.randrange(10**11, 10**12)), secret_key="x")
    other_id = other.create_key()["KeyMetadata"]["KeyId"]
    assert fails(kms.describe_key, KeyId=other_id) == (
        "NotFoundException", f"Key '{key_arn(account, other_id)}' does not exist")


@pytest.mark.parametrize("op, kwargs", [
    ("enable_key", {}), ("disable_key", {}), ("update_key_description", {"Description": "d"}),
    ("schedule_key_deletion", {}), ("cancel_key_deletion", {}), ("list_resource_tags", {}),
    ("tag_resource", {"Tags": [{"TagKey": "k", "TagValue": "v"}]}), ("get_key_policy", {"PolicyName": "default"}),
])
@pytest.mark.parametrize("arn_form", [False, True])
def test_alias_refused_on_key_id_only_operations(kms, account, key_id, op, kwargs, arn_form):
    kms.create_alias(AliasName="alias/only-ids", TargetKeyId=key_id)
    alias = f"arn:aws:kms:{REGION}:{account}:alias/only-ids" if arn_form else "alias/only-ids"
    assert fails(getattr(kms, op), KeyId=alias, **kwargs) == (
        "InvalidArnException", "Key Aliases are not supported for this operation.")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Description"]) == ("Enabled", "test key")
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []


# --- ListKeys -------------------------------------------------------------------------------
def test_list_keys_pages_through_exactly_the_accounts_keys(kms, account):
    created = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7)}
    pages = [kms.list_keys(Limit=3)]
    while pages[-1]["Truncated"]:
        pages.append(kms.list_keys(Limit=3, Marker=pages[-1]["NextMarker"]))
    assert "NextMarker" not in pages[-1]
    assert [len(p["Keys"]) for p in pages] == [3, 3, 1]
    assert [p["Truncated"] for p in pages] == [True, True, False]
    listed = [k["KeyId"] for p in pages for k in p["Keys"]]
    assert sorted(listed) == sorted(created)
    assert all(k["KeyArn"] == key_arn(account, k["KeyId"]) for p in pages for k in p["Keys"])
    exact = kms.list_keys(Limit=7)
    assert (len(exact["Keys"]), exact["Truncated"], "NextMarker" in exact) == (7, False, False)


def test_list_keys_default_limit_is_100(kms):
    created = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(101)}
    first = kms.list_keys()
    assert (len(first["Keys"]), first["Truncated"]) == (100, True)
    second = kms.list_keys(Marker=first["NextMarker"])
    assert (len(second["Keys"]), second["Truncated"]) == (1, False)
    assert {k["KeyId"] for k in first["Keys"] + second["Keys"]} == created


@pytest.mark.parametrize("limit, phrase", [(0, "greater than or equal to 1"), (1001, "less than or equal to 1000")])
def test_list_keys_limit_validation(raw_kms, limit, phrase):
    assert fails(raw_kms.list_keys, Limit=limit) == (
        "ValidationException",
        f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have "
        f"value {phrase}")


@pytest.mark.parametrize("marker", ["!!!", "not-a-marker", "abc", "===="])
def test_list_keys_bad_marker(kms, key_id, marker):
    assert fails(kms.list_keys, Marker=marker) == ("InvalidMarkerException", "Invalid marker")


# --- the key states an operation accepts: a column of the operation table ---------------------
# Calls on one key, by operation (boto3 method, members besides KeyId), each harmless when accepted.
_ON_A_KEY = {
    "Encrypt": ("encrypt", {"Plaintext": b"x"}),
    "GenerateDataKey": ("generate_data_key", {"KeySpec": "AES_256"}),
    "DescribeKey": ("describe_key", {}),
    "GetKeyPolicy": ("get_key_policy", {"PolicyName": "default"}),
    "ListResourceTags": ("list_resource_tags", {}),
    "TagResource": ("tag_resource", {"Tags": [{"TagKey": "k", "TagValue": "v"}]}),
    "UpdateKeyDescription": ("update_key_description", {"Description": "d"}),
    "GetKeyRotationStatus": ("get_key_rotation_status", {}),
    "DisableKey": ("disable_key", {}),
}


@pytest.mark.parametrize("state", ["Disabled", "PendingDeletion"])
def test_the_rows_key_state_rule_is_what_answers(kms, account, key_id, state):
    from trentd.kms.api import OPERATIONS

    arn = key_arn(account, key_id)
    if state == "Disabled":
        kms.disable_key(KeyId=key_id)
    else:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    refused = set()
    for name, (method, kwargs) in _ON_A_KEY.items():
        rule = OPERATIONS[name].key_states
        if rule.accepts(state):
            getattr(kms, method)(KeyId=key_id, **kwargs)
        else:
            refusal = rule.refused[state]
            assert fails(getattr(kms, method), KeyId=key_id, **kwargs) == (
                refusal.code, refusal.message.format(arn=arn, origin="AWS_KMS")), name
            refused.add(name)
    if state == "Disabled":  # Encrypt refuses a disabled key, DescribeKey and TagResource accept it
        assert refused == {"Encrypt", "GenerateDataKey"}
    else:
        assert refused == {"Encrypt", "GenerateDataKey", "TagResource", "UpdateKeyDescription", "DisableKey"}
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == state


# --- Enable, disable, describe ----------------------------------------------------------------
def test_disable_enable_and_update_description(kms, account, key_id):
    arn = key_arn(account, key_id)
    for _ in range(2):  # disabling a disabled key is fine
        kms.disable_key(KeyId=key_id)
    meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    assert fails(kms.encrypt, KeyId=key_id, Plaintext=b"x") == ("DisabledException", f"{arn} is disabled.")
    kms.enable_key(KeyId=arn)
    kms.enable_key(KeyId=key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    assert kms.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"] == arn
    kms.update_key_description(KeyId=key_id, Description="renamed")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "renamed"
    kms.update_key_description(KeyId=arn, Description="")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == ""


# --- ScheduleKeyDeletion / CancelKeyDeletion ----------------------------------------------
@pytest.mark.parametrize("window", [None, 7, 30])
def test_schedule_key_deletion(kms, account, key_id, trentd_server, window):
    before = server_now(trentd_server)
    resp = kms.schedule_key_deletion(KeyId=key_id, **({"PendingWindowInDays": window} if window else {}))
    days = window or 30
    assert (resp["KeyId"], resp["KeyState"], resp["PendingWindowInDays"]) == (
        key_arn(account, key_id), "PendingDeletion", days)
    assert before + days * DAY - 1 <= resp["DeletionDate"].timestamp() <= server_now(trentd_server) + days * DAY + 1
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert set(meta) == SYMMETRIC_MEMBERS | {"DeletionDate"}
    assert (meta["KeyState"], meta["Enabled"], meta["DeletionDate"]) == (
        "PendingDeletion", False, resp["DeletionDate"])


@pytest.mark.parametrize("window, message", [
    (6, "PendingWindowInDays must be between 7 and 30"),
    (31, "PendingWindowInDays must be between 7 and 30"),
    (0, "1 validation error detected: Value '0' at 'pendingWindowInDays' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"),
    (366, "1 validation error detected: Value '366' at 'pendingWindowInDays' failed to satisfy constraint: "
          "Member must have value less than or equal to 365"),
])
def test_schedule_key_deletion_window_validation(raw_kms, key_id, window, message):
    assert fails(raw_kms.schedule_key_deletion, KeyId=key_id, PendingWindowInDays=window) == (
        "ValidationException", message)
    assert raw_kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.parametrize("op, kwargs", [
    ("schedule_key_deletion", {}), ("enable_key", {}), ("disable_key", {}),
    ("update_key_description", {"Description": "d"}), ("encrypt", {"Plaintext": b"secret"}),
    ("generate_data_key", {"KeySpec": "AES_256"}),
])
def test_pending_deletion_key_refuses(kms, account, key_id, op, kwargs):
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert fails(getattr(kms, op), KeyId=key_id, **kwargs) == (
        "KMSInvalidStateException", f"{key_arn(account, key_id)} is pending deletion.")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Description"]) == ("PendingDeletion", "test key")


@pytest.mark.parametrize("disable_first", [False, True])
def test_cancel_key_deletion_leaves_the_key_disabled(kms, account, key_id, disable_first):
    arn = key_arn(account, key_id)
    assert fails(kms.cancel_key_deletion, KeyId=key_id) == ("KMSInvalidStateException", f"{arn} is not pending deletion.")
    if disable_first:
        kms.disable_key(KeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id)
    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"] == arn
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"], "DeletionDate" in meta) == ("Disabled", False, False)
    assert fails(kms.cancel_key_deletion, KeyId=arn) == ("KMSInvalidStateException", f"{arn} is not pending deletion.")
    kms.enable_key(KeyId=key_id)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"back")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"back"


# --- Deletion when the window passes (a dedicated server whose clock we move) ---------------
@pytest.fixture
def clock_server(store_kind):
    with TrentdServer(store=store_kind) as server:
        yield server


def test_key_is_deleted_with_its_aliases_when_the_window_passes(clock_server):
    kms = clock_server.client()
    account = clock_server.account
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    later = kms.create_key()["KeyMetadata"]["KeyId"]
    keeper = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/doomed", TargetKeyId=doomed)
    kms.create_alias(AliasName="alias/keeper", TargetKeyId=keeper)
    kms.tag_resource(KeyId=doomed, Tags=[{"TagKey": "k", "TagValue": "v"}])
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    kms.schedule_key_deletion(KeyId=later, PendingWindowInDays=30)

    clock_server.move_clock(advance_seconds=7 * DAY - 3600)
    assert kms.describe_key(KeyId=doomed)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert {a["AliasName"] for a in user_aliases(kms)} == {"alias/doomed", "alias/keeper"}

    clock_server.move_clock(advance_seconds=2 * 3600)
    assert fails(kms.describe_key, KeyId=doomed) == (
        "NotFoundException", f"Key '{key_arn(account, doomed)}' does not exist")
    assert fails(kms.cancel_key_deletion, KeyId=doomed)[0] == "NotFoundException"
    assert fails(kms.encrypt, KeyId="alias/doomed", Plaintext=b"x") == (
        "NotFoundException", f"Alias arn:aws:kms:{REGION}:{account}:alias/doomed is not found.")
    assert [a["AliasName"] for a in user_aliases(kms)] == ["alias/keeper"]
    assert {k["KeyId"] for k in kms.list_keys()["Keys"]} == {later, keeper}
    assert kms.describe_key(KeyId=later)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.describe_key(KeyId=keeper)["KeyMetadata"]["KeyState"] == "Enabled"
    kms.create_alias(AliasName="alias/doomed", TargetKeyId=keeper)  # the name is free again
    assert kms.describe_key(KeyId="alias/doomed")["KeyMetadata"]["KeyId"] == keeper

    clock_server.move_clock(advance_seconds=30 * DAY)
    assert {k["KeyId"] for k in kms.list_keys()["Keys"]} == {keeper}


# --- Persistence and data at rest -----------------------------------------------------------
@pytest.fixture(scope="module")
def durable(store_kind):
    with TrentdServer(store=store_kind) as server:
        yield server


def test_everything_survives_a_restart(durable):
    kms = durable.client()
    policy = '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}'
    main = kms.create_key(Description="durable", Policy=policy,
                          Tags=[{"TagKey": "a", "TagValue": "1"}])["KeyMetadata"]["KeyId"]
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    pending = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=pending, PendingWindowInDays=10)
    kms.create_alias(AliasName="alias/durable", TargetKeyId=main)
    blob = kms.encrypt(KeyId="alias/durable", Plaintext=b"kept across restarts",
                       EncryptionContext={"purpose": "restart"})["CiphertextBlob"]
    before = {k: kms.describe_key(KeyId=k)["KeyMetadata"] for k in (main, disabled, pending)}
    aliases = kms.list_aliases()["Aliases"]

    durable.restart()
    kms = durable.client()
    assert {k: kms.describe_key(KeyId=k)["KeyMetadata"] for k in before} == before
    assert kms.list_aliases()["Aliases"] == aliases
    assert kms.list_resource_tags(KeyId=main)["Tags"] == [{"TagKey": "a", "TagValue": "1"}]
    assert kms.get_key_policy(KeyId=main, PolicyName="default")["Policy"] == policy
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "restart"})
    assert (out["Plaintext"], out["KeyId"]) == (b"kept across restarts", before[main]["Arn"])


def test_data_dir_secrets_are_0600(durable):
    for name in ("root.key", "admin-credentials"):
        assert stat.S_IMODE((durable.data_dir / name).stat().st_mode) == 0o600, name
    assert len((durable.data_dir / "root.key").read_bytes()) == 32


def test_sqlite_file_holds_only_wrapped_material(durable):
    if durable.kind != "sqlite":
        pytest.skip("only the SQLite store keeps its data in the data dir")
    kms = durable.client()
    plaintext = b"this exact plaintext must never reach the disk"
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key_id, Plaintext=plaintext)
    root = (durable.data_dir / "root.key").read_bytes()
    with closing(sqlite3.connect(f"file:{durable.data_dir / 'trentd.db'}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT account, key_id, material_id, wrapped FROM key_materials").fetchall()
    assert key_id in {r[1] for r in rows}
    materials = []
    for account, kid, material_id, wrapped in rows:
        wrapped = bytes(wrapped)
        # format 0x02 (file root key) | root-key id (4) | nonce (12) | ciphertext (32) and tag (16)
        assert (len(wrapped), wrapped[:1]) == (1 + 4 + 12 + 32 + 16, b"\x02")
        materials.append(AESGCM(root).decrypt(wrapped[5:17], wrapped[17:], aad_for(account, kid, material_id)))
    assert all(len(m) == 32 for m in materials)
    on_disk = b"".join(p.read_bytes() for p in durable.data_dir.glob("trentd.db*"))
    assert plaintext not in on_disk and root not in on_disk
    assert not [m for m in materials if m in on_disk]
    assert durable.admin_credentials()[1].encode() not in on_disk


# --- Normal (non-dev) mode -------------------------------------------------------------------
def test_secure_server_creates_keys_in_the_configured_account(secure_server):
    kms = secure_server.client()
    meta = kms.create_key(Description="secure")["KeyMetadata"]
    assert meta["AWSAccountId"] == "000000000000"
    assert meta["Arn"] == key_arn("000000000000", meta["KeyId"])
    assert kms.describe_key(KeyId=meta["Arn"])["KeyMetadata"]["Description"] == "secure"
    access_key, _ = secure_server.admin_credentials()
    assert fails(secure_server.client(access_key=access_key, secret_key="wrong").list_keys)[0] == \
        "InvalidSignatureException"
    assert fails(secure_server.client(access_key="AKIAIOSFODNN7EXAMPLE", secret_key="x").list_keys) == (
        "UnrecognizedClientException", "The security token included in the request is invalid.")
