"""Aliases over HTTP: CreateAlias, UpdateAlias, DeleteAlias, ListAliases, and using them."""

from __future__ import annotations

import datetime as dt

import pytest

from ..helpers import error_of, fails, key_arn, user_aliases

REGION = "us-east-1"
MISSING = "00000000-0000-4000-8000-000000000000"
PREFIX_MESSAGE = ('Alias must start with the prefix "alias/". '
                  "Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
ENTRY_MEMBERS = {"AliasName", "AliasArn", "TargetKeyId", "CreationDate", "LastUpdatedDate"}


def alias_arn(account: str, name: str) -> str:
    return f"arn:aws:kms:{REGION}:{account}:{name}"


def targets(kms, **kwargs) -> dict[str, str]:
    return {a["AliasName"]: a["TargetKeyId"] for a in user_aliases(kms, **kwargs)}


def test_create_alias_and_list_entry_shape(kms, account, key_id, trentd_server):
    assert user_aliases(kms) == []
    kms.create_alias(AliasName="alias/My-key_1/a/b", TargetKeyId=key_id)
    resp = kms.list_aliases()
    assert resp["Truncated"] is False and "NextMarker" not in resp
    [entry] = [a for a in resp["Aliases"] if not a["AliasName"].startswith("alias/aws/")]
    assert set(entry) == ENTRY_MEMBERS
    assert (entry["AliasName"], entry["AliasArn"], entry["TargetKeyId"]) == (
        "alias/My-key_1/a/b", alias_arn(account, "alias/My-key_1/a/b"), key_id)
    assert isinstance(entry["CreationDate"], dt.datetime) and entry["LastUpdatedDate"] == entry["CreationDate"]
    now = trentd_server.move_clock(advance_seconds=0)["now"]
    assert abs(entry["CreationDate"].timestamp() - now) < 10
    # aliases are not part of KeyMetadata
    assert "Aliases" not in kms.describe_key(KeyId="alias/My-key_1/a/b")["KeyMetadata"]


def test_create_alias_accepts_key_arn_as_target(kms, account, key_id):
    kms.create_alias(AliasName="alias/by-arn", TargetKeyId=key_arn(account, key_id))
    assert targets(kms) == {"alias/by-arn": key_id}


def test_list_aliases_filtered_by_key(kms, account):
    first, second, bare = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3))
    for name, key in (("alias/a", first), ("alias/b", first), ("alias/c", second)):
        kms.create_alias(AliasName=name, TargetKeyId=key)
    assert targets(kms, KeyId=first) == {"alias/a": first, "alias/b": first}
    assert targets(kms, KeyId=key_arn(account, first)) == {"alias/a": first, "alias/b": first}
    assert targets(kms, KeyId=second) == {"alias/c": second}
    assert targets(kms, KeyId=bare) == {}
    assert targets(kms) == {"alias/a": first, "alias/b": first, "alias/c": second}


@pytest.mark.parametrize("ident, error", [
    ("alias/a", ("InvalidArnException", "Key Aliases are not supported for this operation.")),
    (MISSING, ("NotFoundException", f"Key 'arn:aws:kms:us-east-1:{{account}}:key/{MISSING}' does not exist")),
    ("nope", ("NotFoundException", "Invalid keyId 'nope'")),
])
def test_list_aliases_key_filter_errors(kms, account, key_id, ident, error):
    kms.create_alias(AliasName="alias/a", TargetKeyId=key_id)
    assert fails(kms.list_aliases, KeyId=ident) == (error[0], error[1].format(account=account))


def test_list_aliases_pagination(kms, key_id):
    names = [f"alias/page-{i}" for i in range(5)]
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    pages = [kms.list_aliases(Limit=2)]
    while pages[-1]["Truncated"]:
        pages.append(kms.list_aliases(Limit=2, Marker=pages[-1]["NextMarker"]))
    assert "NextMarker" not in pages[-1]
    # The 14 predefined alias/aws/* names come first, then these: 19 in pages of 2.
    listed = [a["AliasName"] for p in pages for a in p["Aliases"]]
    assert [n for n in listed if not n.startswith("alias/aws/")] == names and len(listed) == 19
    assert [len(p["Aliases"]) for p in pages] == [2] * 9 + [1]
    assert [p["Truncated"] for p in pages] == [True] * 9 + [False]
    assert fails(kms.list_aliases, Marker="!!!") == ("InvalidMarkerException", "Invalid marker")


@pytest.mark.parametrize("limit, phrase", [(0, "greater than or equal to 1"), (101, "less than or equal to 100")])
def test_list_aliases_limit_validation(raw_kms, limit, phrase):
    assert fails(raw_kms.list_aliases, Limit=limit) == (
        "ValidationException",
        f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
        f"Member must have value {phrase}")
    assert user_aliases(raw_kms, Limit=100) == []


@pytest.mark.parametrize("name, error", [
    ("foo", ("ValidationException", PREFIX_MESSAGE)),
    ("aliasfoo", ("ValidationException", PREFIX_MESSAGE)),
    ("Alias/foo", ("ValidationException", PREFIX_MESSAGE)),
    ("alias/a b", ("ValidationException", "1 validation error detected: Value 'alias/a b' at 'aliasName' failed to "
                   "satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")),
    ("alias/" + "a" * 251, ("ValidationException", f"1 validation error detected: Value 'alias/{'a' * 251}' at "
                            "'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256")),
    ("alias/aws/mine", ("NotAuthorizedException", "")),
])
def test_alias_name_rules(raw_kms, key_id, name, error):
    assert fails(raw_kms.create_alias, AliasName=name, TargetKeyId=key_id) == error
    assert user_aliases(raw_kms) == []


@pytest.mark.parametrize("op", ["update_alias", "delete_alias"])
def test_prefix_rule_on_update_and_delete(raw_kms, key_id, op):
    kwargs = {"TargetKeyId": key_id} if op == "update_alias" else {}
    assert fails(getattr(raw_kms, op), AliasName="foo", **kwargs) == ("ValidationException", PREFIX_MESSAGE)


def test_create_alias_that_exists(kms, account):
    first, second = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    kms.create_alias(AliasName="alias/taken", TargetKeyId=first)
    for target in (first, second):
        assert fails(kms.create_alias, AliasName="alias/taken", TargetKeyId=target) == (
            "AlreadyExistsException", f"An alias with the name {alias_arn(account, 'alias/taken')} already exists")
    assert targets(kms) == {"alias/taken": first}


@pytest.mark.parametrize("op", ["update_alias", "delete_alias"])
def test_unknown_alias_is_not_found(kms, account, key_id, op):
    kwargs = {"TargetKeyId": key_id} if op == "update_alias" else {}
    assert fails(getattr(kms, op), AliasName="alias/x", **kwargs) == (
        "NotFoundException", f"Alias {alias_arn(account, 'alias/x')} is not found.")
    assert user_aliases(kms) == []


@pytest.mark.parametrize("target, error", [
    (MISSING, ("NotFoundException", f"Key 'arn:aws:kms:us-east-1:{{account}}:key/{MISSING}' does not exist")),
    ("x", ("NotFoundException", "Invalid keyId 'x'")),
    ("alias/existing", ("InvalidArnException", "Key Aliases are not supported for this operation.")),
    ("arn:aws:kms:eu-west-1:{account}:key/" + MISSING, ("NotFoundException", "Invalid arn eu-west-1")),
])
@pytest.mark.parametrize("op", ["create_alias", "update_alias"])
def test_bad_alias_targets(kms, account, key_id, op, target, error):
    kms.create_alias(AliasName="alias/existing", TargetKeyId=key_id)
    name = "alias/new" if op == "create_alias" else "alias/existing"
    assert fails(getattr(kms, op), AliasName=name, TargetKeyId=target.format(account=account)) == (
        error[0], error[1].format(account=account))
    assert targets(kms) == {"alias/existing": key_id}


@pytest.mark.parametrize("op", ["create_alias", "update_alias"])
def test_target_pending_deletion_is_refused(kms, account, key_id, op):
    kms.create_alias(AliasName="alias/existing", TargetKeyId=key_id)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    name = "alias/new" if op == "create_alias" else "alias/existing"
    assert fails(getattr(kms, op), AliasName=name, TargetKeyId=doomed) == (
        "KMSInvalidStateException", f"{key_arn(account, doomed)} is pending deletion.")
    assert targets(kms) == {"alias/existing": key_id}


def test_alias_of_a_key_pending_deletion(kms, account, key_id):
    kms.create_alias(AliasName="alias/pending", TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert targets(kms) == {"alias/pending": key_id}  # aliases go only when deletion completes
    assert fails(kms.encrypt, KeyId="alias/pending", Plaintext=b"x") == (
        "KMSInvalidStateException", f"{key_arn(account, key_id)} is pending deletion.")
    kms.delete_alias(AliasName="alias/pending")
    assert targets(kms) == {}


def test_update_alias_retargets(kms, account, key_id):
    kms.create_alias(AliasName="alias/moving", TargetKeyId=key_id)
    [before] = user_aliases(kms)
    new = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.update_alias(AliasName="alias/moving", TargetKeyId=key_arn(account, new))
    [after] = user_aliases(kms)
    assert (after["TargetKeyId"], after["AliasArn"], after["CreationDate"]) == (
        new, before["AliasArn"], before["CreationDate"])
    assert after["LastUpdatedDate"] > before["LastUpdatedDate"]
    assert kms.encrypt(KeyId="alias/moving", Plaintext=b"x")["KeyId"] == key_arn(account, new)
    assert targets(kms, KeyId=key_id) == {}


@pytest.mark.parametrize("old, new, words", [
    ({}, {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
     "(SYMMETRIC ENCRYPT_DECRYPT), not HMAC GENERATE_VERIFY_MAC"),
    ({}, {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
     "(SYMMETRIC ENCRYPT_DECRYPT), not ASYMMETRIC SIGN_VERIFY"),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"},
     "(ASYMMETRIC SIGN_VERIFY), not ASYMMETRIC KEY_AGREEMENT"),
])
def test_update_alias_needs_same_key_type_and_usage(kms, old, new, words):
    old_id = kms.create_key(**old)["KeyMetadata"]["KeyId"]
    new_id = kms.create_key(**new)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/typed", TargetKeyId=old_id)
    assert fails(kms.update_alias, AliasName="alias/typed", TargetKeyId=new_id) == (
        "ValidationException", "Alias alias/typed cannot point to the new key: it must have the same key type "
                               f"and key usage as the current one {words}.")
    assert targets(kms) == {"alias/typed": old_id}


def test_update_alias_between_asymmetric_keys_of_same_usage(kms):
    old_id, new_id = (kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
                      for spec in ("ECC_NIST_P256", "ECC_NIST_P384"))
    kms.create_alias(AliasName="alias/signer", TargetKeyId=old_id)
    kms.update_alias(AliasName="alias/signer", TargetKeyId=new_id)
    assert targets(kms) == {"alias/signer": new_id}


def test_delete_alias(kms, account, key_id):
    kms.create_alias(AliasName="alias/gone", TargetKeyId=key_id)
    kms.create_alias(AliasName="alias/stays", TargetKeyId=key_id)
    kms.delete_alias(AliasName="alias/gone")
    assert targets(kms) == {"alias/stays": key_id}
    not_found = ("NotFoundException", f"Alias {alias_arn(account, 'alias/gone')} is not found.")
    assert fails(kms.delete_alias, AliasName="alias/gone") == not_found
    assert fails(kms.encrypt, KeyId="alias/gone", Plaintext=b"x") == not_found
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    kms.create_alias(AliasName="alias/gone", TargetKeyId=key_id)  # the name can be reused
    assert targets(kms) == {"alias/gone": key_id, "alias/stays": key_id}


@pytest.mark.parametrize("arn_form", [False, True])
def test_encrypt_and_decrypt_through_an_alias(kms, account, key_id, arn_form):
    kms.create_alias(AliasName="alias/crypto", TargetKeyId=key_id)
    ident = alias_arn(account, "alias/crypto") if arn_form else "alias/crypto"
    enc = kms.encrypt(KeyId=ident, Plaintext=b"via alias", EncryptionContext={"k": "v"})
    assert enc["KeyId"] == key_arn(account, key_id)
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], KeyId=ident, EncryptionContext={"k": "v"})
    assert (dec["Plaintext"], dec["KeyId"]) == (b"via alias", key_arn(account, key_id))
    assert kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"] == b"via alias"


def test_alias_limit_per_key(kms, account, key_id):
    for i in range(50):
        kms.create_alias(AliasName=f"alias/n{i:02}", TargetKeyId=key_id)
    assert fails(kms.create_alias, AliasName="alias/one-too-many", TargetKeyId=key_id) == (
        "LimitExceededException", f"Cannot exceed the limit of 50 aliases for key {key_arn(account, key_id)}.")
    assert len(user_aliases(kms, Limit=100)) == 50


def test_aliases_are_per_region(kms, trentd_server, account, key_id):
    kms.create_alias(AliasName="alias/regional", TargetKeyId=key_id)
    west = trentd_server.client(access_key=account, secret_key="x", region="eu-west-1")
    assert user_aliases(west) == []
    west_key = west.create_key()["KeyMetadata"]["KeyId"]
    west.create_alias(AliasName="alias/regional", TargetKeyId=west_key)  # same name, other Region
    assert targets(west) == {"alias/regional": west_key}
    assert targets(kms) == {"alias/regional": key_id}


def test_alias_name_characters_are_checked_after_the_model(raw_kms, key_id):
    """The model's pattern lets ':' through; AWS then refuses any character but letters, digits, / _ -."""
    for name in ("alias/my:alias", "alias/a b", "alias/é"):
        with pytest.raises(raw_kms.exceptions.ClientError) as excinfo:
            raw_kms.create_alias(AliasName=name, TargetKeyId=key_id)
        code, message = error_of(excinfo)
        assert code == "ValidationException", name
        if name == "alias/my:alias":
            assert message == "alias/my:alias contains invalid characters for an alias"
    assert [a for a in raw_kms.list_aliases(KeyId=key_id)["Aliases"]] == []
    raw_kms.create_alias(AliasName="alias/ok/With_all-kinds0", TargetKeyId=key_id)
