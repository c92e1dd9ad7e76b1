"""The account edge: another account's KMS key, in every operation that takes a key.

AWS lets another account use a key only in the operations whose reference says "Cross-account
use: Yes" (the operation table's ``cross_account`` column, derived from botocore's model); every
other operation answers for another account's key as for a key that does not exist, whatever the
key policy allows, before any lookup, policy, grant or DryRun.

One non-dev server per store. Account A's administrator makes the keys; each key policy gives
account B ``kms:*``, and bob (account B) has an identity policy allowing ``kms:*``: everything a
policy can allow is allowed, so what refuses is the account edge alone.
"""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trentd.kms.api import OPERATIONS
from trentd.kms.operations import CrossAccount

from ..helpers import error_of
from .authz_world import ACCT_A, ACCT_B, REGION, World, policy
from .test_sts import audit_events

CROSS_ACCOUNT = sorted(name for name, row in OPERATIONS.items() if row.cross_account is CrossAccount.YES)
OWN_ACCOUNT_ONLY = sorted(name for name, row in OPERATIONS.items() if row.cross_account is CrossAccount.NO)
KEY_SPECS = {  # the key each case needs: (KeySpec, KeyUsage, extra CreateKey arguments)
    "sym": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", {}),
    "mrk": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", {"MultiRegion": True}),
    "hmac": ("HMAC_256", "GENERATE_VERIFY_MAC", {}),
    "sign": ("ECC_NIST_P256", "SIGN_VERIFY", {}),
    "agree": ("ECC_NIST_P256", "KEY_AGREEMENT", {}),
    "kem": ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE", {}),
}
BOB_POLICY = policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})


class Edge:
    """Account A's keys (by kind), their ARNs, and what the admin made with them."""

    def __init__(self, world: World):
        self.world = world
        self.admin = world.admin.kms
        self.bob = world["bob"]
        self.keys: dict[str, dict] = {}
        for kind, (spec, usage, extra) in KEY_SPECS.items():
            meta = self.admin.create_key(KeySpec=spec, KeyUsage=usage, Description=f"edge {kind}", **extra,
                                         Policy=self.key_policy(), BypassPolicyLockoutSafetyCheck=True)
            self.keys[kind] = meta["KeyMetadata"]
        self.alias_arn = f"arn:aws:kms:{REGION}:{ACCT_A}:alias/edge-sym"
        self.admin.create_alias(AliasName="alias/edge-sym", TargetKeyId=self.arn("sym"))
        self.blob = self.admin.encrypt(KeyId=self.arn("sym"), Plaintext=b"secret of A")["CiphertextBlob"]
        self.mac = self.admin.generate_mac(KeyId=self.arn("hmac"), Message=b"m",
                                           MacAlgorithm="HMAC_SHA_256")["Mac"]
        self.signature = self.admin.sign(KeyId=self.arn("sign"), Message=b"m",
                                         SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        self.kem_blob = self.admin.encapsulate(KeyId=self.arn("kem"),
                                               EncapsulationAlgorithm="ML_KEM")["SharedSecretCiphertextBlob"]
        peer = ec.generate_private_key(ec.SECP256R1()).public_key()
        self.peer_spki = peer.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    @staticmethod
    def key_policy() -> str:
        return policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_A}:root"}, "Action": "kms:*",
                       "Resource": "*"},
                      {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_B}:root"}, "Action": "kms:*",
                       "Resource": "*"})

    def arn(self, kind: str) -> str:
        return self.keys[kind]["Arn"]

    def grant(self) -> str:
        return self.admin.create_grant(KeyId=self.arn("sym"), GranteePrincipal=self.bob.arn,
                                       RetiringPrincipal=self.bob.arn, Operations=["Encrypt"])["GrantId"]


@pytest.fixture(scope="module")
def edge(authz_server) -> Edge:
    world = World(authz_server)
    world.make_users([(ACCT_B, "bob", BOB_POLICY)])
    return Edge(world)


def call(client, operation: str, args: dict) -> dict:
    return client._make_api_call(operation, args)


# --- where it must work: each cross-account operation, named by the key's ARN ---------------------
def _allowed_args(e: Edge, operation: str) -> dict:
    sym = e.arn("sym")
    return {
        "CreateGrant": lambda: {"KeyId": sym, "GranteePrincipal": e.bob.arn, "Operations": ["Decrypt"]},
        "Decapsulate": lambda: {"KeyId": e.arn("kem"), "EncapsulationAlgorithm": "ML_KEM",
                                "SharedSecretCiphertextBlob": e.kem_blob},
        "Decrypt": lambda: {"KeyId": sym, "CiphertextBlob": e.blob},
        "DeriveSharedSecret": lambda: {"KeyId": e.arn("agree"), "KeyAgreementAlgorithm": "ECDH",
                                       "PublicKey": e.peer_spki},
        "DescribeKey": lambda: {"KeyId": sym},
        "Encapsulate": lambda: {"KeyId": e.arn("kem"), "EncapsulationAlgorithm": "ML_KEM"},
        "Encrypt": lambda: {"KeyId": e.alias_arn, "Plaintext": b"hello"},  # an alias ARN, where aliases are taken
        "GenerateDataKey": lambda: {"KeyId": sym, "KeySpec": "AES_256"},
        "GenerateDataKeyPair": lambda: {"KeyId": sym, "KeyPairSpec": "ECC_NIST_P256"},
        "GenerateDataKeyPairWithoutPlaintext": lambda: {"KeyId": e.alias_arn, "KeyPairSpec": "ECC_NIST_P256"},
        "GenerateDataKeyWithoutPlaintext": lambda: {"KeyId": sym, "NumberOfBytes": 32},
        "GenerateMac": lambda: {"KeyId": e.arn("hmac"), "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"},
        "GetKeyRotationStatus": lambda: {"KeyId": sym},
        "GetPublicKey": lambda: {"KeyId": e.arn("sign")},
        "ListGrants": lambda: {"KeyId": sym},
        "ReEncrypt": lambda: {"CiphertextBlob": e.blob, "SourceKeyId": sym, "DestinationKeyId": e.alias_arn},
        "RetireGrant": lambda: {"KeyId": sym, "GrantId": e.grant()},
        "RevokeGrant": lambda: {"KeyId": sym, "GrantId": e.grant()},
        "Sign": lambda: {"KeyId": e.arn("sign"), "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"},
        "Verify": lambda: {"KeyId": e.arn("sign"), "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256",
                           "Signature": e.signature},
        "VerifyMac": lambda: {"KeyId": e.arn("hmac"), "Message": b"m", "MacAlgorithm": "HMAC_SHA_256",
                              "Mac": e.mac},
    }[operation]()


EXPECTED_ANSWERS = {  # a member of each answer that shows the call really acted on A's key
    "Decrypt": ("Plaintext", b"secret of A"),
    "Verify": ("SignatureValid", True),
    "VerifyMac": ("MacValid", True),
}


@pytest.mark.parametrize("operation", CROSS_ACCOUNT)
def test_cross_account_operation_works_on_another_accounts_key(edge, operation):
    answer = call(edge.bob.kms, operation, _allowed_args(edge, operation))
    member, value = EXPECTED_ANSWERS.get(operation, ("KeyId", None))
    if member in answer:
        assert answer[member] == value if value is not None else answer[member].startswith(
            f"arn:aws:kms:{REGION}:{ACCT_A}:key/")


# --- where it must be refused: every other operation that takes a key -----------------------------
def _refused_args(e: Edge, operation: str, key: str) -> dict:
    return {
        "CancelKeyDeletion": {"KeyId": key},
        "CreateAlias": {"AliasName": "alias/stolen", "TargetKeyId": key},
        "DeleteImportedKeyMaterial": {"KeyId": key},
        "DisableKey": {"KeyId": key},
        "DisableKeyRotation": {"KeyId": key},
        "EnableKey": {"KeyId": key},
        "EnableKeyRotation": {"KeyId": key},
        "GetKeyLastUsage": {"KeyId": key},
        "GetKeyPolicy": {"KeyId": key, "PolicyName": "default"},
        "GetParametersForImport": {"KeyId": key, "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                                   "WrappingKeySpec": "RSA_2048"},
        "ImportKeyMaterial": {"KeyId": key, "ImportToken": b"t" * 32, "EncryptedKeyMaterial": b"m" * 32,
                              "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"},
        "ListAliases": {"KeyId": key},
        "ListKeyPolicies": {"KeyId": key},
        "ListKeyRotations": {"KeyId": key},
        "ListResourceTags": {"KeyId": key},
        "PutKeyPolicy": {"KeyId": key, "PolicyName": "default", "BypassPolicyLockoutSafetyCheck": True,
                         "Policy": policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_B}:root"},
                                           "Action": "kms:*", "Resource": "*"})},
        "ReplicateKey": {"KeyId": key, "ReplicaRegion": "us-west-2"},
        "RotateKeyOnDemand": {"KeyId": key},
        "ScheduleKeyDeletion": {"KeyId": key, "PendingWindowInDays": 7},
        "TagResource": {"KeyId": key, "Tags": [{"TagKey": "owner", "TagValue": "B"}]},
        "UntagResource": {"KeyId": key, "TagKeys": ["owner"]},
        "UpdateAlias": {"AliasName": "alias/bobs-own", "TargetKeyId": key},
        "UpdateKeyDescription": {"KeyId": key, "Description": "taken over"},
        "UpdatePrimaryRegion": {"KeyId": key, "PrimaryRegion": "us-west-2"},
    }[operation]


@pytest.fixture(scope="module")
def bobs_alias(edge) -> str:
    """An alias of bob's own, so that UpdateAlias is refused for its target and not its name."""
    own = edge.bob.kms.create_key(Description="bob's key")["KeyMetadata"]["KeyId"]
    edge.bob.kms.create_alias(AliasName="alias/bobs-own", TargetKeyId=own)
    return own


@pytest.mark.parametrize("operation", OWN_ACCOUNT_ONLY)
def test_other_operations_answer_as_for_a_key_that_does_not_exist(edge, bobs_alias, operation):
    key = edge.arn("mrk" if operation in ("ReplicateKey", "UpdatePrimaryRegion") else "sym")
    absent = f"arn:aws:kms:{REGION}:{ACCT_A}:key/{uuid.uuid4()}"
    for named in (key, absent):  # the same answer whether or not the key exists
        with pytest.raises(edge.bob.kms.exceptions.NotFoundException) as excinfo:
            call(edge.bob.kms, operation, _refused_args(edge, operation, named))
        assert error_of(excinfo) == ("NotFoundException", f"Key '{named}' does not exist")


def test_refused_calls_changed_nothing(edge, bobs_alias):
    """Run after the refusals above (same module, in order): A's keys are as A left them."""
    admin = edge.admin
    for kind in ("sym", "mrk"):
        meta = admin.describe_key(KeyId=edge.arn(kind))["KeyMetadata"]
        assert (meta["KeyState"], meta["Description"]) == ("Enabled", f"edge {kind}")
        assert admin.get_key_policy(KeyId=edge.arn(kind), PolicyName="default")["Policy"] == edge.key_policy()
        assert admin.list_resource_tags(KeyId=edge.arn(kind))["Tags"] == []
        assert admin.get_key_rotation_status(KeyId=edge.arn(kind))["KeyRotationEnabled"] is False
    assert admin.list_key_rotations(KeyId=edge.arn("sym"))["Rotations"] == []
    multi_region = admin.describe_key(KeyId=edge.arn("mrk"))["KeyMetadata"]["MultiRegionConfiguration"]
    assert multi_region.get("ReplicaKeys", []) == []
    names = {a["AliasName"]: a.get("TargetKeyId") for a in edge.bob.kms.list_aliases()["Aliases"]}
    assert "alias/stolen" not in names and names["alias/bobs-own"] == bobs_alias


def test_syntactic_checks_come_first(edge):
    """An alias ARN where only a key is taken stays InvalidArnException, whichever account."""
    with pytest.raises(edge.bob.kms.exceptions.InvalidArnException) as excinfo:
        edge.bob.kms.disable_key(KeyId=edge.alias_arn)
    assert error_of(excinfo) == ("InvalidArnException", "Key Aliases are not supported for this operation.")


def test_names_resolve_in_the_callers_own_account(edge):
    """A bare key id or an alias name never reaches another account, even in a cross-account operation."""
    key_id = edge.keys["sym"]["KeyId"]
    with pytest.raises(edge.bob.kms.exceptions.NotFoundException) as excinfo:
        edge.bob.kms.describe_key(KeyId=key_id)
    assert error_of(excinfo) == ("NotFoundException", f"Key 'arn:aws:kms:{REGION}:{ACCT_B}:key/{key_id}' does not exist")
    with pytest.raises(edge.bob.kms.exceptions.NotFoundException) as excinfo:
        edge.bob.kms.encrypt(KeyId="alias/edge-sym", Plaintext=b"x")
    assert error_of(excinfo) == ("NotFoundException", f"Alias arn:aws:kms:{REGION}:{ACCT_B}:alias/edge-sym is not found.")


def test_replicate_key_does_not_escalate(edge):
    """The review's escalation: a key policy that allows B only ReplicateKey and DescribeKey."""
    admin = edge.admin
    narrow = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_A}:root"}, "Action": "kms:*",
                     "Resource": "*"},
                    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT_B}:root"},
                     "Action": ["kms:ReplicateKey", "kms:DescribeKey"], "Resource": "*"})
    arn = admin.create_key(MultiRegion=True, Policy=narrow, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["Arn"]
    assert edge.bob.kms.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn  # cross-account: allowed
    with pytest.raises(edge.bob.kms.exceptions.NotFoundException) as excinfo:
        edge.bob.kms.replicate_key(KeyId=arn, ReplicaRegion="us-west-2")
    assert error_of(excinfo) == ("NotFoundException", f"Key '{arn}' does not exist")
    replicas = admin.describe_key(KeyId=arn)["KeyMetadata"]["MultiRegionConfiguration"].get("ReplicaKeys", [])
    assert replicas == []


def test_a_refusal_is_recorded_in_the_callers_account_only(edge):
    key = edge.arn("sym")
    with pytest.raises(edge.bob.kms.exceptions.NotFoundException) as excinfo:
        edge.bob.kms.disable_key(KeyId=key)
    request_id = excinfo.value.response["ResponseMetadata"]["RequestId"]
    event = next(e for e in audit_events(edge.world.server) if e["requestID"] == request_id)
    assert (event["eventName"], event["errorCode"], event["recipientAccountId"]) == (
        "DisableKey", "NotFoundException", ACCT_B)
    assert event["userIdentity"]["accountId"] == ACCT_B
    assert event["resources"] == []  # nothing that would show the event to the key's owner


def test_allowed_cross_account_call_names_the_key_in_its_event(edge):
    answer = edge.bob.kms.describe_key(KeyId=edge.arn("sym"))
    request_id = answer["ResponseMetadata"]["RequestId"]
    event = next(e for e in audit_events(edge.world.server) if e["requestID"] == request_id)
    assert event["resources"] == [{"accountId": ACCT_A, "type": "AWS::KMS::Key", "ARN": edge.arn("sym")}]
