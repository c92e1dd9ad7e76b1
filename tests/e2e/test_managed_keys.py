"""AWS managed keys over HTTP: the predefined ``alias/aws/<service>`` aliases in ListAliases, the
key created on first use (KeyManager AWS, AWS's key policy, yearly rotation), and what no one may
do to it. The races (several workers, several nodes) are in test_scale_out.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ..helpers import fails, server_now

DAY = 86_400
SERVICES = ("acm", "dynamodb", "ebs", "elasticfilesystem", "es", "glue", "kinesisvideo", "lambda", "rds", "redshift",
            "s3", "secretsmanager", "ssm", "xray")
PREDEFINED = [f"alias/aws/{service}" for service in SERVICES]  # already in name order


def all_pages(kms, limit: int, **kwargs) -> list[dict]:
    """Every ListAliases page (its answer without ResponseMetadata), following NextMarker."""
    pages = []
    params = dict(kwargs, Limit=limit)
    while True:
        page = kms.list_aliases(**params)
        page.pop("ResponseMetadata")
        pages.append(page)
        if not page["Truncated"]:
            return pages
        params["Marker"] = page["NextMarker"]


def denied(account: str, key_arn: str, action: str) -> tuple[str, str]:
    message = (f"User: arn:aws:iam::{account}:user/admin is not authorized to perform: {action} on resource: "
               f"{key_arn} because no resource-based policy allows the {action} action")
    return "AccessDeniedException", message


def aws_policy(account: str, region: str, service: str, label: str, via: str) -> str:
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        f'  "Id" : "auto-{service}-2",\n'
        '  "Statement" : [ {\n'
        f'    "Sid" : "Allow access through {label} for all principals in the account that are authorized to use '
        f'{label}",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        '      "AWS" : "*"\n'
        "    },\n"
        '    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", '
        '"kms:DescribeKey" ],\n'
        '    "Resource" : "*",\n'
        '    "Condition" : {\n'
        '      "StringEquals" : {\n'
        f'        "kms:CallerAccount" : "{account}",\n'
        f'        "kms:ViaService" : "{via}.{region}.amazonaws.com"\n'
        "      }\n"
        "    }\n"
        "  }, {\n"
        '    "Sid" : "Allow direct access to key metadata to the account",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:aws:iam::{account}:root"\n'
        "    },\n"
        '    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )


# --- ListAliases ------------------------------------------------------------------------------
def test_a_fresh_account_lists_the_predefined_aliases_without_targets(kms, account):
    pages = all_pages(kms, 5)
    assert [[a["AliasName"] for a in p["Aliases"]] for p in pages] == [PREDEFINED[0:5], PREDEFINED[5:10],
                                                                      PREDEFINED[10:]]
    assert [p["Truncated"] for p in pages] == [True, True, False]
    assert all(set(p) == {"Aliases", "Truncated", "NextMarker"} for p in pages[:2]) and set(pages[2]) == {
        "Aliases", "Truncated"}
    entries = [a for p in pages for a in p["Aliases"]]
    assert entries == [{"AliasName": name, "AliasArn": f"arn:aws:kms:us-east-1:{account}:{name}"}
                       for name in PREDEFINED]
    assert kms.list_aliases()["Aliases"] == entries  # one page of the default size 50
    assert kms.list_keys()["Keys"] == []  # listing them creates nothing


def test_predefined_aliases_merge_with_the_accounts_aliases_in_name_order(kms, key_id):
    # Names before, between and after the predefined ones ('/' sorts before letters).
    mine = ["alias/Zebra", "alias/abc", "alias/aws-like", "alias/awsome", "alias/zzz"]
    for name in mine:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    expected = sorted(mine + PREDEFINED)
    for limit in (1, 3, 7, 19, 20):
        pages = all_pages(kms, limit)
        assert [a["AliasName"] for p in pages for a in p["Aliases"]] == expected, limit
        assert [len(p["Aliases"]) for p in pages[:-1]] == [limit] * (len(pages) - 1)
    listed = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert listed == {**{name: key_id for name in mine}, **{name: None for name in PREDEFINED}}
    # With KeyId, only the aliases of that key.
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key_id)["Aliases"]] == sorted(mine)


# --- creation on first use --------------------------------------------------------------------
def test_describe_key_creates_the_aws_managed_key(kms, account, trentd_server):
    before = server_now(trentd_server)
    meta = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    key_id, arn = meta["KeyId"], f"arn:aws:kms:us-east-1:{account}:key/{meta['KeyId']}"
    created = meta.pop("CreationDate")
    assert before - 1 <= created.timestamp() <= server_now(trentd_server) + 1
    assert len(meta.pop("CurrentKeyMaterialId")) == 64
    assert meta == {
        "AWSAccountId": account, "KeyId": key_id, "Arn": arn, "Enabled": True,
        "Description": "Default key that protects my EBS data when no other key is defined",
        "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": "Enabled", "Origin": "AWS_KMS", "KeyManager": "AWS",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": False,
    }
    # The same key by every name, and only one key.
    for name in ("alias/aws/ebs", f"arn:aws:kms:us-east-1:{account}:alias/aws/ebs", key_id, arn):
        assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key_id
    assert kms.list_keys()["Keys"] == [{"KeyId": key_id, "KeyArn": arn}]
    # ListAliases now shows its target; the other predefined aliases still have none.
    entries = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert sorted(entries) == PREDEFINED
    ebs = entries.pop("alias/aws/ebs")
    assert (ebs["TargetKeyId"], ebs["CreationDate"], ebs["LastUpdatedDate"]) == (key_id, created, created)
    assert all("TargetKeyId" not in a for a in entries.values())
    assert kms.list_aliases(KeyId=key_id)["Aliases"] == [ebs]


def test_aws_managed_key_has_aws_policy_and_rotates_yearly(trentd_server, account):
    kms = trentd_server.client(access_key=account, secret_key="x", region="eu-west-3")
    key_id = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == aws_policy(
        account, "eu-west-3", "ebs", "EBS", "ec2")
    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    s3 = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert s3["KeyManager"] == "AWS" and s3["KeyId"] != key_id
    assert s3["Description"] == "Default key that protects my S3 data when no other key is defined"
    assert json.loads(kms.get_key_policy(KeyId=s3["KeyId"])["Policy"])["Statement"][0]["Condition"] == {
        "StringEquals": {"kms:CallerAccount": account, "kms:ViaService": "s3.eu-west-3.amazonaws.com"}}
    status = kms.get_key_rotation_status(KeyId=key_id)
    created = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CreationDate"]
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert status["NextRotationDate"] == created + dt.timedelta(days=365)


def test_aws_managed_key_rotates_when_its_year_passes(clock_server, account):
    kms = clock_server.client(access_key=account, secret_key="x")
    meta = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert kms.list_key_rotations(KeyId=meta["KeyId"])["Rotations"] == []
    clock_server.move_clock(advance_seconds=366 * DAY)
    [rotation] = kms.list_key_rotations(KeyId=meta["KeyId"])["Rotations"]
    assert (rotation["RotationType"], rotation["KeyMaterialState"]) == ("AUTOMATIC", "CURRENT")
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"] == rotation["KeyMaterialId"]
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"] is True


@pytest.mark.parametrize("name", ["alias/aws/nosuch", "alias/aws/EBS", "alias/aws/"])
def test_other_names_under_alias_aws_are_not_found(kms, account, name):
    assert fails(kms.describe_key, KeyId=name) == (
        "NotFoundException", f"Alias arn:aws:kms:us-east-1:{account}:{name} is not found.")
    assert kms.list_keys()["Keys"] == []


def test_another_accounts_predefined_alias_creates_nothing(trentd_server, account):
    other = str(int(account) ^ 1).zfill(12)
    theirs = trentd_server.client(access_key=other, secret_key="x")
    name = f"arn:aws:kms:us-east-1:{account}:alias/aws/ebs"
    assert fails(theirs.describe_key, KeyId=name) == ("NotFoundException", f"Alias {name} is not found.")
    mine = trentd_server.client(access_key=account, secret_key="x")
    assert mine.list_keys()["Keys"] == [] and theirs.list_keys()["Keys"] == []


def test_operations_that_take_no_alias_still_refuse_one(kms):
    assert fails(kms.get_key_policy, KeyId="alias/aws/ebs") == (
        "InvalidArnException", "Key Aliases are not supported for this operation.")
    assert kms.list_keys()["Keys"] == []


# --- use only through the service; no change, no deletion -----------------------------------
def test_direct_use_is_access_denied_for_the_administrator(secure_server):
    kms = secure_server.client(region="ap-southeast-2")
    account = secure_server.account
    arn = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    assert fails(kms.encrypt, KeyId="alias/aws/ebs", Plaintext=b"direct") == denied(account, arn, "kms:Encrypt")
    assert fails(kms.generate_data_key, KeyId=arn, KeySpec="AES_256") == denied(account, arn, "kms:GenerateDataKey")
    # An Encrypt that names the not yet created key of another service creates it, then is refused.
    lam = fails(kms.encrypt, KeyId="alias/aws/lambda", Plaintext=b"direct")
    lambda_arn = kms.describe_key(KeyId="alias/aws/lambda")["KeyMetadata"]["Arn"]
    assert lam == denied(account, lambda_arn, "kms:Encrypt")


def test_direct_use_is_access_denied_in_dev_mode_too(kms, account):
    arn = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]
    assert fails(kms.encrypt, KeyId="alias/aws/rds", Plaintext=b"x") == denied(account, arn, "kms:Encrypt")
    assert fails(kms.create_grant, KeyId=arn, GranteePrincipal=f"arn:aws:iam::{account}:user/admin",
                 Operations=["Encrypt"]) == denied(account, arn, "kms:CreateGrant")


REFUSED = [
    ("put_key_policy", "kms:PutKeyPolicy", lambda k: {"KeyId": k, "PolicyName": "default", "Policy": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*",
                                                  "Resource": "*"}]})}),
    ("schedule_key_deletion", "kms:ScheduleKeyDeletion", lambda k: {"KeyId": k, "PendingWindowInDays": 7}),
    ("cancel_key_deletion", "kms:CancelKeyDeletion", lambda k: {"KeyId": k}),
    ("disable_key", "kms:DisableKey", lambda k: {"KeyId": k}),
    ("enable_key", "kms:EnableKey", lambda k: {"KeyId": k}),
    ("disable_key_rotation", "kms:DisableKeyRotation", lambda k: {"KeyId": k}),
    ("enable_key_rotation", "kms:EnableKeyRotation", lambda k: {"KeyId": k, "RotationPeriodInDays": 90}),
    ("rotate_key_on_demand", "kms:RotateKeyOnDemand", lambda k: {"KeyId": k}),
    ("update_key_description", "kms:UpdateKeyDescription", lambda k: {"KeyId": k, "Description": "mine now"}),
    ("tag_resource", "kms:TagResource", lambda k: {"KeyId": k, "Tags": [{"TagKey": "owner", "TagValue": "me"}]}),
    ("untag_resource", "kms:UntagResource", lambda k: {"KeyId": k, "TagKeys": ["owner"]}),
    ("create_alias", "kms:CreateAlias", lambda k: {"AliasName": "alias/my-ebs", "TargetKeyId": k}),
]


@pytest.mark.parametrize("op, action, args", REFUSED, ids=[r[0] for r in REFUSED])
def test_no_policy_change_state_change_or_deletion(secure_server, op, action, args):
    kms = secure_server.client(region="ca-central-1")
    account = secure_server.account
    before = kms.describe_key(KeyId="alias/aws/glue")["KeyMetadata"]
    policy = kms.get_key_policy(KeyId=before["KeyId"])["Policy"]
    assert fails(getattr(kms, op), **args(before["KeyId"])) == denied(account, before["Arn"], action)
    assert kms.describe_key(KeyId=before["KeyId"])["KeyMetadata"] == before
    assert kms.get_key_policy(KeyId=before["KeyId"])["Policy"] == policy
    assert kms.list_resource_tags(KeyId=before["KeyId"])["Tags"] == []
    status = kms.get_key_rotation_status(KeyId=before["KeyId"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert kms.list_key_rotations(KeyId=before["KeyId"])["Rotations"] == []
    aliases = kms.list_aliases(KeyId=before["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/aws/glue"]


@pytest.mark.parametrize("op", ["create_alias", "update_alias", "delete_alias"])
def test_predefined_aliases_cannot_be_made_moved_or_deleted(kms, key_id, op):
    managed = kms.describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]["KeyId"]
    for name in ("alias/aws/ssm", "alias/aws/xray"):
        kwargs = {"AliasName": name} if op == "delete_alias" else {"AliasName": name, "TargetKeyId": key_id}
        assert fails(getattr(kms, op), **kwargs) == ("NotAuthorizedException", "")
    entries = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert (entries["alias/aws/ssm"], entries["alias/aws/xray"]) == (managed, None)
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == sorted([key_id, managed])


def test_a_customer_managed_key_is_unchanged(kms, key_id):
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyManager"] == "CUSTOMER"
    kms.update_key_description(KeyId=key_id, Description="still mine")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
