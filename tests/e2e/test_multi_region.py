"""Multi-Region keys over HTTP: CreateKey MultiRegion, ReplicateKey, UpdatePrimaryRegion, the
MultiRegionConfiguration of every Region's KeyMetadata, ciphertext that crosses Regions, the
independence of policies, descriptions, aliases and key states, rotation on the primary only,
imported material in every Region, and deletion (PendingReplicaDeletion) with a moved clock.

Each Region is a boto3 client with its own region_name pointed at the same endpoint: trentd takes
the Region from the SigV4 credential scope."""

from __future__ import annotations

import os
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..helpers import fails
from .byok import import_material

EAST, WEST, EU = "us-east-1", "us-west-2", "eu-west-1"
DAY = 86_400
MRK_ID = re.compile(r"mrk-[0-9a-f]{32}")
SYMMETRIC_MEMBERS = {"AWSAccountId", "KeyId", "Arn", "CreationDate", "Enabled", "Description", "KeyUsage", "KeyState",
                     "Origin", "KeyManager", "CustomerMasterKeySpec", "KeySpec", "MultiRegion", "EncryptionAlgorithms",
                     "CurrentKeyMaterialId"}


def arn(account: str, region: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


@pytest.fixture
def west(trentd_server, account):
    return trentd_server.client(access_key=account, secret_key="unused-in-dev-mode", region=WEST)


@pytest.fixture
def eu(trentd_server, account):
    return trentd_server.client(access_key=account, secret_key="unused-in-dev-mode", region=EU)


@pytest.fixture
def mrk(kms) -> str:
    return kms.create_key(MultiRegion=True, Description="primary")["KeyMetadata"]["KeyId"]


def config(client, key_id: str) -> dict:
    return client.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]


# --- CreateKey and KeyMetadata -------------------------------------------------------------------
def test_create_multi_region_key_shape(kms, account):
    meta = kms.create_key(MultiRegion=True)["KeyMetadata"]
    assert MRK_ID.fullmatch(meta["KeyId"])
    assert meta["Arn"] == arn(account, EAST, meta["KeyId"])
    assert meta["MultiRegion"] is True
    assert set(meta) == SYMMETRIC_MEMBERS | {"MultiRegionConfiguration"}
    assert meta["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": {"Arn": meta["Arn"], "Region": EAST},
        "ReplicaKeys": [],
    }
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"] == meta


def test_regional_keys_have_no_multi_region_configuration(kms):
    meta = kms.create_key(MultiRegion=False)["KeyMetadata"]
    assert meta["MultiRegion"] is False and "MultiRegionConfiguration" not in meta
    assert not meta["KeyId"].startswith("mrk-")


def test_mrk_ids_are_accepted_as_key_ids_and_in_arns(kms, account, mrk):
    assert kms.describe_key(KeyId=arn(account, EAST, mrk))["KeyMetadata"]["KeyId"] == mrk
    code, message = fails(kms.describe_key, KeyId="mrk-" + "0" * 32)
    assert code == "NotFoundException"
    assert message == f"Key '{arn(account, EAST, 'mrk-' + '0' * 32)}' does not exist"
    code, message = fails(kms.describe_key, KeyId="mrk-1234")
    assert (code, message) == ("NotFoundException", "Invalid keyId 'mrk-1234'")


# --- ReplicateKey --------------------------------------------------------------------------------
def test_replicate_key_response_and_configuration_everywhere(kms, west, account, mrk):
    out = kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST, Description="replica",
                                       Tags=[{"TagKey": "team", "TagValue": "west"}])
    replica = out["ReplicaKeyMetadata"]
    primary_arn, replica_arn = arn(account, EAST, mrk), arn(account, WEST, mrk)
    assert replica["KeyId"] == mrk and replica["Arn"] == replica_arn
    assert replica["KeyState"] == "Enabled" and replica["Enabled"] is True
    assert replica["Description"] == "replica" and replica["MultiRegion"] is True
    expected = {"PrimaryKey": {"Arn": primary_arn, "Region": EAST},
                "ReplicaKeys": [{"Arn": replica_arn, "Region": WEST}]}
    assert replica["MultiRegionConfiguration"] == {"MultiRegionKeyType": "REPLICA", **expected}
    assert out["ReplicaTags"] == [{"TagKey": "team", "TagValue": "west"}]
    assert '"AWS" : "arn:aws:iam::%s:root"' % account in out["ReplicaPolicy"]
    # The primary's view lists the replica; both Regions share key material.
    primary = kms.describe_key(KeyId=mrk)["KeyMetadata"]
    assert primary["MultiRegionConfiguration"] == {"MultiRegionKeyType": "PRIMARY", **expected}
    assert primary["CurrentKeyMaterialId"] == replica["CurrentKeyMaterialId"]
    assert west.describe_key(KeyId=mrk)["KeyMetadata"] == replica
    assert {k["KeyId"] for k in west.list_keys()["Keys"]} == {mrk}
    # Tags are not shared.
    assert kms.list_resource_tags(KeyId=mrk)["Tags"] == []
    assert west.list_resource_tags(KeyId=mrk)["Tags"] == [{"TagKey": "team", "TagValue": "west"}]


def test_ciphertext_crosses_regions_both_ways(kms, west, eu, account, mrk):
    kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    context = {"purpose": "cross-region"}
    blob = kms.encrypt(KeyId=mrk, Plaintext=b"from the east", EncryptionContext=context)["CiphertextBlob"]
    out = west.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert out["Plaintext"] == b"from the east" and out["KeyId"] == arn(account, WEST, mrk)
    blob = west.encrypt(KeyId=mrk, Plaintext=b"from the west")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from the west"
    data_key = west.generate_data_key(KeyId=mrk, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], KeyId=mrk)["Plaintext"] == data_key["Plaintext"]
    re_encrypted = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=mrk)["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=re_encrypted)["Plaintext"] == b"from the west"
    # A Region without a replica does not know the key.
    code, _ = fails(eu.decrypt, CiphertextBlob=blob)
    assert code == "AccessDeniedException"


def test_asymmetric_multi_region_key_signs_in_one_region_and_verifies_in_another(kms, west):
    key_id = kms.create_key(MultiRegion=True, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    signature = kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert west.verify(KeyId=key_id, Message=b"m", Signature=signature,
                       SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True
    public = west.get_public_key(KeyId=key_id)["PublicKey"]
    assert public == kms.get_public_key(KeyId=key_id)["PublicKey"]
    load_der_public_key(public).verify(signature, b"m", ec.ECDSA(hashes.SHA256()))


def test_replicas_have_their_own_policy_description_aliases_and_state(kms, west, account, mrk):
    policy = ('{"Version": "2012-10-17", "Statement": [{"Sid": "all", "Effect": "Allow", '
              f'"Principal": {{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "kms:*", "Resource": "*"}}]}}')
    out = kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST, Policy=policy, Description="west copy")
    assert out["ReplicaPolicy"] == policy
    assert west.get_key_policy(KeyId=mrk)["Policy"] == policy
    assert kms.get_key_policy(KeyId=mrk)["Policy"] != policy
    west.update_key_description(KeyId=mrk, Description="changed in the west")
    assert kms.describe_key(KeyId=mrk)["KeyMetadata"]["Description"] == "primary"
    # The same alias name in each Region, each pointing at its own Region's key.
    kms.create_alias(AliasName="alias/shared", TargetKeyId=mrk)
    west.create_alias(AliasName="alias/shared", TargetKeyId=mrk)
    west.delete_alias(AliasName="alias/shared")
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=mrk)["Aliases"]] == ["alias/shared"]
    assert kms.describe_key(KeyId="alias/shared")["KeyMetadata"]["Arn"] == arn(account, EAST, mrk)
    # Disabling the replica leaves the primary usable.
    west.disable_key(KeyId=mrk)
    code, message = fails(west.encrypt, KeyId=mrk, Plaintext=b"x")
    assert (code, message) == ("DisabledException", f"{arn(account, WEST, mrk)} is disabled.")
    assert kms.encrypt(KeyId=mrk, Plaintext=b"x")["KeyId"] == arn(account, EAST, mrk)
    assert kms.describe_key(KeyId=mrk)["KeyMetadata"]["Enabled"] is True


def test_replicate_key_refusals(kms, west, eu, account, mrk):
    regional = kms.create_key()["KeyMetadata"]["KeyId"]
    code, message = fails(kms.replicate_key, KeyId=regional, ReplicaRegion=WEST)
    assert (code, message) == ("UnsupportedOperationException",
                               f"{arn(account, EAST, regional)} is not a multi-region primary key.")
    code, _ = fails(kms.replicate_key, KeyId=mrk, ReplicaRegion=EAST)
    assert code == "ValidationException"
    kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    code, _ = fails(kms.replicate_key, KeyId=mrk, ReplicaRegion=WEST)
    assert code == "AlreadyExistsException"
    # A replica cannot be replicated (message recorded from AWS).
    code, message = fails(west.replicate_key, KeyId=mrk, ReplicaRegion=EU)
    assert (code, message) == ("UnsupportedOperationException",
                               f"{arn(account, WEST, mrk)} is not a multi-region primary key.")
    code, _ = fails(kms.replicate_key, KeyId="alias/nothing", ReplicaRegion=EU)
    assert code == "InvalidArnException"
    code, _ = fails(kms.replicate_key, KeyId=mrk, ReplicaRegion="not a region")
    assert code == "ValidationException"
    code, message = fails(kms.replicate_key, KeyId=mrk, ReplicaRegion=EU, Tags=[{"TagKey": "aws:x", "TagValue": ""}])
    assert (code, message) == ("TagException", "Tags beginning with aws: are reserved")
    code, _ = fails(kms.replicate_key, KeyId=mrk, ReplicaRegion=EU, Policy="{not json")
    assert code == "MalformedPolicyDocumentException"
    code, _ = fails(eu.describe_key, KeyId=mrk)  # nothing was created by the refused calls
    assert code == "NotFoundException"
    kms.schedule_key_deletion(KeyId=mrk, PendingWindowInDays=7)
    code, message = fails(kms.replicate_key, KeyId=mrk, ReplicaRegion=EU)
    assert code == "KMSInvalidStateException" and message == f"{arn(account, EAST, mrk)} is pending deletion."


# --- UpdatePrimaryRegion -------------------------------------------------------------------------
def test_update_primary_region_swaps_roles(kms, west, eu, account, mrk):
    kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    kms.update_primary_region(KeyId=mrk, PrimaryRegion=WEST)
    east_arn, west_arn = arn(account, EAST, mrk), arn(account, WEST, mrk)
    expected = {"PrimaryKey": {"Arn": west_arn, "Region": WEST}, "ReplicaKeys": [{"Arn": east_arn, "Region": EAST}]}
    assert config(west, mrk) == {"MultiRegionKeyType": "PRIMARY", **expected}
    assert config(kms, mrk) == {"MultiRegionKeyType": "REPLICA", **expected}
    # Only the new primary can replicate now.
    code, message = fails(kms.replicate_key, KeyId=mrk, ReplicaRegion=EU)
    assert (code, message) == ("UnsupportedOperationException", f"{east_arn} is not a multi-region primary key.")
    west.replicate_key(KeyId=mrk, ReplicaRegion=EU)
    assert [r["Region"] for r in config(eu, mrk)["ReplicaKeys"]] == [EU, EAST]  # sorted by Region
    # Ciphertext still crosses every way.
    blob = eu.encrypt(KeyId=mrk, Plaintext=b"eu")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"eu"


def test_update_primary_region_refusals(kms, west, account, mrk):
    regional = kms.create_key()["KeyMetadata"]["KeyId"]
    code, _ = fails(kms.update_primary_region, KeyId=regional, PrimaryRegion=WEST)
    assert code == "UnsupportedOperationException"
    code, message = fails(kms.update_primary_region, KeyId=mrk, PrimaryRegion=WEST)
    assert (code, message) == ("NotFoundException", f"Key '{arn(account, WEST, mrk)}' does not exist")
    code, _ = fails(kms.update_primary_region, KeyId=mrk, PrimaryRegion=EAST)
    assert code == "ValidationException"
    kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    code, message = fails(west.update_primary_region, KeyId=mrk, PrimaryRegion=EAST)
    assert (code, message) == ("UnsupportedOperationException",
                               f"{arn(account, WEST, mrk)} is not a multi-region primary key.")
    west.schedule_key_deletion(KeyId=mrk, PendingWindowInDays=7)
    code, _ = fails(kms.update_primary_region, KeyId=mrk, PrimaryRegion=WEST)
    assert code == "KMSInvalidStateException"
    assert config(kms, mrk)["MultiRegionKeyType"] == "PRIMARY"


# --- rotation and imported material -----------------------------------------------------------------
def test_rotation_is_set_on_the_primary_and_shared(kms, west, account, mrk):
    kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    code, message = fails(west.enable_key_rotation, KeyId=mrk)
    assert (code, message) == ("UnsupportedOperationException",
                               f"{arn(account, WEST, mrk)} is not a multi-region primary key.")
    code, _ = fails(west.rotate_key_on_demand, KeyId=mrk)
    assert code == "UnsupportedOperationException"
    kms.enable_key_rotation(KeyId=mrk, RotationPeriodInDays=90)
    status = west.get_key_rotation_status(KeyId=mrk)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
    old = kms.encrypt(KeyId=mrk, Plaintext=b"old")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=mrk)
    current = kms.describe_key(KeyId=mrk)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert west.describe_key(KeyId=mrk)["KeyMetadata"]["CurrentKeyMaterialId"] == current
    assert west.encrypt(KeyId=mrk, Plaintext=b"new")["KeyId"] == arn(account, WEST, mrk)
    out = west.decrypt(CiphertextBlob=old)
    assert out["Plaintext"] == b"old" and out["KeyMaterialId"] != current


def test_imported_material_is_imported_into_every_region(kms, west):
    key_id = kms.create_key(MultiRegion=True, Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    replica = kms.replicate_key(KeyId=key_id, ReplicaRegion=WEST)["ReplicaKeyMetadata"]
    assert replica["KeyState"] == "PendingImport" and replica["Origin"] == "EXTERNAL"
    material = os.urandom(32)
    import_material(kms, key_id, material)
    code, _ = fails(import_material, kms=west, key_id=key_id, material=os.urandom(32))
    assert code == "IncorrectKeyMaterialException"
    import_material(west, key_id, material)
    assert west.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"imported")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"


def test_multi_region_key_cannot_be_in_a_custom_key_store(kms):
    code, _ = fails(kms.create_key, MultiRegion=True, Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId="cks-1",
                    XksKeyId="k")
    assert code == "UnsupportedOperationException"


# --- deletion (clock_server, tests/e2e/conftest.py: a server of their own, these tests move its clock) --
@pytest.fixture
def regions(clock_server, account):
    return {r: clock_server.client(access_key=account, secret_key="x", region=r) for r in (EAST, WEST, EU)}


def test_primary_waits_for_its_replicas(clock_server, regions, account):
    east, west = regions[EAST], regions[WEST]
    key_id = east.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    blob = east.encrypt(KeyId=key_id, Plaintext=b"kept")["CiphertextBlob"]
    out = east.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingReplicaDeletion" and out["PendingWindowInDays"] == 7
    assert "DeletionDate" not in out
    meta = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingReplicaDeletion" and meta["PendingDeletionWindowInDays"] == 7
    assert meta["Enabled"] is False and "DeletionDate" not in meta
    code, message = fails(east.encrypt, KeyId=key_id, Plaintext=b"x")
    assert (code, message) == ("KMSInvalidStateException", f"{arn(account, EAST, key_id)} is pending deletion.")
    code, _ = fails(east.schedule_key_deletion, KeyId=key_id)
    assert code == "KMSInvalidStateException"
    # The replica keeps working, and is deleted on its own schedule.
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    clock_server.move_clock(advance_seconds=40 * DAY)
    assert east.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingReplicaDeletion"
    west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert [r["Region"] for r in config(east, key_id)["ReplicaKeys"]] == [WEST]
    clock_server.move_clock(advance_seconds=7 * DAY + 60)
    code, _ = fails(west.describe_key, KeyId=key_id)
    assert code == "NotFoundException"
    now = clock_server.move_clock(advance_seconds=0)["now"]
    meta = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and "PendingDeletionWindowInDays" not in meta
    assert meta["MultiRegionConfiguration"]["ReplicaKeys"] == []
    assert abs(meta["DeletionDate"].timestamp() - (now + 7 * DAY)) < 120
    clock_server.move_clock(advance_seconds=7 * DAY + 60)
    code, _ = fails(east.describe_key, KeyId=key_id)
    assert code == "NotFoundException"


def test_cancel_deletion_of_a_waiting_primary(clock_server, regions):
    east, west = regions[EAST], regions[WEST]
    key_id = east.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    east.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    east.cancel_key_deletion(KeyId=key_id)
    assert east.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    clock_server.move_clock(advance_seconds=8 * DAY)
    meta = east.describe_key(KeyId=key_id)["KeyMetadata"]  # not released into PendingDeletion
    assert meta["KeyState"] == "Disabled" and meta["MultiRegionConfiguration"]["ReplicaKeys"] == []


def test_replicas_are_deleted_independently_and_material_stays(clock_server, regions, account):
    east, west = regions[EAST], regions[WEST]
    key_id = east.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    blob = west.encrypt(KeyId=key_id, Plaintext=b"written in the west")["CiphertextBlob"]
    west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert west.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    clock_server.move_clock(advance_seconds=8 * DAY)
    code, _ = fails(west.describe_key, KeyId=key_id)
    assert code == "NotFoundException"
    meta = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["MultiRegionConfiguration"]["ReplicaKeys"] == []
    # The primary still holds the shared material, and a new replica gets it again.
    assert east.decrypt(CiphertextBlob=blob)["Plaintext"] == b"written in the west"
    east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"written in the west"
    assert west.list_aliases(KeyId=key_id)["Aliases"] == []


def test_replicate_key_answer_has_replica_tags_only_when_there_are_tags(kms):
    untagged = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    assert "ReplicaTags" not in kms.replicate_key(KeyId=untagged, ReplicaRegion="us-west-2")
    tagged = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    out = kms.replicate_key(KeyId=tagged, ReplicaRegion="us-west-2", Tags=[{"TagKey": "team", "TagValue": "a"}])
    assert out["ReplicaTags"] == [{"TagKey": "team", "TagValue": "a"}]
