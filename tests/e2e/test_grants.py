"""Grants end to end (kms-api.md §3.7, issue #4): CreateGrant makes the grantee able to act at
once (with or without the grant token), constraints with their case rules, Name idempotency,
ListGrants filters and pages, ListRetirableGrants, who may retire and revoke, the grant error
types, operations per key type, and child grants made by a grantee holding CreateGrant.

Principals (authz_world.py): account A has ``admin`` (allow-all identity policy) and ``gina``,
``rita``, ``otto``, ``gail`` (no identity policy: grants are their only way in); account B has
``bob`` (identity policy: kms:ListRetirableGrants only).
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

import pytest
from botocore.exceptions import ClientError

from ..helpers import error_of
from .authz_world import ACCT_A, ACCT_B, DENY_I, DENY_R, REGION, UNKNOWN_KEY, XDENY_R, World, access_denied, policy


@pytest.fixture(scope="module")
def world(authz_server) -> World:
    world = World(authz_server)
    world.make_users([
        (ACCT_A, "gina", None), (ACCT_A, "rita", None), (ACCT_A, "otto", None), (ACCT_A, "gail", None),
        (ACCT_B, "bob", policy({"Effect": "Allow", "Action": "kms:ListRetirableGrants", "Resource": "*"})),
    ])
    return world


@pytest.fixture
def key(world) -> dict:
    return world.admin.kms.create_key(Description="grants")["KeyMetadata"]


def grant(world, key: dict, grantee: str, operations, **extra) -> dict:
    return world.admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=world[grantee].arn,
                                        Operations=list(operations), **extra)


def denied(info, principal, action: str, resource: str, why: str) -> None:
    assert error_of(info) == ("AccessDeniedException", access_denied(principal.arn, action, resource, why))


def grant_ids(world, key: dict, **filters) -> list[str]:
    return [g["GrantId"] for g in world.admin.kms.list_grants(KeyId=key["KeyId"], **filters)["Grants"]]


# --- a grant works at once ---------------------------------------------------------------------
def test_grant_allows_the_grantee_at_once(world, key):
    gina = world["gina"]
    with pytest.raises(ClientError) as info:
        gina.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    denied(info, gina, "kms:Encrypt", key["Arn"], DENY_I)

    out = grant(world, key, "gina", ["Encrypt", "Decrypt", "GenerateDataKey"])
    assert len(out["GrantId"]) == 64 and int(out["GrantId"], 16) >= 0
    # no token: trentd is immediately consistent; with the token, as AWS SDKs pass it
    blob = gina.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")["CiphertextBlob"]
    blob2 = gina.kms.encrypt(KeyId=key["Arn"], Plaintext=b"y", GrantTokens=[out["GrantToken"]])["CiphertextBlob"]
    assert gina.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    assert gina.kms.decrypt(CiphertextBlob=blob2, GrantTokens=[out["GrantToken"]])["Plaintext"] == b"y"
    assert len(gina.kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"]) == 32
    with pytest.raises(ClientError) as info:  # not among the grant's operations
        gina.kms.describe_key(KeyId=key["KeyId"])
    denied(info, gina, "kms:DescribeKey", key["Arn"], DENY_I)
    with pytest.raises(ClientError) as info:
        gina.kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256")
    denied(info, gina, "kms:GenerateDataKeyWithoutPlaintext", key["Arn"], DENY_I)


def test_grant_is_for_one_key_and_one_grantee(world, key):
    other = world.admin.kms.create_key()["KeyMetadata"]
    grant(world, key, "gina", ["Encrypt"])
    with pytest.raises(ClientError) as info:
        world["gina"].kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x")
    denied(info, world["gina"], "kms:Encrypt", other["Arn"], DENY_I)
    with pytest.raises(ClientError) as info:
        world["otto"].kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    denied(info, world["otto"], "kms:Encrypt", key["Arn"], DENY_I)


def test_explicit_deny_beats_a_grant(world, key):
    admin, gina = world.admin, world["gina"]
    admin.kms.put_key_policy(KeyId=key["KeyId"], Policy=policy(
        {"Effect": "Allow", "Principal": {"AWS": admin.root}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": gina.arn}, "Action": "kms:Encrypt", "Resource": "*"}))
    grant(world, key, "gina", ["Encrypt", "DescribeKey"])
    with pytest.raises(ClientError) as info:
        gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    denied(info, gina, "kms:Encrypt", key["Arn"], XDENY_R)
    gina.kms.describe_key(KeyId=key["KeyId"])


def test_grant_to_another_account(world, key):
    """A grant alone lets a principal of another account use the key (by its ARN)."""
    bob = world["bob"]
    with pytest.raises(ClientError) as info:
        bob.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    denied(info, bob, "kms:Encrypt", key["Arn"], DENY_R)
    out = world.admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=bob.arn, RetiringPrincipal=bob.arn,
                                       Operations=["Encrypt"])
    assert bob.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]
    # bob's retirable grants include grants on keys of other accounts
    listed = bob.kms.list_retirable_grants(RetiringPrincipal=bob.arn)["Grants"]
    assert [g["GrantId"] for g in listed] == [out["GrantId"]]
    assert listed[0]["KeyId"] == key["Arn"] and listed[0]["IssuingAccount"] == f"arn:aws:iam::{ACCT_A}:root"
    bob.kms.retire_grant(KeyId=key["Arn"], GrantId=out["GrantId"])
    with pytest.raises(ClientError) as info:
        bob.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    denied(info, bob, "kms:Encrypt", key["Arn"], DENY_R)
    assert bob.kms.list_retirable_grants(RetiringPrincipal=bob.arn)["Grants"] == []


# --- grant tokens --------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["not-a-grant-token", "A" * 66, "x"])
def test_malformed_grant_tokens(world, key, token):
    kms = world.admin.kms
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    calls = [
        lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[token]),
        lambda: kms.decrypt(CiphertextBlob=blob, GrantTokens=[token]),
        lambda: kms.describe_key(KeyId=key["KeyId"], GrantTokens=[token]),
        lambda: kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=world["otto"].arn, Operations=["Encrypt"],
                                 GrantTokens=[token]),
        lambda: kms.retire_grant(GrantToken=token),
    ]
    for make_call in calls:
        with pytest.raises(ClientError) as info:
            make_call()
        assert error_of(info)[0] == "InvalidGrantTokenException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _changed(token: str, at: int) -> str:
    """``token`` with the character at ``at`` replaced by another of the base64url alphabet."""
    return token[:at] + ("B" if token[at] == "A" else "A") + token[at + 1:]


def test_grant_tokens_are_checked_whole(world, key):
    """A token trentd did not issue is refused, whichever character differs: the grant id it
    names is not enough."""
    gina = world["gina"]
    token = grant(world, key, "gina", ["Encrypt", "RetireGrant"])["GrantToken"]
    forged = [_changed(token, len(token) // 2), _changed(token, len(token) - 1), _changed(token, len(token) - 2),
              token + "A", token[:-1]]
    for bad in forged:
        with pytest.raises(ClientError) as info:
            gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[bad])
        assert error_of(info) == ("InvalidGrantTokenException", "The grant token is invalid.")
        with pytest.raises(ClientError) as info:
            gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[token, bad])
        assert error_of(info) == ("InvalidGrantTokenException", "The grant token is invalid.")
        with pytest.raises(ClientError) as info:
            gina.kms.retire_grant(GrantToken=bad)
        assert error_of(info) == ("InvalidGrantTokenException", "The grant token is invalid.")
    gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[token])
    gina.kms.retire_grant(GrantToken=token)
    assert grant_ids(world, key) == []


def test_token_of_a_retired_grant(world, key):
    out = grant(world, key, "gina", ["Encrypt", "RetireGrant"])
    world["gina"].kms.retire_grant(GrantToken=out["GrantToken"])
    with pytest.raises(ClientError) as info:
        world["gina"].kms.retire_grant(GrantToken=out["GrantToken"])
    assert error_of(info)[0] == "InvalidGrantTokenException"


def test_at_most_ten_grant_tokens(world, key):
    tokens = [grant(world, key, "gina", ["Encrypt"])["GrantToken"] for _ in range(2)] * 6
    with pytest.raises(ClientError) as info:
        world["gina"].kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=tokens[:11])
    assert error_of(info)[0] == "ValidationException"
    world["gina"].kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=tokens[:10])


# --- constraints ------------------------------------------------------------------------------------
@pytest.mark.parametrize("constraints, context, allowed", [
    ({"EncryptionContextEquals": {"Purpose": "backup"}}, {"purpose": "backup"}, True),
    ({"EncryptionContextEquals": {"Purpose": "backup"}}, {"Purpose": "backup"}, True),
    ({"EncryptionContextEquals": {"purpose": "backup"}}, {"purpose": "Backup"}, False),
    ({"EncryptionContextEquals": {"purpose": "backup"}}, {"purpose": "backup", "extra": "1"}, False),
    ({"EncryptionContextEquals": {"purpose": "backup"}}, None, False),
    ({"EncryptionContextEquals": {"a": "1", "b": "2"}}, {"B": "2", "a": "1"}, True),
    ({"EncryptionContextSubset": {"purpose": "backup"}}, {"purpose": "backup", "extra": "1"}, True),
    ({"EncryptionContextSubset": {"purpose": "backup"}}, {"PURPOSE": "backup"}, True),
    ({"EncryptionContextSubset": {"purpose": "backup"}}, {"purpose": "BACKUP"}, False),
    ({"EncryptionContextSubset": {"purpose": "backup"}}, {"extra": "1"}, False),
    ({"EncryptionContextSubset": {"purpose": "backup"}}, None, False),
], ids=["equals", "equals-key-case", "equals-value-case", "equals-extra-pair", "equals-no-context",
        "equals-two-pairs", "subset", "subset-key-case", "subset-value-case", "subset-missing", "subset-no-context"])
def test_constraints(world, key, constraints, context, allowed):
    gina = world["gina"]
    grant(world, key, "gina", ["Encrypt", "GenerateDataKey", "DescribeKey"], Constraints=constraints)
    kwargs = {"EncryptionContext": context} if context else {}
    gina.kms.describe_key(KeyId=key["KeyId"])  # constraints apply only to operations with a context
    if allowed:
        gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **kwargs)
        gina.kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=16, **kwargs)
        return
    for operation, call in (("Encrypt", lambda: gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **kwargs)),
                            ("GenerateDataKey",
                             lambda: gina.kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=16, **kwargs))):
        with pytest.raises(ClientError) as info:
            call()
        denied(info, gina, f"kms:{operation}", key["Arn"], DENY_I)


def test_constrained_decrypt(world, key):
    gina = world["gina"]
    grant(world, key, "gina", ["Decrypt"], Constraints={"EncryptionContextSubset": {"tenant": "t1"}})
    good = world.admin.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"t1", EncryptionContext={"tenant": "t1", "n": "1"})
    bad = world.admin.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"t2", EncryptionContext={"tenant": "t2"})
    assert gina.kms.decrypt(CiphertextBlob=good["CiphertextBlob"],
                            EncryptionContext={"tenant": "t1", "n": "1"})["Plaintext"] == b"t1"
    with pytest.raises(ClientError) as info:
        gina.kms.decrypt(CiphertextBlob=bad["CiphertextBlob"], EncryptionContext={"tenant": "t2"})
    assert error_of(info) == ("AccessDeniedException", UNKNOWN_KEY)


@pytest.mark.parametrize("constraint", ["EncryptionContextEquals", "EncryptionContextSubset"])
def test_case_colliding_context_keys_fail_closed(world, key, constraint):
    """Constraint keys compare case-insensitively, so in {"TENANT": "t2", "tenant": "t1"} which
    value the constraint {tenant: t1} reads is ambiguous: the grant does not allow, in either
    key order (key-policy conditions treat the same collision alike)."""
    gina = world["gina"]
    grant(world, key, "gina", ["Encrypt", "Decrypt"], Constraints={constraint: {"tenant": "t1"}})
    blob = gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"t1", EncryptionContext={"tenant": "t1"})["CiphertextBlob"]
    assert gina.kms.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "t1"})["Plaintext"] == b"t1"
    for context in ({"TENANT": "t2", "tenant": "t1"}, {"tenant": "t1", "TENANT": "t2"}):  # sent in this order
        with pytest.raises(ClientError) as info:
            gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=context)
        denied(info, gina, "kms:Encrypt", key["Arn"], DENY_I)
        sealed = world.admin.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=context)
        with pytest.raises(ClientError) as info:
            gina.kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)
        assert error_of(info) == ("AccessDeniedException", UNKNOWN_KEY)
    if constraint == "EncryptionContextSubset":  # a collision on a key the constraint does not name is harmless
        gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "t1", "App": "a", "app": "b"})


def test_grant_with_case_colliding_constraint_keys_allows_nothing(world, key):
    gina = world["gina"]
    grant(world, key, "gina", ["Encrypt"], Constraints={"EncryptionContextEquals": {"tenant": "t1", "TENANT": "t2"}})
    for context in ({"tenant": "t1", "TENANT": "t2"}, {"TENANT": "t2", "tenant": "t1"}, {"tenant": "t1"},
                    {"tenant": "t2"}):
        with pytest.raises(ClientError) as info:
            gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=context)
        denied(info, gina, "kms:Encrypt", key["Arn"], DENY_I)


# --- CreateGrant validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("key_args, operations, constraints", [
    ({}, ["Sign"], None),
    ({}, ["Encrypt", "GenerateMac"], None),
    ({}, ["GetPublicKey"], None),
    ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, ["Encrypt"], None),
    ({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}, ["GenerateDataKey"], None),
    ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, ["Encrypt"], {"EncryptionContextSubset": {"a": "1"}}),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, ["Decrypt"], None),
], ids=["sign-on-symmetric", "mac-on-symmetric", "public-key-on-symmetric", "encrypt-on-hmac",
        "data-key-on-rsa-sign", "constraints-on-asymmetric", "decrypt-on-ecc-sign"])
def test_operations_must_suit_the_key(world, key_args, operations, constraints):
    kms = world.admin.kms
    key_id = kms.create_key(**key_args)["KeyMetadata"]["KeyId"]
    extra = {"Constraints": constraints} if constraints else {}
    with pytest.raises(ClientError) as info:
        kms.create_grant(KeyId=key_id, GranteePrincipal=world["gina"].arn, Operations=operations, **extra)
    assert error_of(info)[0] == "ValidationException"
    assert grant_ids(world, {"KeyId": key_id}) == []


@pytest.mark.parametrize("key_args, operations", [
    ({}, ["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
          "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "DescribeKey", "CreateGrant", "RetireGrant"]),
    ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, ["GenerateMac", "VerifyMac", "DescribeKey"]),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, ["Sign", "Verify", "GetPublicKey"]),
    ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, ["Encrypt", "Decrypt", "GetPublicKey"]),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"}, ["DeriveSharedSecret", "GetPublicKey"]),
], ids=["symmetric", "hmac", "sign", "rsa-encrypt", "key-agreement"])
def test_grantable_operations_per_key_type(world, key_args, operations):
    kms = world.admin.kms
    key_id = kms.create_key(**key_args)["KeyMetadata"]["KeyId"]
    out = kms.create_grant(KeyId=key_id, GranteePrincipal=world["gina"].arn, Operations=operations)
    assert grant_ids(world, {"KeyId": key_id}) == [out["GrantId"]]


def test_grant_for_a_principal_that_does_not_exist(world, key):
    with pytest.raises(ClientError) as info:
        world.admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{ACCT_A}:user/ghost",
                                     Operations=["Encrypt"])
    assert error_of(info)[0] == "ValidationException"


def test_create_grant_needs_permission_and_a_usable_key(world, key):
    gina = world["gina"]
    with pytest.raises(ClientError) as info:
        gina.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=gina.arn, Operations=["Encrypt"])
    denied(info, gina, "kms:CreateGrant", key["Arn"], DENY_I)
    world.admin.kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as info:
        grant(world, key, "gina", ["Encrypt"])
    assert error_of(info) == ("DisabledException", f"{key['Arn']} is disabled.")


def test_create_grant_dry_run(world, key):
    with pytest.raises(ClientError) as info:
        grant(world, key, "gina", ["Encrypt"], DryRun=True)
    assert error_of(info) == ("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
    assert grant_ids(world, key) == []


# --- Name idempotency ---------------------------------------------------------------------------
def test_name_makes_create_grant_idempotent(world, key):
    first = grant(world, key, "gina", ["Encrypt", "Decrypt"], Name="app-grant")
    again = grant(world, key, "gina", ["Decrypt", "Encrypt"], Name="app-grant")
    assert again["GrantId"] == first["GrantId"]
    assert again["GrantToken"] != first["GrantToken"]
    assert grant_ids(world, key) == [first["GrantId"]]
    for token in (first["GrantToken"], again["GrantToken"]):  # tokens of one grant are interchangeable
        world["gina"].kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[token])
    other_key = world.admin.kms.create_key()["KeyMetadata"]
    elsewhere = grant(world, other_key, "gina", ["Encrypt", "Decrypt"], Name="app-grant")
    assert elsewhere["GrantId"] != first["GrantId"]
    unnamed = [grant(world, key, "gina", ["Encrypt"])["GrantId"] for _ in range(2)]
    assert len(set(unnamed)) == 2
    assert world.admin.kms.list_grants(KeyId=key["KeyId"], GrantId=first["GrantId"])["Grants"][0]["Name"] == "app-grant"


# --- ListGrants ---------------------------------------------------------------------------------------
def test_list_grants_entries_filters_and_pages(world, key):
    kms = world.admin.kms
    made = [grant(world, key, "gina", ["Encrypt"], Name=f"g{i}")["GrantId"] for i in range(3)]
    made += [grant(world, key, "otto", ["Decrypt", "DescribeKey"], RetiringPrincipal=world["rita"].arn,
                   Constraints={"EncryptionContextSubset": {"app": "x"}})["GrantId"] for _ in range(2)]
    everything = kms.list_grants(KeyId=key["Arn"])
    assert sorted(g["GrantId"] for g in everything["Grants"]) == sorted(made)
    assert everything["Truncated"] is False and "NextMarker" not in everything
    entry = next(g for g in everything["Grants"] if g["GrantId"] == made[-1])
    assert entry["KeyId"] == key["Arn"]
    assert entry["GranteePrincipal"] == world["otto"].arn and entry["RetiringPrincipal"] == world["rita"].arn
    assert entry["IssuingAccount"] == f"arn:aws:iam::{ACCT_A}:root"
    assert sorted(entry["Operations"]) == ["Decrypt", "DescribeKey"]
    assert entry["Constraints"] == {"EncryptionContextSubset": {"app": "x"}}
    assert isinstance(entry["CreationDate"], datetime) and "Name" not in entry
    named = next(g for g in everything["Grants"] if g["GrantId"] == made[0])
    assert named["Name"] == "g0" and "RetiringPrincipal" not in named and "Constraints" not in named

    pages, marker = [], None
    while True:
        page = kms.list_grants(KeyId=key["KeyId"], Limit=2, **({"Marker": marker} if marker else {}))
        pages.append([g["GrantId"] for g in page["Grants"]])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(sum(pages, [])) == sorted(made)

    for grant_id in made:  # the GrantId filter finds each grant whatever the page size
        assert grant_ids(world, key, GrantId=grant_id, Limit=1) == [grant_id]
    assert sorted(grant_ids(world, key, GranteePrincipal=world["otto"].arn)) == sorted(made[3:])
    assert grant_ids(world, key, GranteePrincipal=world["otto"].arn, GrantId=made[0]) == []
    assert grant_ids(world, key, GranteePrincipal=world["admin"].arn) == []


def test_list_grants_errors(world, key):
    kms = world.admin.kms
    with pytest.raises(ClientError) as info:
        kms.list_grants(KeyId=key["KeyId"], GrantId="not-a-grant-id")
    assert error_of(info)[0] == "InvalidGrantIdException"
    with pytest.raises(ClientError) as info:
        kms.list_grants(KeyId=key["KeyId"], Marker="not-a-marker")
    assert error_of(info)[0] == "InvalidMarkerException"
    with pytest.raises(ClientError) as info:
        world["gina"].kms.list_grants(KeyId=key["KeyId"])
    denied(info, world["gina"], "kms:ListGrants", key["Arn"], DENY_I)


def test_list_retirable_grants(world):
    kms, rita = world.admin.kms, world["rita"]
    keys = [kms.create_key()["KeyMetadata"] for _ in range(2)]
    made = [grant(world, k, "gina", ["Encrypt"], RetiringPrincipal=rita.arn)["GrantId"] for k in keys for _ in range(2)]
    grant(world, keys[0], "gina", ["Encrypt"])  # no retiring principal
    ours = {k["Arn"] for k in keys}  # other tests of this module make rita retiring principal too
    listed = kms.list_retirable_grants(RetiringPrincipal=rita.arn, Limit=100)
    assert sorted(g["GrantId"] for g in listed["Grants"] if g["KeyId"] in ours) == sorted(made)
    assert all(g["RetiringPrincipal"] == rita.arn for g in listed["Grants"])
    seen, marker, sizes = [], None, []
    while True:
        page = kms.list_retirable_grants(RetiringPrincipal=rita.arn, Limit=3, **({"Marker": marker} if marker else {}))
        seen += [g["GrantId"] for g in page["Grants"]]
        sizes.append(len(page["Grants"]))
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert len(seen) == len(set(seen)) == len(listed["Grants"]) and max(sizes) == 3
    assert set(made) <= set(seen)
    with pytest.raises(ClientError) as info:  # kms:ListRetirableGrants comes from an identity policy
        rita.kms.list_retirable_grants(RetiringPrincipal=rita.arn)
    denied(info, rita, "kms:ListRetirableGrants", "*", DENY_I)
    # another account's caller sees none of account A's grants
    assert world["bob"].kms.list_retirable_grants(RetiringPrincipal=rita.arn)["Grants"] == []


# --- RetireGrant ------------------------------------------------------------------------------------
@pytest.mark.parametrize("who, how, operations, retiring", [
    ("rita", "token", ["Encrypt"], "rita"),
    ("rita", "key-and-id", ["Encrypt"], "rita"),
    ("gina", "token", ["Encrypt", "RetireGrant"], None),
    ("gina", "key-and-id", ["Encrypt", "RetireGrant"], None),
    ("admin", "key-and-id", ["Encrypt"], None),
    ("admin", "token", ["Encrypt"], "rita"),
], ids=["retiring-principal-token", "retiring-principal-id", "grantee-with-retiregrant-token",
        "grantee-with-retiregrant-id", "key-account", "key-account-token"])
def test_retire_grant_allowed(world, key, who, how, operations, retiring):
    extra = {"RetiringPrincipal": world[retiring].arn} if retiring else {}
    out = grant(world, key, "gina", operations, **extra)
    kms = world[who].kms
    if how == "token":
        kms.retire_grant(GrantToken=out["GrantToken"])
    else:
        kms.retire_grant(KeyId=key["Arn"], GrantId=out["GrantId"])
    assert grant_ids(world, key) == []
    with pytest.raises(ClientError) as info:  # retired means gone: the grantee lost its access at once
        world["gina"].kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    denied(info, world["gina"], "kms:Encrypt", key["Arn"], DENY_I)
    with pytest.raises(ClientError) as info:
        world.admin.kms.retire_grant(KeyId=key["Arn"], GrantId=out["GrantId"])
    assert error_of(info)[0] == "InvalidGrantIdException"


@pytest.mark.parametrize("who, operations, retiring", [
    ("gina", ["Encrypt"], "rita"),
    ("otto", ["Encrypt", "RetireGrant"], "rita"),
    ("bob", ["Encrypt"], None),
], ids=["grantee-without-retiregrant", "unrelated-principal", "other-account"])
def test_retire_grant_refused(world, key, who, operations, retiring):
    extra = {"RetiringPrincipal": world[retiring].arn} if retiring else {}
    out = grant(world, key, "gina", operations, **extra)
    for kwargs in ({"GrantToken": out["GrantToken"]}, {"KeyId": key["Arn"], "GrantId": out["GrantId"]}):
        with pytest.raises(ClientError) as info:
            world[who].kms.retire_grant(**kwargs)
        code, message = error_of(info)
        assert code == "AccessDeniedException"
        assert message.startswith(f"User: {world[who].arn} is not authorized to perform: kms:RetireGrant on resource: "
                                  f"{key['Arn']}")
    assert grant_ids(world, key) == [out["GrantId"]]


def test_retire_grant_errors(world, key):
    kms = world.admin.kms
    out = grant(world, key, "gina", ["Encrypt"])
    other = kms.create_key()["KeyMetadata"]
    for kwargs in ({"KeyId": key["Arn"], "GrantId": secrets.token_hex(32)},
                   {"KeyId": key["Arn"], "GrantId": "not-a-grant-id"},
                   {"KeyId": other["Arn"], "GrantId": out["GrantId"]}):
        with pytest.raises(ClientError) as info:
            kms.retire_grant(**kwargs)
        assert error_of(info)[0] == "InvalidGrantIdException", kwargs
    forged = base64.urlsafe_b64encode(b"\x01" + secrets.token_bytes(48)).decode().rstrip("=")
    with pytest.raises(ClientError) as info:
        kms.retire_grant(GrantToken=forged)
    assert error_of(info)[0] == "InvalidGrantTokenException"
    with pytest.raises(ClientError) as info:
        kms.retire_grant()
    assert error_of(info)[0] == "ValidationException"
    with pytest.raises(ClientError) as info:
        kms.retire_grant(KeyId=key["Arn"], GrantId=out["GrantId"], DryRun=True)
    assert error_of(info)[0] == "DryRunOperationException"
    assert grant_ids(world, key) == [out["GrantId"]]


# --- RevokeGrant -------------------------------------------------------------------------------------
def test_revoke_grant(world, key):
    kms, gina = world.admin.kms, world["gina"]
    out = grant(world, key, "gina", ["Encrypt", "RetireGrant"], RetiringPrincipal=world["rita"].arn)
    gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    for who in ("gina", "rita"):  # revoking is a key-policy permission, not the grant's
        with pytest.raises(ClientError) as info:
            world[who].kms.revoke_grant(KeyId=key["KeyId"], GrantId=out["GrantId"])
        denied(info, world[who], "kms:RevokeGrant", key["Arn"], DENY_I)
    other = kms.create_key()["KeyMetadata"]
    for kwargs in ({"KeyId": key["KeyId"], "GrantId": secrets.token_hex(32)},
                   {"KeyId": key["KeyId"], "GrantId": "g" * 64},
                   {"KeyId": other["KeyId"], "GrantId": out["GrantId"]}):
        with pytest.raises(ClientError) as info:
            kms.revoke_grant(**kwargs)
        assert error_of(info)[0] == "InvalidGrantIdException", kwargs
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=out["GrantId"])
    assert grant_ids(world, key) == []
    with pytest.raises(ClientError) as info:
        gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[out["GrantToken"]])
    assert error_of(info)[0] == "InvalidGrantTokenException"
    with pytest.raises(ClientError) as info:
        gina.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    denied(info, gina, "kms:Encrypt", key["Arn"], DENY_I)
    with pytest.raises(ClientError) as info:
        kms.revoke_grant(KeyId=key["KeyId"], GrantId=out["GrantId"])
    assert error_of(info)[0] == "InvalidGrantIdException"


# --- child grants: a grantee holding CreateGrant ------------------------------------------------------
@pytest.mark.parametrize("operations, constraints, allowed", [
    (["Encrypt"], {"EncryptionContextSubset": {"tenant": "t1"}}, True),
    (["Encrypt"], {"EncryptionContextSubset": {"tenant": "t1", "app": "x"}}, True),
    (["Encrypt"], {"EncryptionContextEquals": {"tenant": "t1"}}, True),
    (["Encrypt"], {"EncryptionContextSubset": {"TENANT": "t1"}}, True),
    (["Encrypt", "CreateGrant"], {"EncryptionContextSubset": {"tenant": "t1"}}, True),
    (["Encrypt"], None, False),
    (["Encrypt"], {"EncryptionContextSubset": {"tenant": "t2"}}, False),
    (["Encrypt"], {"EncryptionContextSubset": {"app": "x"}}, False),
    (["Decrypt"], {"EncryptionContextSubset": {"tenant": "t1"}}, False),
], ids=["same", "stricter-subset", "equals-is-stricter", "key-case", "passes-create-grant-on", "unconstrained",
        "other-value", "other-key", "operation-not-held"])
def test_child_grants_are_at_least_as_strict(world, key, operations, constraints, allowed):
    gail, otto = world["gail"], world["otto"]
    grant(world, key, "gail", ["Encrypt", "CreateGrant"], Constraints={"EncryptionContextSubset": {"tenant": "t1"}})
    extra = {"Constraints": constraints} if constraints else {}
    if not allowed:
        with pytest.raises(ClientError) as info:
            gail.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=otto.arn, Operations=operations, **extra)
        denied(info, gail, "kms:CreateGrant", key["Arn"], DENY_I)
        return
    gail.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=otto.arn, Operations=operations, **extra)
    context = dict((constraints.get("EncryptionContextSubset") or constraints.get("EncryptionContextEquals")))
    otto.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=context)
    with pytest.raises(ClientError) as info:
        otto.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "t2"})
    denied(info, otto, "kms:Encrypt", key["Arn"], DENY_I)


def test_unconstrained_grantee_with_create_grant(world, key):
    gail, otto = world["gail"], world["otto"]
    grant(world, key, "gail", ["Encrypt", "Decrypt", "CreateGrant"])
    gail.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=otto.arn, Operations=["Decrypt"])
    gail.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=otto.arn, Operations=["Encrypt"],
                          Constraints={"EncryptionContextEquals": {"a": "b"}})
    with pytest.raises(ClientError) as info:
        gail.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=otto.arn, Operations=["GenerateDataKey"])
    denied(info, gail, "kms:CreateGrant", key["Arn"], DENY_I)
    assert len(grant_ids(world, key, GranteePrincipal=otto.arn)) == 2
    listed = world.admin.kms.list_grants(KeyId=key["KeyId"], GranteePrincipal=otto.arn)["Grants"]
    assert {g["IssuingAccount"] for g in listed} == {f"arn:aws:iam::{ACCT_A}:root"}


def test_region_is_part_of_the_key(world, key):
    """A grant's key is addressed in its own Region: the same key id elsewhere is another key."""
    kms = world.server.client(access_key=world.admin.access_key, secret_key=world.admin.secret, region="eu-west-1")
    with pytest.raises(ClientError) as info:
        kms.list_grants(KeyId=key["KeyId"])
    assert error_of(info) == ("NotFoundException", f"Key 'arn:aws:kms:eu-west-1:{ACCT_A}:key/{key['KeyId']}' does not exist")
    assert REGION in key["Arn"]
